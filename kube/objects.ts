/** Kubernetes objects as the policy engine's sources: the one conversion both processes use. */
import type { KubernetesObject } from '@kubernetes/client-node';
import { objectKey, type ChangeEvent } from './informer.js';
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

const toConfigMap = (c: Raw): ConfigMapObject => ({ kind: 'ConfigMap', metadata: toMeta(c), values: configMapValues(c.data), origin: {} });
const toPolicy = (p: Raw): ApiPolicyObject => ({ kind: 'ApiPolicy', metadata: toMeta(p), spec: p.spec as ApiPolicyObject['spec'], origin: {} });
const toTenant = (t: Raw): TenantObject => ({ kind: 'Tenant', metadata: toMeta(t), spec: t.spec as TenantObject['spec'], origin: {} });
const toSecret = (s: Raw): SecretObject => ({ kind: 'Secret', metadata: toMeta(s), values: secretValues(s.data, s.stringData), origin: {} });

/** Cluster objects → the same sources the folder loader produces. */
export function sourcesFrom(policies: readonly Raw[], tenants: readonly Raw[], secrets: readonly Raw[], configMaps: readonly Raw[] = []): PolicySources {
  return {
    configMaps: configMaps.map(toConfigMap),
    policies: policies.filter((p) => p.spec).map(toPolicy),
    tenants: tenants.filter((t) => t.spec).map(toTenant),
    secrets: secrets.map(toSecret),
  };
}

/** Objects of several label-selected informers, once each (a Secret or ConfigMap may carry several labels). */
export function uniqueObjects(...lists: (readonly Raw[])[]): Raw[] {
  const seen = new Set<string>();
  const out: Raw[] = [];
  for (const list of lists) {
    for (const s of list) {
      const key = objectKey(s);
      if (seen.has(key)) continue;
      seen.add(key);
      out.push(s);
    }
  }
  return out;
}

/**
 * sourcesFrom with every object converted once: an informer hands out the same object until the
 * API server sends a new version, so an unchanged object converts to the same source object and
 * the policy store recognises it by identity (no fingerprint, no key) — a one-object change at
 * 10,000 policies converts one object, not 10,000.
 */
export class SourceConverter {
  private readonly cache = new WeakMap<Raw, unknown>();

  sourcesFrom(policies: readonly Raw[], tenants: readonly Raw[], secrets: readonly Raw[], configMaps: readonly Raw[] = []): PolicySources {
    return {
      configMaps: configMaps.map((c) => this.once(c, toConfigMap)),
      policies: policies.filter((p) => p.spec).map((p) => this.once(p, toPolicy)),
      tenants: tenants.filter((t) => t.spec).map((t) => this.once(t, toTenant)),
      secrets: secrets.map((s) => this.once(s, toSecret)),
    };
  }

  private once<T>(raw: Raw, convert: (r: Raw) => T): T {
    let out = this.cache.get(raw) as T | undefined;
    if (out === undefined) {
      out = convert(raw);
      this.cache.set(raw, out);
    }
    return out;
  }
}

/** The metadata fields toMeta and the ext_authz source (fingerprints, affectsCompile) read. */
const DECISION_META = ['name', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'labels'] as const;
/** The top-level fields the conversions above read (besides metadata). */
const DECISION_FIELDS = ['apiVersion', 'kind', 'spec', 'data', 'stringData'] as const;

/**
 * An informer transform for a consumer that only converts objects to policy sources (ext_authz):
 * the object reduced to the fields toMeta and the conversions read. Status (the operator's
 * conditions), annotations (kubectl's last-applied configuration repeats the whole object),
 * managedFields, owner references and finalizers are never read there, and kept they were most
 * of the heap 10,000 cached ApiPolicies held.
 */
export function decisionView(o: Raw): Raw {
  const out: Record<string, unknown> = {};
  for (const k of DECISION_FIELDS) if (o[k] !== undefined) out[k] = o[k];
  const m = o.metadata;
  if (m) {
    const meta: Record<string, unknown> = {};
    for (const k of DECISION_META) if (m[k] !== undefined) meta[k] = m[k];
    out.metadata = meta;
  }
  return out as Raw;
}

/**
 * One informer's objects converted as its events arrive, in the informer's own order: a run's
 * input is then one array copy (none when nothing changed), not a pass over every object of
 * the informer with a lookup each — the per-change cost is the change.
 */
export class ConvertedObjects<S> {
  /** undefined: an object the conversion skips (kept in place, so the order stays the informer's). */
  private readonly byKey = new Map<string, S | undefined>();
  private array: readonly S[] | undefined;
  /** What take() last handed out, and what changed since: key → converted object, or undefined when it left the values. */
  private taken: readonly S[] | undefined;
  private pending = new Map<string, S | undefined>();

  constructor(private readonly convert: (raw: Raw) => S | undefined) {}

  /** ApiPolicies as sourcesFrom converts them (objects without a spec are left out). */
  static policies(): ConvertedObjects<ApiPolicyObject> {
    return new ConvertedObjects((p) => (p.spec ? toPolicy(p) : undefined));
  }

  /** The informer's onChange, called after its cache applied the event. */
  changed(raw: Raw, event: ChangeEvent): void {
    const key = objectKey(raw);
    const converted = event === 'delete' ? undefined : this.convert(raw);
    if (event === 'delete') this.byKey.delete(key);
    else this.byKey.set(key, converted);
    this.pending.set(key, converted);
    this.array = undefined;
  }

  /**
   * The values, and (after the first call) how they differ from the values the previous call
   * returned: the keys changed since, each with its converted object or undefined when it is no
   * longer among the values (the store's PolicyChanges).
   */
  take(): { values: readonly S[]; changes?: { since: readonly S[]; changed: ReadonlyMap<string, S | undefined> } } {
    const values = this.values();
    const out = this.taken ? { values, changes: { since: this.taken, changed: this.pending } } : { values };
    this.taken = values;
    this.pending = new Map();
    return out;
  }

  values(): readonly S[] {
    if (!this.array) {
      const out: S[] = [];
      for (const v of this.byKey.values()) if (v !== undefined) out.push(v);
      this.array = out;
    }
    return this.array;
  }
}
