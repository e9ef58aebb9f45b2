/**
 * The operator's writes to the API server: server-side apply of generated objects under one field
 * manager, pruning of children no longer desired, status writes that skip no-ops and retry on
 * conflict, and Events for humans. With caches, pruning reads the children from the informers
 * (no list per reconcile), a status write starts from the cached object (no read unless it
 * conflicts), and every write is recorded so its own watch event does not re-queue the policy.
 * Status writes, one per policy, take the lean path (kube/json-request.ts).
 */
import { CoreV1Api, CustomObjectsApi, KubernetesObjectApi, PatchStrategy, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { GROUP } from '../extauthz/policy/model.js';
import { httpCode } from '../kube/errors.js';
import { putJson } from '../kube/json-request.js';
import { VERSION } from '../kube/resources.js';
import { statusEqual, type ObjectStatus } from './conditions.js';
import type { OwnWrites } from './own-writes.js';
import { FIELD_MANAGER, isShared, LABEL_MANAGED_BY, LABEL_POLICY, OUTPUT_KINDS, type GeneratedObject } from './translate.js';

export interface ClientCaches {
  own: OwnWrites;
  /** A policy's children of one kind, from the child informers. */
  children(kind: string, namespace: string, policy: string): readonly KubernetesObject[];
  /** One generated object of a kind by name, from the child informers. */
  child(kind: string, namespace: string, name: string): KubernetesObject | undefined;
  /** Every generated object of a kind in a namespace. */
  inNamespace(kind: string, namespace: string): readonly KubernetesObject[];
  /** The cached object of `plural` (ApiPolicy, Tenant) a status write starts from. */
  cached(plural: string, namespace: string, name: string): KubernetesObject | undefined;
  /** Re-queues the object (or, for a child, its policy) when a foreign change raced our write. */
  requeue(plural: string, namespace: string, name: string): void;
  /** Re-queues the namespace's shared objects when a foreign change raced our write to one. */
  requeueShared(namespace: string): void;
}

/** The key OwnWrites and the child informers share for a generated object. */
export function childKey(o: { apiVersion?: string; kind?: string; metadata?: { namespace?: string; name?: string } }): string {
  return `${o.apiVersion ?? ''}/${o.kind ?? ''}:${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}

export function statusKey(plural: string, namespace: string, name: string): string {
  return `${plural}:${namespace}/${name}`;
}

export class OperatorClient {
  private readonly objects: KubernetesObjectApi;
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;

  constructor(
    private readonly kc: KubeConfig,
    private readonly caches?: ClientCaches,
  ) {
    this.objects = KubernetesObjectApi.makeApiClient(kc);
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.core = kc.makeApiClient(CoreV1Api);
  }

  /** Server-side apply; returns the object as stored (status included, read for the controller's verdict). */
  async apply(obj: GeneratedObject): Promise<KubernetesObject & { status?: unknown }> {
    // Level-triggered reconciles re-apply every child; when the cached child already holds every
    // field we would apply, the server-side apply is a no-op and is skipped. After a restart at
    // 10,000 policies those no-op writes were all the API traffic, and a deleted child waited
    // behind them. A stale cache only costs an extra apply, or is corrected by the watch event.
    const cached = this.cachedChild(obj);
    if (cached && unchanged(cached, obj)) return cached;
    let live: KubernetesObject | undefined;
    const send = async (): Promise<string | undefined> => {
      live = await this.objects.patch(obj as unknown as KubernetesObject, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
      return live.metadata?.resourceVersion;
    };
    await this.tracked(obj, send);
    return live ?? {};
  }

  private cachedChild(obj: GeneratedObject): (KubernetesObject & { status?: unknown }) | undefined {
    return this.caches?.child(obj.kind, obj.metadata.namespace, obj.metadata.name);
  }

  /** A JSON merge patch (null removes a field), for fields another manager added that weaken an object. */
  async mergePatch(obj: GeneratedObject, patch: Record<string, unknown>): Promise<void> {
    const body = { apiVersion: obj.apiVersion, kind: obj.kind, ...patch, metadata: { name: obj.metadata.name, namespace: obj.metadata.namespace, ...((patch.metadata as object | undefined) ?? {}) } };
    await this.tracked(obj, async () => (await this.objects.patch(body as KubernetesObject, undefined, undefined, FIELD_MANAGER, undefined, PatchStrategy.MergePatch)).metadata?.resourceVersion);
  }

  /** Sends a write of a generated object, recorded so its own watch event does not re-queue the policy. */
  private async tracked(obj: GeneratedObject, send: () => Promise<string | undefined>): Promise<void> {
    const caches = this.caches;
    if (!caches) {
      await send();
      return;
    }
    const namespace = obj.metadata.namespace;
    await caches.own.track(childKey(obj), send, () => (isShared(obj) ? caches.requeueShared(namespace) : caches.requeue('apipolicies', namespace, obj.metadata.labels[LABEL_POLICY] ?? '')));
  }

  private async childrenOf(k: (typeof OUTPUT_KINDS)[number], namespace: string, policy: string): Promise<readonly KubernetesObject[]> {
    if (this.caches) return this.caches.children(k.kind, namespace, policy);
    try {
      return (await this.objects.list(k.apiVersion, k.kind, namespace, undefined, undefined, undefined, undefined, `${LABEL_MANAGED_BY}=${FIELD_MANAGER},${LABEL_POLICY}=${policy}`)).items;
    } catch (err) {
      if (httpCode(err) === 404) return [];
      throw err;
    }
  }

  /**
   * Deletes this policy's own children (the kinds a policy owns, translate.ts isShared) of the
   * enabled outputs that are not in `keep`. Shared objects are pruned per namespace (pruneShared).
   */
  async prune(namespace: string, policy: string, enabled: ReadonlySet<string>, keep: readonly GeneratedObject[]): Promise<number> {
    let deleted = 0;
    for (const k of OUTPUT_KINDS.filter((k) => enabled.has(k.output) && !isShared(k))) {
      for (const item of await this.childrenOf(k, namespace, policy)) {
        if (keep.some((o) => o.kind === k.kind && o.metadata.name === item.metadata?.name)) continue;
        await this.remove(k, namespace, item.metadata?.name ?? '');
        deleted++;
      }
    }
    return deleted;
  }

  /**
   * Deletes the namespace's generated objects of the enabled shared kinds that are not in `keep`:
   * those no policy needs any more, and per-policy ones an earlier version generated. Needs the
   * caches (the operator always has them).
   */
  async pruneShared(namespace: string, enabled: ReadonlySet<string>, keep: readonly GeneratedObject[]): Promise<string[]> {
    const deleted: string[] = [];
    for (const k of OUTPUT_KINDS.filter((k) => enabled.has(k.output) && isShared(k))) {
      for (const item of this.caches?.inNamespace(k.kind, namespace) ?? []) {
        const name = item.metadata?.name ?? '';
        if (keep.some((o) => o.kind === k.kind && o.metadata.name === name)) continue;
        await this.remove(k, namespace, name);
        deleted.push(`${k.kind}/${name}`);
      }
    }
    return deleted;
  }

  private async remove(k: (typeof OUTPUT_KINDS)[number], namespace: string, name: string): Promise<void> {
    await this.objects.delete({ apiVersion: k.apiVersion, kind: k.kind, metadata: { name, namespace } }).catch((err) => {
      if (httpCode(err) !== 404) throw err;
    });
  }

  /** Writes status if it changed; re-reads and retries on a conflict. Returns true if written. */
  async writeStatus(plural: string, namespace: string, name: string, compute: (current: Record<string, unknown>) => ObjectStatus | undefined): Promise<boolean> {
    for (let attempt = 0; attempt < 5; attempt++) {
      // The first attempt trusts the cache; a conflict means it was stale, so re-read.
      const cached = attempt === 0 ? (this.caches?.cached(plural, namespace, name) as Record<string, unknown> | undefined) : undefined;
      const current = cached ?? (await this.read(plural, namespace, name));
      if (!current) return false;
      const status = compute(current);
      if (!status || statusEqual(current.status as ObjectStatus | undefined, status)) return false;
      try {
        await this.replaceStatus(plural, namespace, name, { ...current, status });
        return true;
      } catch (err) {
        const code = httpCode(err);
        if (code === 404) return false;
        if (code !== 409) throw err;
      }
    }
    throw new Error(`status of ${namespace}/${name}: too many conflicts`);
  }

  private async read(plural: string, namespace: string, name: string): Promise<Record<string, unknown> | undefined> {
    try {
      return (await this.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural, name })) as Record<string, unknown>;
    } catch (err) {
      if (httpCode(err) === 404) return undefined;
      throw err;
    }
  }

  private async replaceStatus(plural: string, namespace: string, name: string, body: Record<string, unknown>): Promise<void> {
    const path = `/apis/${GROUP}/${VERSION}/namespaces/${encodeURIComponent(namespace)}/${plural}/${encodeURIComponent(name)}/status`;
    const send = async (): Promise<string | undefined> => (await putJson<KubernetesObject>(this.kc, path, body)).metadata?.resourceVersion;
    const caches = this.caches;
    if (!caches) {
      await send();
      return;
    }
    await caches.own.track(statusKey(plural, namespace, name), send, () => caches.requeue(plural, namespace, name));
  }

  async event(involved: { apiVersion: string; kind: string; name: string; namespace: string; uid?: string }, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const now = new Date();
    await this.core
      .createNamespacedEvent({
        namespace: involved.namespace,
        body: {
          metadata: { generateName: `${involved.name}.`, namespace: involved.namespace },
          involvedObject: { apiVersion: involved.apiVersion, kind: involved.kind, name: involved.name, namespace: involved.namespace, ...(involved.uid ? { uid: involved.uid } : {}) },
          reason,
          message: message.slice(0, 1024),
          type,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
          source: { component: FIELD_MANAGER },
        },
      })
      .catch(() => undefined);
  }
}

/**
 * Whether an apply of `desired` would change nothing we own: the spec exactly as desired (a field
 * we stopped setting must be removed by the apply), the rest of `desired` contained in `live`
 * (metadata and status hold server fields).
 */
export function unchanged(live: KubernetesObject, desired: GeneratedObject): boolean {
  const spec = (o: object): unknown => (o as { spec?: unknown }).spec;
  // A shared object that still carries a policy's ownerReference or label (an earlier
  // per-policy object of the same name) must be applied: the apply removes them, and the
  // garbage collector would otherwise delete it with that policy.
  if (isShared(desired) && ((live.metadata?.ownerReferences?.length ?? 0) > 0 || live.metadata?.labels?.[LABEL_POLICY] !== undefined)) return false;
  return contains(live, desired) && contains(spec(desired), spec(live));
}

/**
 * Whether `live` already has every field of `desired` with the same value: objects compare per
 * key (live may hold more: status, managedFields, defaults), arrays and scalars exactly.
 */
export function contains(live: unknown, desired: unknown): boolean {
  if (Array.isArray(desired)) return Array.isArray(live) && live.length === desired.length && desired.every((d, i) => contains(live[i], d) && contains(d, live[i]));
  if (typeof desired === 'object' && desired !== null) {
    if (typeof live !== 'object' || live === null || Array.isArray(live)) return false;
    const l = live as Record<string, unknown>;
    return Object.entries(desired).every(([k, v]) => v === undefined || contains(l[k], v));
  }
  return live === desired;
}
