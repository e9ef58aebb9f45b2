/**
 * The operator's writes to the API server: server-side apply of generated objects under one field
 * manager, pruning of children no longer desired, status writes that skip no-ops and retry on
 * conflict, and Events for humans.
 */
import { CoreV1Api, CustomObjectsApi, KubernetesObjectApi, PatchStrategy, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { GROUP } from '../extauthz/policy/model.js';
import { VERSION } from '../extauthz/kube/resources.js';
import { statusEqual, type ObjectStatus } from './conditions.js';
import { FIELD_MANAGER, LABEL_MANAGED_BY, LABEL_POLICY, OUTPUT_KINDS, type GeneratedObject } from './translate.js';

export function httpCode(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown; response?: { statusCode?: unknown } };
  const c = e?.code ?? e?.statusCode ?? e?.response?.statusCode;
  return typeof c === 'number' ? c : undefined;
}

export class OperatorClient {
  private readonly objects: KubernetesObjectApi;
  private readonly custom: CustomObjectsApi;
  private readonly core: CoreV1Api;

  constructor(kc: KubeConfig) {
    this.objects = KubernetesObjectApi.makeApiClient(kc);
    this.custom = kc.makeApiClient(CustomObjectsApi);
    this.core = kc.makeApiClient(CoreV1Api);
  }

  /** Server-side apply; returns the object as stored (status included, read for the controller's verdict). */
  async apply(obj: GeneratedObject): Promise<KubernetesObject & { status?: unknown }> {
    return this.objects.patch(obj as unknown as KubernetesObject, undefined, undefined, FIELD_MANAGER, true, PatchStrategy.ServerSideApply);
  }

  /** A JSON merge patch (null removes a field), for fields another manager owns. */
  async mergePatch(obj: GeneratedObject, patch: Record<string, unknown>): Promise<void> {
    const body = { apiVersion: obj.apiVersion, kind: obj.kind, ...patch, metadata: { name: obj.metadata.name, namespace: obj.metadata.namespace, ...((patch.metadata as object | undefined) ?? {}) } };
    await this.objects.patch(body as KubernetesObject, undefined, undefined, FIELD_MANAGER, undefined, PatchStrategy.MergePatch);
  }

  /** Deletes this policy's children of the enabled kinds that are not in `keep`. */
  async prune(namespace: string, policy: string, enabled: ReadonlySet<string>, keep: readonly GeneratedObject[]): Promise<number> {
    let deleted = 0;
    for (const k of OUTPUT_KINDS.filter((k) => enabled.has(k.output))) {
      let items: KubernetesObject[];
      try {
        const list = await this.objects.list(k.apiVersion, k.kind, namespace, undefined, undefined, undefined, undefined, `${LABEL_MANAGED_BY}=${FIELD_MANAGER},${LABEL_POLICY}=${policy}`);
        items = list.items;
      } catch (err) {
        if (httpCode(err) === 404) continue;
        throw err;
      }
      for (const item of items) {
        if (keep.some((o) => o.kind === k.kind && o.metadata.name === item.metadata?.name)) continue;
        await this.objects.delete({ apiVersion: k.apiVersion, kind: k.kind, metadata: { name: item.metadata?.name ?? '', namespace } }).catch((err) => {
          if (httpCode(err) !== 404) throw err;
        });
        deleted++;
      }
    }
    return deleted;
  }

  /** Writes status if it changed; re-reads and retries on a conflict. Returns true if written. */
  async writeStatus(plural: string, namespace: string, name: string, compute: (current: Record<string, unknown>) => ObjectStatus | undefined): Promise<boolean> {
    for (let attempt = 0; attempt < 5; attempt++) {
      let current: Record<string, unknown>;
      try {
        current = (await this.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural, name })) as Record<string, unknown>;
      } catch (err) {
        if (httpCode(err) === 404) return false;
        throw err;
      }
      const status = compute(current);
      if (!status || statusEqual(current.status as ObjectStatus | undefined, status)) return false;
      try {
        await this.custom.replaceNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, namespace, plural, name, body: { ...current, status } });
        return true;
      } catch (err) {
        if (httpCode(err) !== 409) throw err;
      }
    }
    throw new Error(`status of ${namespace}/${name}: too many conflicts`);
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
