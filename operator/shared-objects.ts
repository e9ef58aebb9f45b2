/**
 * The namespace pass over shared objects. Istio's generated objects belong to a workload, not to
 * a policy (translate.ts): every policy targeting a Service needs the same CUSTOM
 * AuthorizationPolicy, a STRICT PeerAuthentication when any of them admits agencies, and an
 * ext_proc EnvoyFilter when any of them masks. A policy's reconcile applies the ones it needs; no
 * single policy can tell when one is no longer needed, so this pass, keyed by namespace, computes
 * the union over the namespace's cached policies, applies what the cache lacks or another
 * manager changed (drift), and deletes the rest: objects no policy needs, and the per-policy
 * Istio objects an earlier version generated.
 *
 * Fail closed: a refused or unreadable policy keeps its previous outputs (as its own reconcile
 * does), and since its earlier targets are not known here, nothing in that namespace is deleted
 * until it is fixed or removed. A stale object only sends traffic to Portcullis, which denies
 * hosts it does not know; a missing one would let requests bypass it.
 */
import { sourcesFrom } from '../kube/objects.js';
import { childKey } from './kube-client.js';
import { applyObjects, enabledOutputs, translationOf, type ReconcilerDeps } from './reconcile.js';
import { isShared, type GeneratedObject } from './translate.js';

export interface SharedPassResult {
  /** Objects some policy needs, as "Kind/name". */
  desired: string[];
  deleted: string[];
  /** Why deletions were held back (a refused or unreadable policy), if they were. */
  held?: string;
}

export class SharedObjectsReconciler {
  constructor(private readonly deps: ReconcilerDeps) {}

  async reconcile(namespace: string): Promise<SharedPassResult> {
    // The union is read under the lock too: a policy that enters the cache after it was read
    // applies what it needs after this pass, never before a deletion computed without it.
    return this.deps.locks.run(namespace, async () => {
      const { desired, held } = await this.desired(namespace);
      const objects = [...desired.values()];
      // Object by object: one the API server refuses must not keep a deleted one of another
      // workload from being restored.
      const failures: string[] = [];
      for (const o of objects) {
        const applied = await applyObjects(this.deps, [o]);
        if (typeof applied === 'string') failures.push(applied);
      }
      const deleted = held === undefined ? await this.deps.client.pruneShared(namespace, enabledOutputs(this.deps.outputs), objects) : [];
      if (deleted.length > 0) this.deps.log.info({ namespace, deleted }, 'removed shared mesh objects no policy needs');
      if (held !== undefined) this.deps.log.info({ namespace, reason: held }, 'shared mesh objects of the namespace are not pruned');
      // The policies' own reconciles report the failure in their status; this pass retries.
      if (failures.length > 0) throw new Error(failures.join('; '));
      return { desired: objects.map((o) => `${o.kind}/${o.metadata.name}`), deleted, ...(held !== undefined ? { held } : {}) };
    });
  }

  private async desired(namespace: string): Promise<{ desired: Map<string, GeneratedObject>; held?: string }> {
    const desired = new Map<string, GeneratedObject>();
    let held: string | undefined;
    for (const raw of this.deps.caches.policies.list(namespace)) {
      const name = raw.metadata?.name ?? '';
      const [policy] = sourcesFrom([raw], [], []).policies;
      if (!policy) {
        held ??= `ApiPolicy ${namespace}/${name} could not be read`;
        continue;
      }
      if ((await this.deps.validation.policy(`${namespace}/${name}`)).errors.length > 0) {
        held ??= `ApiPolicy ${namespace}/${name} is refused; its earlier outputs are kept`;
        continue;
      }
      for (const o of (await translationOf(this.deps, policy, raw)).objects) if (isShared(o)) desired.set(childKey(o), o);
    }
    return { desired, ...(held !== undefined ? { held } : {}) };
  }
}
