/**
 * The policy objects as Portcullis reads them, whatever their source (a folder of YAML or the
 * Kubernetes API): validated against the CRD schema, defaults applied, with where they came from.
 */
import type { ApiPolicySpec, TenantSpec } from './crd-types.js';

export type { ApiPolicySpec, TenantSpec, ApiPolicyRule, RuleQuota, TenantQuota, MaskDirective, JwtIdentity, MtlsIdentity, ApiKeyIdentity, Condition } from './crd-types.js';

export const GROUP = 'portcullis.io';
export const API_VERSION = 'portcullis.io/v1alpha1';

export interface ObjectMeta {
  name: string;
  namespace: string;
  generation?: number;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  labels?: Record<string, string>;
}

export interface Origin {
  file?: string;
  document?: number;
}

export interface TenantObject {
  kind: 'Tenant';
  metadata: ObjectMeta;
  spec: TenantSpec;
  origin: Origin;
}

export interface ApiPolicyObject {
  kind: 'ApiPolicy';
  metadata: ObjectMeta;
  spec: ApiPolicySpec;
  origin: Origin;
}

/** A Secret holding API-key hashes (data: base64 in the cluster; stringData in files). */
export interface SecretObject {
  kind: 'Secret';
  metadata: ObjectMeta;
  /** Decoded values by key. */
  values: Record<string, string>;
  origin: Origin;
}

/** A ConfigMap (revocation lists): data values by key. */
export interface ConfigMapObject {
  kind: 'ConfigMap';
  metadata: ObjectMeta;
  values: Record<string, string>;
  origin: Origin;
}

export interface PolicySources {
  tenants: TenantObject[];
  policies: ApiPolicyObject[];
  secrets: SecretObject[];
  /** ConfigMaps that tenants name as revocation sources (absent: none). */
  configMaps?: ConfigMapObject[];
}

export type PrincipalType = 'consumer' | 'agency' | 'partner';

export const PRINCIPAL_TYPE_OF_TENANT: Record<TenantSpec['type'], PrincipalType> = {
  agency: 'agency',
  'consumer-app': 'consumer',
  partner: 'partner',
};

export function objectKey(o: { metadata: { namespace: string; name: string } }): string {
  return `${o.metadata.namespace}/${o.metadata.name}`;
}
