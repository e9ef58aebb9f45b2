/** Where the Portcullis resources live in the Kubernetes API. */
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import { GROUP } from '../extauthz/policy/model.js';

export const VERSION = 'v1alpha1';
export const PLURAL = { ApiPolicy: 'apipolicies', Tenant: 'tenants' } as const;
/** Secrets holding API-key hashes carry this label, so ext_authz reads only those. */
export const API_KEY_SECRET_LABEL = 'portcullis.io/api-keys=true';
/** Secrets and ConfigMaps holding revocation lists (Tenant spec.revocation) carry this label. */
export const REVOCATION_LABEL = 'portcullis.io/revocation=true';
/** Secrets holding token-introspection client secrets (Tenant spec.identity.introspection) carry this label. */
export const INTROSPECTION_SECRET_LABEL = 'portcullis.io/introspection=true';
/** Every label a Secret Portcullis reads may carry: both processes list exactly these (one informer each). */
export const SECRET_LABELS = [API_KEY_SECRET_LABEL, REVOCATION_LABEL, INTROSPECTION_SECRET_LABEL] as const;
/** ConfigMaps holding request body schemas (ApiPolicy rule request.body.configMapRef). */
export const SCHEMA_LABEL = 'portcullis.io/schema=true';

export function customPath(plural: string): string {
  return `/apis/${GROUP}/${VERSION}/${plural}`;
}

export function listCustom<T extends KubernetesObject>(kc: KubeConfig, plural: string): () => Promise<KubernetesListObject<T>> {
  const api = kc.makeApiClient(CustomObjectsApi);
  return async () => (await api.listClusterCustomObject({ group: GROUP, version: VERSION, plural })) as KubernetesListObject<T>;
}

/** Label-selected Secrets of every namespace, or of one (a grant narrowed to namespaces cannot list cluster-wide). */
export function listSecrets(kc: KubeConfig, labelSelector: string, namespace?: string): () => Promise<KubernetesListObject<KubernetesObject>> {
  const api = kc.makeApiClient(CoreV1Api);
  if (namespace !== undefined) return async () => (await api.listNamespacedSecret({ namespace, labelSelector })) as KubernetesListObject<KubernetesObject>;
  return async () => (await api.listSecretForAllNamespaces({ labelSelector })) as KubernetesListObject<KubernetesObject>;
}

export function secretsPath(namespace?: string): string {
  return namespace === undefined ? '/api/v1/secrets' : `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets`;
}

export function listConfigMaps(kc: KubeConfig, labelSelector: string): () => Promise<KubernetesListObject<KubernetesObject>> {
  const api = kc.makeApiClient(CoreV1Api);
  return async () => (await api.listConfigMapForAllNamespaces({ labelSelector })) as KubernetesListObject<KubernetesObject>;
}
