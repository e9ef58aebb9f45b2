/**
 * An immutable, compiled view of all policies, swapped atomically on reload. Routing: an Envoy
 * context extension portcullis.io/policy=namespace/name selects a policy directly; otherwise the
 * host (exact, then the longest *. wildcard) and the path choose among the policies of that host,
 * oldest first. Two policies never claim the same host and path: the store refuses the newer
 * (extauthz/policy/checks.ts) before a snapshot is built.
 *
 * A snapshot is derived from the previous one copy-on-write (derive): the maps are copied, the
 * compiled policies and tenant directories that did not change are shared, and only the host
 * lists the change touches are rebuilt, so a one-object edit at 10,000 policies costs a few map
 * copies, not a rebuild.
 */
import type { PolicyError } from '../errors.js';
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
  readonly byKey: ReadonlyMap<string, CompiledPolicy>;
  readonly tenants: ReadonlyMap<string, TenantDirectory>;
  readonly conflicts: readonly PolicyError[];
  private readonly hosts: HostIndex<CompiledPolicy>;
  /** Shadow policies (spec.mode: shadow) route through their own index: they never decide. */
  private readonly shadowHosts: HostIndex<CompiledPolicy>;
  /** Whether any shadow policy is loaded: without one, routeShadow costs a boolean test. */
  readonly hasShadowPolicies: boolean;

  private constructor(parts: { version: number; byKey: ReadonlyMap<string, CompiledPolicy>; hosts: HostIndex<CompiledPolicy>; shadowHosts: HostIndex<CompiledPolicy>; tenants: ReadonlyMap<string, TenantDirectory>; conflicts: readonly PolicyError[] }) {
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
    const byKey = new Map<string, CompiledPolicy>();
    const hosts = HostIndex.empty<CompiledPolicy>();
    const shadowHosts = HostIndex.empty<CompiledPolicy>();
    for (const p of [...policies].sort((a, b) => (a.age < b.age ? -1 : a.age > b.age ? 1 : 0))) {
      byKey.set(p.key, p);
      const index = p.mode === 'shadow' ? shadowHosts : hosts;
      for (const h of p.hosts) index.add(h, p);
    }
    return new PolicySnapshot({ version, byKey, hosts, shadowHosts, tenants, conflicts });
  }

  /** The next snapshot: this one with the change applied, sharing everything it does not touch. */
  derive(version: number, change: SnapshotChange): PolicySnapshot {
    const byKey = new Map(this.byKey);
    const hosts = this.hosts.clone();
    const shadowHosts = this.shadowHosts.clone();
    const indexOf = (p: CompiledPolicy): HostIndex<CompiledPolicy> => (p.mode === 'shadow' ? shadowHosts : hosts);
    for (const key of change.removed) {
      const old = byKey.get(key);
      if (!old) continue;
      byKey.delete(key);
      for (const h of old.hosts) indexOf(old).remove(h, old);
    }
    for (const p of change.upserted) {
      const old = byKey.get(p.key);
      if (old) for (const h of old.hosts) indexOf(old).remove(h, old);
      byKey.set(p.key, p);
      for (const h of p.hosts) indexOf(p).add(h, p, older);
    }
    const tenants = new Map(this.tenants);
    for (const [ns, dir] of change.tenants) {
      if (dir) tenants.set(ns, dir);
      else tenants.delete(ns);
    }
    return new PolicySnapshot({ version, byKey, hosts, shadowHosts, tenants, conflicts: change.conflicts });
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
