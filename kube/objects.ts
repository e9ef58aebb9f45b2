/** Kubernetes objects as the policy engine's sources: the one conversion both processes use. */
import type { KubernetesObject } from '@kubernetes/client-node';
import { configMapValues, secretValues } from '../extauthz/policy/load.js';
import type { ApiPolicyObject, ConfigMapObject, ObjectMeta, PolicySources, SecretObject, TenantObject } from '../extauthz/policy/model.js';

export interface Raw extends KubernetesObject {
  spec?: unknown;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

export function toMeta(o: KubernetesObject): ObjectMeta {
  const m = o.metadata ?? {};
  const created = m.creationTimestamp as unknown;
  return {
    name: m.name ?? '',
    namespace: m.namespace ?? 'default',
    ...(m.generation !== undefined ? { generation: m.generation } : {}),
    ...(m.uid ? { uid: m.uid } : {}),
    ...(m.resourceVersion ? { resourceVersion: m.resourceVersion } : {}),
    ...(created ? { creationTimestamp: created instanceof Date ? created.toISOString() : String(created) } : {}),
    ...(m.labels ? { labels: m.labels } : {}),
  };
}

/** Cluster objects → the same sources the folder loader produces. */
export function sourcesFrom(policies: readonly Raw[], tenants: readonly Raw[], secrets: readonly Raw[], configMaps: readonly Raw[] = []): PolicySources {
  return {
    configMaps: configMaps.map((c): ConfigMapObject => ({ kind: 'ConfigMap', metadata: toMeta(c), values: configMapValues(c.data), origin: {} })),
    policies: policies.filter((p) => p.spec).map((p): ApiPolicyObject => ({ kind: 'ApiPolicy', metadata: toMeta(p), spec: p.spec as ApiPolicyObject['spec'], origin: {} })),
    tenants: tenants.filter((t) => t.spec).map((t): TenantObject => ({ kind: 'Tenant', metadata: toMeta(t), spec: t.spec as TenantObject['spec'], origin: {} })),
    secrets: secrets.map((s): SecretObject => ({ kind: 'Secret', metadata: toMeta(s), values: secretValues(s.data, s.stringData), origin: {} })),
  };
}

/** Objects of several label-selected informers, once each (a Secret or ConfigMap may carry several labels). */
export function uniqueObjects(...lists: (readonly Raw[])[]): Raw[] {
  const seen = new Set<string>();
  const out: Raw[] = [];
  for (const list of lists) {
    for (const s of list) {
      const key = `${s.metadata?.namespace ?? ''}/${s.metadata?.name ?? ''}`;
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(s);
    }
  }
  return out;
}
