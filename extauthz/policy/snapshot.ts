/**
 * An immutable, compiled view of all policies, swapped atomically on reload. Routing: an Envoy
 * context extension portcullis.io/policy=namespace/name selects a policy directly; otherwise the
 * host (exact, then the longest *. wildcard) and the path choose among the policies of that host,
 * oldest first. Two policies never claim the same host and path: the store refuses the newer
 * (extauthz/policy/checks.ts) before a snapshot is built.
 *
 * A snapshot is derived from the previous one copy-on-write (derive): its maps are persistent
 * (cow-map.ts), so the compiled policies, tenant directories and host lists that did not change
 * are shared and only the map shards and host lists the change touches are copied; a one-object
 * edit at 10,000 policies copies a few dozen entries, not the maps.
 */
import type { PolicyError } from '../errors.js';
import { CowMap } from './cow-map.js';
import { HostIndex } from './hosts.js';
import { matchPath } from './paths.js';
import type { CompiledPolicy } from './compile.js';
import type { TenantDirectory } from './tenants.js';

export const POLICY_CONTEXT_KEY = 'portcullis.io/policy';

const older = (a: CompiledPolicy, b: CompiledPolicy): boolean => a.age < b.age;

export interface SnapshotChange {
  /** Keys of policies that left the snapshot or whose compiled version changed. */
  removed: Iterable<string>;
  /** Policies that entered or replaced an earlier version. */
  upserted: Iterable<CompiledPolicy>;
  /** Namespaces whose tenant directory changed (absent from `tenants`: the namespace has none left). */
  tenants: ReadonlyMap<string, TenantDirectory | undefined>;
  /** Host conflicts of the whole set, for logs (the refused policies are not in the snapshot). */
  conflicts: readonly PolicyError[];
}

export class PolicySnapshot {
  readonly createdAt = new Date();

  readonly version: number;
  readonly byKey: CowMap<CompiledPolicy>;
  readonly tenants: CowMap<TenantDirectory>;
  readonly conflicts: readonly PolicyError[];
  private readonly hosts: HostIndex<CompiledPolicy>;
  /** Shadow policies (spec.mode: shadow) route through their own index: they never decide. */
  private readonly shadowHosts: HostIndex<CompiledPolicy>;
  /** Whether any shadow policy is loaded: without one, routeShadow costs a boolean test. */
  readonly hasShadowPolicies: boolean;

  private constructor(parts: { version: number; byKey: CowMap<CompiledPolicy>; hosts: HostIndex<CompiledPolicy>; shadowHosts: HostIndex<CompiledPolicy>; tenants: CowMap<TenantDirectory>; conflicts: readonly PolicyError[] }) {
    this.version = parts.version;
    this.byKey = parts.byKey;
    this.hosts = parts.hosts;
    this.shadowHosts = parts.shadowHosts;
    this.hasShadowPolicies = !parts.shadowHosts.isEmpty();
    this.tenants = parts.tenants;
    this.conflicts = parts.conflicts;
  }

  /** A snapshot of exactly these policies (claims already free of conflicts). */
  static of(version: number, policies: readonly CompiledPolicy[], tenants: ReadonlyMap<string, TenantDirectory>, conflicts: readonly PolicyError[] = []): PolicySnapshot {
    const sorted = [...policies].sort((a, b) => (a.age < b.age ? -1 : a.age > b.age ? 1 : 0));
    const byKey = CowMap.from(sorted.map((p) => [p.key, p] as const));
    const index = (mode: CompiledPolicy['mode']): HostIndex<CompiledPolicy> =>
      HostIndex.empty<CompiledPolicy>().edit((e) => {
        for (const p of sorted) if (p.mode === mode) for (const h of p.hosts) e.add(h, p);
      });
    return new PolicySnapshot({ version, byKey, hosts: index('enforce'), shadowHosts: index('shadow'), tenants: CowMap.from(tenants), conflicts });
  }

  /** The next snapshot: this one with the change applied, copying only the map shards and host lists it touches. */
  derive(version: number, change: SnapshotChange): PolicySnapshot {
    const removals: CompiledPolicy[] = [];
    const additions: CompiledPolicy[] = [];
    const byKey = this.byKey.update((w) => {
      for (const key of change.removed) {
        const old = w.get(key);
        if (!old) continue;
        w.delete(key);
        removals.push(old);
      }
      for (const p of change.upserted) {
        const old = w.get(p.key);
        if (old) removals.push(old);
        w.set(p.key, p);
        additions.push(p);
      }
    });
    const reindex = (index: HostIndex<CompiledPolicy>, mode: CompiledPolicy['mode']): HostIndex<CompiledPolicy> =>
      index.edit((e) => {
        for (const old of removals) if (old.mode === mode) for (const h of old.hosts) e.remove(h, old);
        for (const p of additions) if (p.mode === mode) for (const h of p.hosts) e.add(h, p, older);
      });
    const tenants = this.tenants.update((w) => {
      for (const [ns, dir] of change.tenants) {
        if (dir) w.set(ns, dir);
        else w.delete(ns);
      }
    });
    return new PolicySnapshot({ version, byKey, hosts: reindex(this.hosts, 'enforce'), shadowHosts: reindex(this.shadowHosts, 'shadow'), tenants, conflicts: change.conflicts });
  }

  get policies(): IterableIterator<CompiledPolicy> {
    return this.byKey.values();
  }

  get size(): number {
    return this.byKey.size;
  }

  /** The policy that decides a request, or undefined (deny by default). */
  route(host: string, segments: readonly string[], contextExtensions: Readonly<Record<string, string>>): CompiledPolicy | undefined {
    const named = contextExtensions[POLICY_CONTEXT_KEY];
    if (named !== undefined) {
      const p = this.byKey.get(named);
      return p?.mode === 'shadow' ? undefined : p;
    }
    return pick(this.hosts.lookup(host), segments);
  }

  /** The shadow policy (spec.mode: shadow) for the request, if any: evaluated beside the decision, never deciding. */
  routeShadow(host: string, segments: readonly string[], contextExtensions: Readonly<Record<string, string>>): CompiledPolicy | undefined {
    if (!this.hasShadowPolicies) return undefined;
    const named = contextExtensions[POLICY_CONTEXT_KEY];
    if (named !== undefined) {
      const p = this.byKey.get(named);
      return p?.mode === 'shadow' ? p : undefined;
    }
    return pick(this.shadowHosts.lookup(host), segments);
  }
}

function pick(candidates: readonly CompiledPolicy[], segments: readonly string[]): CompiledPolicy | undefined {
  if (candidates.length <= 1) return candidates[0];
  return candidates.find((p) => coversPath(p, segments)) ?? candidates[0];
}

/** Only the rules that decide choose the policy: a shadow rule's path does not route requests. */
function coversPath(p: CompiledPolicy, segments: readonly string[]): boolean {
  return p.rules.some((r) => (!r.shadow || p.mode === 'shadow') && (!r.paths || r.paths.some((t) => matchPath(t, segments) !== undefined)));
}
