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
import { CowMap, type CowEditor } from './cow-map.js';
import { HostIndex, type HostIndexEditor } from './hosts.js';
import { matchPath } from './paths.js';
import type { CompiledPolicy } from './compile.js';
import type { TenantDirectory } from './tenants.js';

export const POLICY_CONTEXT_KEY = 'portcullis.io/policy';

const older = (a: CompiledPolicy, b: CompiledPolicy): boolean => a.age < b.age;

/** Policies per step of a stepwise build. */
const STEP = 256;

/** Removals, then additions and replacements, into byKey and the host index each policy routes by. */
function* writePolicies(byKey: CowEditor<CompiledPolicy>, indexOf: (p: CompiledPolicy) => HostIndexEditor<CompiledPolicy>, removed: Iterable<string>, upserted: Iterable<CompiledPolicy>): Generator<void, void, void> {
  let n = 0;
  const unindex = (old: CompiledPolicy): void => {
    for (const h of old.hosts) indexOf(old).remove(h, old);
  };
  for (const key of removed) {
    const old = byKey.get(key);
    if (!old) continue;
    byKey.delete(key);
    unindex(old);
    if (++n % STEP === 0) yield;
  }
  for (const p of upserted) {
    const old = byKey.get(p.key);
    if (old) unindex(old);
    byKey.set(p.key, p);
    // Each host list stays in age order (routing picks the oldest policy that covers the path).
    for (const h of p.hosts) indexOf(p).add(h, p, older);
    if (++n % STEP === 0) yield;
  }
}

function withTenants(tenants: CowMap<TenantDirectory>, changes: ReadonlyMap<string, TenantDirectory | undefined>): CowMap<TenantDirectory> {
  return tenants.update((w) => {
    for (const [ns, dir] of changes) {
      if (dir) w.set(ns, dir);
      else w.delete(ns);
    }
  });
}


export interface SnapshotChange {
  /** Keys of policies that left the snapshot or whose compiled version changed. */
  removed: Iterable<string>;
  /** Policies that entered or replaced an earlier version. */
  upserted: Iterable<CompiledPolicy>;
  /** Namespaces whose tenant directory changed (undefined: the namespace has none left). */
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

  /**
   * The next snapshot (from `prev`, or from nothing) built in steps: it yields every few hundred
   * policies, so a sliced reload of 10,000 policies gives the event loop turns here too. Nothing
   * is visible until it returns.
   */
  static *build(prev: PolicySnapshot | undefined, version: number, change: SnapshotChange): Generator<void, PolicySnapshot, void> {
    const byKey = (prev?.byKey ?? CowMap.empty<CompiledPolicy>()).edit();
    const hosts = (prev?.hosts ?? HostIndex.empty<CompiledPolicy>()).editor();
    const shadowHosts = (prev?.shadowHosts ?? HostIndex.empty<CompiledPolicy>()).editor();
    yield* writePolicies(byKey, (p) => (p.mode === 'shadow' ? shadowHosts : hosts), change.removed, change.upserted);
    const tenants = withTenants(prev?.tenants ?? CowMap.empty<TenantDirectory>(), change.tenants);
    return new PolicySnapshot({ version, byKey: byKey.done(), hosts: hosts.done(), shadowHosts: shadowHosts.done(), tenants, conflicts: change.conflicts });
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
