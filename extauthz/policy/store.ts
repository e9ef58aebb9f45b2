/**
 * One reload model for both policy sources (a folder, the Kubernetes API). The store keeps one
 * entry per object: its fingerprint, its compiled current version (or why it does not compile)
 * and the version that serves. Each apply() takes the full desired set, and
 *
 * - compiles only objects whose fingerprint changed (spec, or uid/generation in the cluster, so
 *   status-only and label-only updates compile nothing);
 * - relinks (no CEL compile) the policies of a namespace whose tenants changed;
 * - runs the cross-object checks (checks.ts) in the snapshot's age order;
 * - keeps an object's last good version serving when its new version is refused, and says so in
 *   its report (serving: 'last-good');
 * - derives the next snapshot copy-on-write from the previous one.
 *
 * applyAsync() runs the same steps in slices of a few milliseconds, yielding to the event loop
 * between objects, so compiling 10,000 policies never holds up in-flight Checks; runs are
 * serialised, and a Check always sees one complete snapshot.
 */
import { PolicyError } from '../errors.js';
import { firstClash, HostClaims, hostClaims, type TenantEntry } from './checks.js';
import { warmQuotaExpressions } from '../quota/model.js';
import { compilePolicySteps, linkPolicy, type CompiledPolicy, type UnlinkedResult } from './compile.js';
import { resolveSchemaRefs, schemaRefsFingerprint } from './schema-refs.js';
import { objectKey, type ApiPolicyObject, type ObjectMeta, type PolicySources, type SecretObject, type TenantObject } from './model.js';
import { CowMap, type CowEditor } from './cow-map.js';
import { PolicySnapshot } from './snapshot.js';
import { directoryOf, JwksCache, tenantAge, TenantDirectory, tryCompileTenant, type CompiledTenant, type RevocationFile, type TenantCompileOptions } from './tenants.js';

export type Serving = 'current' | 'last-good' | 'none';

/** What the engine made of one object: the structured result the operator's status is built from. */
export interface ObjectReport {
  kind: 'ApiPolicy' | 'Tenant';
  /** namespace/name */
  key: string;
  /** metadata.generation of the object as last seen. */
  generation?: number;
  /** current: this version serves; last-good: an earlier version serves; none: nothing serves. */
  serving: Serving;
  /** metadata.generation of the version that serves. */
  servingGeneration?: number;
  /** Problems that refuse the current version (severity error). */
  errors: PolicyError[];
  warnings: PolicyError[];
}

export interface StoreInput extends PolicySources {
  /** Objects whose current version could not be read (YAML or schema), by "Kind namespace/name". */
  broken?: ReadonlyMap<string, readonly PolicyError[]>;
  /** Folder mode: the revocation files tenants name, by path in the folder (absent: not a folder, revocation.file is refused). */
  files?: ReadonlyMap<string, RevocationFile>;
  /**
   * How `policies` differs from the previous input's, when the source knows (the cluster
   * source does, from its watch events). A hint only: it is used when the store's last run
   * applied exactly `since` and nothing else asks for every policy to be looked at (a tenant
   * or ConfigMap change, broken objects); then only the changed policies are visited and a
   * one-policy change at 10,000 costs one policy, not a pass over all of them. Otherwise the
   * run scans `policies` as it would without it.
   */
  policyChanges?: PolicyChanges;
}

export interface PolicyChanges {
  /** The `policies` array of the input these changes follow. */
  since: readonly ApiPolicyObject[];
  /** namespace/name → its object in this input, or undefined when it left the input. */
  changed: ReadonlyMap<string, ApiPolicyObject | undefined>;
}

export interface ApplyResult {
  snapshot: PolicySnapshot;
  /** False when the snapshot is the previous one (nothing that serves changed). */
  changed: boolean;
  /** Every object's report, by "Kind namespace/name" (a persistent map: later runs leave it as it is). */
  reports: ReadonlyMap<string, ObjectReport>;
  /** Keys whose report this run set or removed: what a consumer diffs instead of every report. */
  changedReports: ReadonlySet<string>;
  /** Every report's errors and warnings, in report order (collected when first read). */
  readonly problems: PolicyError[];
  readonly warnings: PolicyError[];
  /**
   * ms: the whole run; longestSliceMs: the longest the run held the event loop at once (the whole
   * run when synchronous), and longestSliceCpuMs the main thread's CPU time in that slice — on a
   * loaded machine the wall time includes time the process was not running at all.
   */
  stats: { policiesCompiled: number; policiesLinked: number; tenantsCompiled: number; ms: number; longestSliceMs: number; longestSliceCpuMs: number };
}

export interface StoreOptions extends TenantCompileOptions {
  jwks?: JwksCache;
  /** Version identity of an object: equal fingerprints are not compiled again. */
  fingerprint?: (o: { metadata: ObjectMeta; spec: unknown }) => string;
}

/** Folder objects have no reliable generation: the spec itself (and its age) is the identity. */
export function specFingerprint(o: { metadata: ObjectMeta; spec: unknown }): string {
  return `${o.metadata.creationTimestamp ?? ''}\u0000${JSON.stringify(o.spec)}`;
}

/** Cluster objects: the API server bumps metadata.generation on every spec change, and only then. */
export function generationFingerprint(o: { metadata: ObjectMeta; spec: unknown }): string {
  const { uid, generation } = o.metadata;
  return uid !== undefined && generation !== undefined ? `${uid}/${generation}` : specFingerprint(o);
}

interface TenantState {
  fp: string;
  obj?: TenantObject;
  age: string;
  current?: CompiledTenant;
  own: PolicyError[];
  lastGood?: { tenant: CompiledTenant; generation?: number };
  serving?: CompiledTenant;
  clash?: PolicyError;
}

interface PolicyState {
  key: string;
  fp: string;
  obj?: ApiPolicyObject;
  age: string;
  unlinked?: CompiledPolicy;
  own: PolicyError[];
  ownWarnings: PolicyError[];
  /** The current version linked to its namespace, when that succeeds. */
  candidate?: CompiledPolicy;
  linkErrors: PolicyError[];
  linkWarnings: PolicyError[];
  /** The last version that served, unlinked, with its generation. */
  lastGood?: { policy: CompiledPolicy; generation?: number };
  /** lastGood linked to the current directory (when the current version cannot serve). */
  fallback?: CompiledPolicy;
  serving?: CompiledPolicy;
  hostError?: PolicyError;
  /** The last run whose input held this policy, and the run that compiled this state. */
  seenIn?: number;
  compiledIn?: number;
}

const BROKEN = '\u0000broken';
let snapshotVersion = 0;

/** What one run works on and collects. */
interface RunState {
  input: StoreInput;
  broken: ReadonlyMap<string, readonly PolicyError[]>;
  secrets: ReadonlyMap<string, SecretObject>;
  /** Secrets (namespace/name), ConfigMaps ("ConfigMap namespace/name") and files ("File path") that changed. */
  changedSecrets: Set<string>;
  compileOptions: TenantCompileOptions;
  /** Namespaces whose tenants changed: their directories are rebuilt and their policies relinked. */
  touched: Set<string>;
  relink: Set<string>;
  removed: Set<string>;
  /** A ConfigMap changed: body schemas may have, so every policy's fingerprint is computed (not just compared by identity). */
  configMapsChanged: boolean;
  stats: ApplyResult['stats'];
}

/** A run yields between objects; the driver decides whether to give the event loop a turn. */
type Run = Generator<void, ApplyResult, void>;

export class PolicyStore {
  private readonly tenants = new Map<string, TenantState>();
  private readonly policies = new Map<string, PolicyState>();
  /** Input objects as last applied, so an unchanged one is recognised without computing its key or fingerprint. */
  private readonly byObject = new WeakMap<ApiPolicyObject, PolicyState>();
  private readonly secretFps = new Map<string, string>();
  private readonly directories = new Map<string, TenantDirectory>();
  private reports = CowMap.empty<ObjectReport>();
  /** The next reports version while a run writes it, and the keys the run set or removed. */
  private reportEdits: CowEditor<ObjectReport> = this.reports.edit();
  private changedReports = new Set<string>();
  /** Policies whose serving version is refused for a host claim (the snapshot's conflicts). */
  private readonly hostErrors = new Map<string, PolicyError>();
  /** Policy keys in age order: the order host claims are resolved in (sorted lazily after inserts). */
  private order: string[] = [];
  private orderDirty = false;
  /** Claims each policy's candidate and fallback make, and how many policies make each claim. */
  private readonly contrib = new Map<string, readonly string[]>();
  private readonly claimCount = new Map<string, number>();
  private current: PolicySnapshot | undefined;
  private readonly jwks: JwksCache;
  private readonly fingerprint: (o: { metadata: ObjectMeta; spec: unknown }) => string;
  private queue: Promise<unknown> = Promise.resolve();
  private runs = 0;
  /** The policies of the last run's input: what a PolicyChanges hint must follow to be used. */
  private lastPolicies: readonly ApiPolicyObject[] | undefined;

  constructor(private readonly options: StoreOptions = {}) {
    this.jwks = options.jwks ?? new JwksCache();
    this.fingerprint = options.fingerprint ?? specFingerprint;
  }

  get snapshot(): PolicySnapshot | undefined {
    return this.current;
  }

  /** Applies the desired set synchronously (validate, check, tests). */
  apply(input: StoreInput): ApplyResult {
    const run = this.run(input);
    for (;;) {
      const step = run.next();
      if (step.done) return step.value;
    }
  }

  /** Applies the desired set in slices of sliceMs, yielding to the event loop in between; runs are serialised. */
  applyAsync(input: StoreInput, sliceMs = 4): Promise<ApplyResult> {
    const next = this.queue.then(() => drive(this.run(input), sliceMs));
    this.queue = next.catch(() => undefined);
    return next;
  }

  private *run(input: StoreInput): Run {
    const t0 = performance.now();
    const cpu0 = process.threadCpuUsage();
    const r: RunState = {
      input,
      broken: input.broken ?? new Map<string, readonly PolicyError[]>(),
      secrets: new Map(input.secrets.map((s) => [objectKey(s), s])),
      changedSecrets: this.secretChanges(input),
      compileOptions: this.compileOptions(input),
      touched: new Set(),
      relink: new Set(),
      removed: new Set(),
      configMapsChanged: false,
      stats: { policiesCompiled: 0, policiesLinked: 0, tenantsCompiled: 0, ms: 0, longestSliceMs: 0, longestSliceCpuMs: 0 },
    };
    r.configMapsChanged = [...r.changedSecrets].some((k) => k.startsWith('ConfigMap '));
    this.reportEdits = this.reports.edit();
    this.changedReports = new Set();
    yield* this.updateTenants(r);
    const dirChanges = this.rebuildDirectories(r.touched);
    yield* this.updatePolicies(r);
    const claimChanges = new Map<string, { old: readonly string[]; next: readonly string[] }>();
    for (const key of r.relink) {
      this.link(key);
      this.updateContribution(key, claimChanges);
      r.stats.policiesLinked++;
      if (r.stats.policiesLinked % 64 === 0) yield;
    }
    for (const key of r.removed) this.updateContribution(key, claimChanges);
    const { upserted, hostsChanged } = yield* this.resolve(r, claimChanges);
    const changed = upserted.length > 0 || r.removed.size > 0 || dirChanges.size > 0 || hostsChanged || this.current === undefined;
    if (changed) this.current = yield* this.nextSnapshot(upserted, r.removed, dirChanges);
    r.stats.ms = performance.now() - t0;
    r.stats.longestSliceMs = r.stats.ms;
    r.stats.longestSliceCpuMs = threadCpuMs(cpu0);
    return this.result(changed, r.stats);
  }

  private compileOptions(input: StoreInput): TenantCompileOptions {
    const opts: TenantCompileOptions = { ...this.options, configMaps: new Map((input.configMaps ?? []).map((c) => [objectKey(c), c])) };
    if (input.files) opts.files = input.files;
    return opts;
  }

  /** What tenants depend on besides their spec (Secrets, ConfigMaps, revocation files), with a fingerprint each. */
  private static dependencies(input: StoreInput): [string, string][] {
    const deps: [string, string][] = input.secrets.map((s) => [objectKey(s), JSON.stringify(s.values)]);
    for (const c of input.configMaps ?? []) deps.push([`ConfigMap ${objectKey(c)}`, JSON.stringify(c.values)]);
    for (const [path, f] of input.files ?? []) deps.push([`File ${path}`, JSON.stringify(f)]);
    return deps;
  }

  private secretChanges(input: StoreInput): Set<string> {
    const changed = new Set<string>();
    const seen = new Set<string>();
    for (const [key, fp] of PolicyStore.dependencies(input)) {
      seen.add(key);
      if (this.secretFps.get(key) !== fp) changed.add(key);
      this.secretFps.set(key, fp);
    }
    for (const key of [...this.secretFps.keys()]) {
      if (!seen.has(key)) {
        this.secretFps.delete(key);
        changed.add(key);
      }
    }
    return changed;
  }

  private tenantUnchanged(t: TenantObject, prev: TenantState | undefined, r: RunState): boolean {
    if (prev === undefined || prev.fp === BROKEN || (prev.obj !== t && prev.fp !== this.fingerprint(t))) return false;
    return r.changedSecrets.size === 0 || !tenantDependencies(t).some((d) => r.changedSecrets.has(d));
  }

  private *updateTenants(r: RunState): Generator<void, void, void> {
    const seen = new Set<string>();
    for (const t of r.input.tenants) {
      const key = objectKey(t);
      seen.add(key);
      const prev = this.tenants.get(key);
      if (this.tenantUnchanged(t, prev, r)) {
        // The same version in a new object (a re-list): compare by identity next time.
        prev!.obj = t;
        continue;
      }
      const fp = this.fingerprint(t);
      yield* warmQuotaExpressions(t.spec.quotas ?? []);
      const compiled = tryCompileTenant(t, r.secrets, this.jwks, r.compileOptions);
      const state: TenantState = { ...(prev ?? { own: [] }), fp, obj: t, age: tenantAge(t), own: [] };
      delete state.current;
      if (compiled instanceof PolicyError) state.own = [compiled];
      else state.current = compiled;
      this.tenants.set(key, state);
      r.touched.add(t.metadata.namespace);
      r.stats.tenantsCompiled++;
      yield;
    }
    this.dropTenants(seen, r);
  }

  /** Tenants gone from the input: deleted, unless their current version is broken (then the last good stays). */
  private dropTenants(seen: Set<string>, r: RunState): void {
    for (const [key, state] of [...this.tenants]) {
      if (seen.has(key)) continue;
      const problems = r.broken.get(`Tenant ${key}`);
      r.touched.add(namespaceOf(key));
      if (!problems) {
        this.tenants.delete(key);
        this.setReport(`Tenant ${key}`, undefined);
        continue;
      }
      delete state.current;
      state.own = [...problems];
      state.fp = BROKEN;
    }
    for (const [id, problems] of r.broken) {
      const key = id.slice('Tenant '.length);
      if (!id.startsWith('Tenant ') || this.tenants.has(key)) continue;
      this.tenants.set(key, { fp: BROKEN, age: `\u0000${key}`, own: [...problems] });
      r.touched.add(namespaceOf(key));
    }
  }

  /** Rebuilds the directories of the touched namespaces; identity overlaps refuse the newer tenant. */
  private rebuildDirectories(touched: Set<string>): Map<string, TenantDirectory | undefined> {
    const changes = new Map<string, TenantDirectory | undefined>();
    if (touched.size === 0) return changes;
    const byNs = new Map<string, [string, TenantState][]>();
    for (const entry of this.tenants) {
      const ns = entry[0].slice(0, entry[0].indexOf('/'));
      if (touched.has(ns)) byNs.set(ns, [...(byNs.get(ns) ?? []), entry]);
    }
    for (const ns of touched) {
      const entries = (byNs.get(ns) ?? []).sort((a, b) => (a[1].age < b[1].age ? -1 : a[1].age > b[1].age ? 1 : 0));
      const kept: TenantEntry<CompiledTenant>[] = [];
      for (const [key, state] of entries) this.chooseTenant(key, state, kept);
      const dir = kept.length > 0 ? directoryOf(kept.map((k) => k.tenant)) : undefined;
      if (dir) this.directories.set(ns, dir);
      else this.directories.delete(ns);
      changes.set(ns, dir);
    }
    return changes;
  }

  private chooseTenant(key: string, state: TenantState, kept: TenantEntry<CompiledTenant>[]): void {
    const where = { ...(state.obj?.origin ?? {}), object: `Tenant ${key}` };
    const entry = (tenant: CompiledTenant): TenantEntry<CompiledTenant> => ({ tenant, age: state.age, where });
    const chosen = pickTenant(state, (t) => firstClash(kept, entry(t)));
    state.serving = chosen;
    if (chosen) kept.push(entry(chosen));
    if (chosen && chosen === state.current) state.lastGood = { tenant: chosen, ...generationOf(state.obj) };
    this.setReport(`Tenant ${key}`, this.tenantReport(key, state));
  }

  private tenantReport(key: string, s: TenantState): ObjectReport {
    const errors = [...s.own, ...(s.clash ? [s.clash] : [])];
    const serving: Serving = !s.serving ? 'none' : s.serving === s.current ? 'current' : 'last-good';
    if (serving === 'last-good') errors.push(lastGoodNote('Tenant', key, s.obj?.origin, s.lastGood?.generation));
    const generation = s.obj?.metadata.generation;
    const servingGeneration = serving === 'none' ? undefined : s.lastGood?.generation;
    return { kind: 'Tenant', key, ...(generation !== undefined ? { generation } : {}), serving, ...(servingGeneration !== undefined ? { servingGeneration } : {}), errors, warnings: [] };
  }

  /**
   * Compiles the policies whose version changed. An input object that is the very object applied
   * last time is unchanged without computing its fingerprint (unless a ConfigMap changed), so at
   * 10,000 policies a one-policy edit costs a lookup per object, not 10,000 fingerprints; with a
   * usable PolicyChanges hint, not even the lookups.
   */
  private *updatePolicies(r: RunState): Generator<void, void, void> {
    const run = ++this.runs;
    const hint = r.input.policyChanges;
    const previous = this.lastPolicies;
    this.lastPolicies = undefined; // a run that throws part way leaves no base for a hint
    if (hint && previous !== undefined && hint.since === previous && r.touched.size === 0 && !r.configMapsChanged && r.broken.size === 0) yield* this.updateChanged(hint.changed, run, r);
    else yield* this.scanPolicies(run, r);
    this.lastPolicies = r.input.policies;
  }

  /**
   * The changed policies only, each as the scan would treat it: every other input object is the
   * one applied last time, and nothing a policy depends on outside its spec changed (checked by
   * the caller), so the scan would find each of them unchanged.
   */
  private *updateChanged(changed: PolicyChanges['changed'], run: number, r: RunState): Generator<void, void, void> {
    for (const [key, obj] of changed) {
      if (obj === undefined) {
        if (this.policies.has(key)) this.dropPolicy(key, r);
        continue;
      }
      const state = this.known(obj, r) ?? (yield* this.visit(obj, run, r));
      state.seenIn = run;
      if (state.compiledIn === run) yield;
    }
  }

  private *scanPolicies(run: number, r: RunState): Generator<void, void, void> {
    let distinct = 0;
    let scanned = 0;
    for (const obj of r.input.policies) {
      const state = this.known(obj, r) ?? (yield* this.visit(obj, run, r));
      if (state.seenIn !== run) distinct++; // a key twice in the input: the later object stands, as it always did
      state.seenIn = run;
      if (state.compiledIn === run || ++scanned % 1024 === 0) yield;
    }
    // Every policy the store holds was in the input, and nothing is broken: nothing to drop.
    if (distinct === this.policies.size && r.broken.size === 0) return;
    this.dropPolicies(run, r);
  }

  /** The state of an input object that is the very object applied last time (no key, no fingerprint computed). */
  private known(obj: ApiPolicyObject, r: RunState): PolicyState | undefined {
    const same = this.byObject.get(obj);
    if (!same || !this.isCurrent(same, obj, r)) return undefined;
    if (r.touched.has(obj.metadata.namespace)) r.relink.add(same.key);
    return same;
  }

  /** Any other input policy: found by key, compiled when its fingerprint changed. */
  private *visit(obj: ApiPolicyObject, run: number, r: RunState): Generator<void, PolicyState, void> {
    const key = objectKey(obj);
    const prev = this.policies.get(key);
    const state = yield* this.updatePolicy(obj, key, prev, r);
    if (state !== prev) state.compiledIn = run;
    return state;
  }

  /** The object this state was last given, still the policy's state, and nothing it depends on outside its spec changed. */
  private isCurrent(state: PolicyState, obj: ApiPolicyObject, r: RunState): boolean {
    return state.obj === obj && state.fp !== BROKEN && !r.configMapsChanged && this.policies.get(state.key) === state;
  }

  private *updatePolicy(obj: ApiPolicyObject, key: string, prev: PolicyState | undefined, r: RunState): Generator<void, PolicyState, void> {
    const unchanged = (): PolicyState => {
      if (r.touched.has(obj.metadata.namespace)) r.relink.add(key);
      return prev!;
    };
    if (prev && this.isCurrent(prev, obj, r)) return unchanged();
    // A body schema held in a ConfigMap is part of the policy's version.
    const fp = this.fingerprint(obj) + schemaRefsFingerprint(obj, r.compileOptions.configMaps);
    if (prev && prev.fp === fp) {
      // The same version in a new object (a re-list): known by identity from now on.
      prev.obj = obj;
      this.byObject.set(obj, prev);
      return unchanged();
    }
    r.relink.add(key);
    r.stats.policiesCompiled++;
    return yield* this.compilePolicy(obj, fp, prev, r.compileOptions.configMaps);
  }

  /** Yields between the policy's rules (compilePolicySteps): one large policy is compiled in slices too. */
  private *compilePolicy(obj: ApiPolicyObject, fp: string, prev: PolicyState | undefined, configMaps: TenantCompileOptions['configMaps']): Generator<void, PolicyState, void> {
    const key = objectKey(obj);
    const resolved = resolveSchemaRefs(obj, configMaps);
    const compiled: UnlinkedResult = resolved.problems.length > 0 ? { problems: resolved.problems, warnings: [] } : yield* compilePolicySteps(resolved.obj);
    const age = compiled.policy?.age ?? `${obj.metadata.creationTimestamp ?? ''}\u0000${key}`;
    const state: PolicyState = { ...(prev ?? { linkErrors: [], linkWarnings: [] }), key, fp, obj, age, own: compiled.problems, ownWarnings: compiled.warnings };
    delete state.unlinked;
    if (compiled.policy) state.unlinked = compiled.policy;
    this.policies.set(key, state);
    this.byObject.set(obj, state);
    if (!prev) this.addToOrder(key);
    return state;
  }

  /** Policies gone from the input: deleted, unless their current version is broken (then the last good stays). */
  private dropPolicies(run: number, r: RunState): void {
    for (const [key, state] of [...this.policies]) {
      if (state.seenIn === run) continue;
      const problems = r.broken.get(`ApiPolicy ${key}`);
      if (problems) {
        delete state.unlinked;
        Object.assign(state, { own: [...problems], ownWarnings: [], fp: BROKEN });
        r.relink.add(key);
        continue;
      }
      this.dropPolicy(key, r);
    }
    for (const [id, problems] of r.broken) {
      const key = id.slice('ApiPolicy '.length);
      if (!id.startsWith('ApiPolicy ') || this.policies.has(key)) continue;
      this.policies.set(key, { key, fp: BROKEN, age: `\u0000${key}`, own: [...problems], ownWarnings: [], linkErrors: [], linkWarnings: [] });
      this.addToOrder(key);
      r.relink.add(key);
    }
  }

  private dropPolicy(key: string, r: RunState): void {
    this.policies.delete(key);
    this.hostErrors.delete(key);
    this.setReport(`ApiPolicy ${key}`, undefined);
    r.removed.add(key);
    this.orderDirty = true;
  }

  /** Links the current version (and the last good one, as a fallback) to the namespace's tenants. */
  private link(key: string): void {
    const s = this.policies.get(key)!;
    const dir = this.directories.get(namespaceOf(key)) ?? EMPTY;
    delete s.candidate;
    delete s.fallback;
    s.linkErrors = [];
    s.linkWarnings = [];
    if (s.unlinked) {
      const linked = linkPolicy(s.unlinked, dir);
      s.linkErrors = linked.problems;
      s.linkWarnings = linked.warnings;
      if (linked.policy) s.candidate = linked.policy;
    }
    const last = s.lastGood?.policy;
    if (last && last !== s.unlinked) {
      const linked = linkPolicy(last, dir);
      if (linked.policy) s.fallback = linked.policy;
    }
  }

  /**
   * Host claims: a policy whose claim an older accepted policy owns is refused (its last good
   * version is tried instead). Only the changed policies are decided when none of their claims,
   * before or after the change, is shared with another policy (no other policy's outcome can
   * change then); else every policy in age order. Returns what enters the snapshot.
   */
  private *resolve(r: RunState, claimChanges: Map<string, { old: readonly string[]; next: readonly string[] }>): Generator<void, { upserted: CompiledPolicy[]; hostsChanged: boolean }, void> {
    if (r.relink.size === 0 && r.removed.size === 0) return { upserted: [], hostsChanged: false };
    if (yield* this.contested(claimChanges)) return yield* this.resolveHosts(r.relink, r.removed);
    const upserted: CompiledPolicy[] = [];
    let n = 0;
    for (const key of r.relink) {
      const s = this.policies.get(key)!;
      const before = s.serving;
      const chosen = this.choosePolicy(key, s, UNCONTESTED);
      if (before !== chosen && chosen) upserted.push(chosen);
      else if (before !== chosen && before) r.removed.add(key);
      this.setReport(`ApiPolicy ${key}`, this.policyReport(key, s));
      if (++n % 256 === 0) yield;
    }
    return { upserted, hostsChanged: upserted.length > 0 || r.removed.size > 0 };
  }

  /** Keeps claimCount (how many policies' current or fallback versions claim each host × path) in step for one policy. */
  private updateContribution(key: string, changes: Map<string, { old: readonly string[]; next: readonly string[] }>): void {
    const s = this.policies.get(key);
    const old = this.contrib.get(key) ?? [];
    const next = s ? [...new Set([...(s.candidate ? hostClaims(s.candidate) : []), ...(s.fallback ? hostClaims(s.fallback) : [])])] : [];
    for (const c of old) {
      const n = (this.claimCount.get(c) ?? 1) - 1;
      if (n > 0) this.claimCount.set(c, n);
      else this.claimCount.delete(c);
    }
    for (const c of next) this.claimCount.set(c, (this.claimCount.get(c) ?? 0) + 1);
    if (next.length > 0) this.contrib.set(key, next);
    else this.contrib.delete(key);
    changes.set(key, { old, next });
  }

  /** True when a changed policy shares a claim, before or after the change, with any other policy. */
  private *contested(changes: Map<string, { old: readonly string[]; next: readonly string[] }>): Generator<void, boolean, void> {
    let n = 0;
    for (const { old, next } of changes.values()) {
      const mine = new Set(next);
      for (const c of [...old, ...next]) if ((this.claimCount.get(c) ?? 0) - (mine.has(c) ? 1 : 0) > 0) return true;
      if (++n % 1024 === 0) yield;
    }
    return false;
  }

  /** Appends a new key; the order is re-sorted once per run (a sorted insert per object would be quadratic). */
  private addToOrder(key: string): void {
    this.order.push(key);
    this.orderDirty = true;
  }

  private sortedOrder(): string[] {
    if (this.orderDirty) {
      const age = (k: string): string => this.policies.get(k)!.age;
      this.order = this.order.filter((k) => this.policies.has(k)).sort((a, b) => (age(a) < age(b) ? -1 : age(a) > age(b) ? 1 : 0));
      this.orderDirty = false;
    }
    return this.order;
  }

  private *resolveHosts(relink: Set<string>, removed: Set<string>): Generator<void, { upserted: CompiledPolicy[]; hostsChanged: boolean }, void> {
    const claims = new HostClaims();
    const upserted: CompiledPolicy[] = [];
    let hostsChanged = removed.size > 0;
    let n = 0;
    for (const key of this.sortedOrder()) {
      if (++n % 256 === 0) yield;
      const s = this.policies.get(key)!;
      const before = s.serving;
      const hadError = s.hostError?.message;
      const chosen = this.choosePolicy(key, s, claims);
      if (before !== chosen) {
        hostsChanged = true;
        if (chosen) upserted.push(chosen);
        else if (before) removed.add(key);
      }
      if (relink.has(key) || before !== chosen || hadError !== s.hostError?.message) this.setReport(`ApiPolicy ${key}`, this.policyReport(key, s));
    }
    return { upserted, hostsChanged };
  }

  /** The version of one policy that serves: the current one unless an older policy owns a claim, else the last good one. */
  private choosePolicy(key: string, s: PolicyState, claims: Pick<HostClaims, 'conflict' | 'add'>): CompiledPolicy | undefined {
    delete s.hostError;
    this.hostErrors.delete(key);
    const err = s.candidate ? claims.conflict(s.candidate) : undefined;
    if (err) {
      s.hostError = err;
      this.hostErrors.set(key, err);
    }
    let chosen = s.candidate && !err ? s.candidate : undefined;
    if (!chosen && s.fallback && !claims.conflict(s.fallback)) chosen = s.fallback;
    if (chosen) claims.add(chosen);
    s.serving = chosen;
    if (chosen && chosen === s.candidate) s.lastGood = { policy: s.unlinked!, ...generationOf(s.obj) };
    return chosen;
  }

  private policyReport(key: string, s: PolicyState): ObjectReport {
    const errors = [...s.own, ...s.linkErrors, ...(s.hostError ? [s.hostError] : [])];
    const serving: Serving = !s.serving ? 'none' : s.serving === s.candidate ? 'current' : 'last-good';
    if (serving === 'last-good') errors.push(lastGoodNote('ApiPolicy', key, s.obj?.origin, s.lastGood?.generation));
    const generation = s.obj?.metadata.generation;
    const servingGeneration = serving === 'none' ? undefined : s.lastGood?.generation;
    return { kind: 'ApiPolicy', key, ...(generation !== undefined ? { generation } : {}), serving, ...(servingGeneration !== undefined ? { servingGeneration } : {}), errors, warnings: [...s.ownWarnings, ...s.linkWarnings] };
  }

  private *nextSnapshot(upserted: CompiledPolicy[], removed: Set<string>, dirChanges: Map<string, TenantDirectory | undefined>): Generator<void, PolicySnapshot, void> {
    const conflicts = [...this.hostErrors.values()];
    const version = ++snapshotVersion;
    if (!this.current) {
      const serving = [...this.policies.values()].flatMap((s) => (s.serving ? [s.serving] : []));
      return yield* PolicySnapshot.build(undefined, version, { removed: [], upserted: serving, tenants: this.directories, conflicts });
    }
    return yield* PolicySnapshot.build(this.current, version, { removed, upserted, tenants: dirChanges, conflicts });
  }

  private setReport(id: string, report: ObjectReport | undefined): void {
    if (report) this.reportEdits.set(id, report);
    else this.reportEdits.delete(id);
    this.changedReports.add(id);
  }

  private result(changed: boolean, stats: ApplyResult['stats']): ApplyResult {
    this.reports = this.reportEdits.done();
    return outcome({ snapshot: this.current!, changed, reports: this.reports, changedReports: this.changedReports, stats });
  }
}

const EMPTY = new TenantDirectory();

/** The claims of a policy none of whose claims is shared: nothing to conflict with, nothing to record. */
const UNCONTESTED: Pick<HostClaims, 'conflict' | 'add'> = { conflict: () => undefined, add: () => undefined };

/** An apply's result; problems and warnings are gathered from every report only when read (a one-policy edit at 10,000 need not). */
function outcome(parts: Omit<ApplyResult, 'problems' | 'warnings'> & { reports: CowMap<ObjectReport> }): ApplyResult {
  const { reports } = parts;
  let gathered: { problems: PolicyError[]; warnings: PolicyError[] } | undefined;
  const gather = (): { problems: PolicyError[]; warnings: PolicyError[] } => {
    if (!gathered) {
      gathered = { problems: [], warnings: [] };
      for (const r of reports.values()) {
        gathered.problems.push(...r.errors);
        gathered.warnings.push(...r.warnings);
      }
    }
    return gathered;
  };
  return {
    ...parts,
    get problems() {
      return gather().problems;
    },
    get warnings() {
      return gather().warnings;
    },
  };
}

/** The dependency keys (as in secretChanges) of one tenant: its API-key Secret, revocation source and introspection secret. */
function tenantDependencies(t: TenantObject): string[] {
  const ns = t.metadata.namespace;
  const deps: string[] = [];
  const keys = t.spec.identity.apiKeys?.secretRef.name;
  if (keys !== undefined) deps.push(`${ns}/${keys}`);
  const rev = t.spec.revocation;
  if (rev?.secretRef) deps.push(`${ns}/${rev.secretRef.name}`);
  if (rev?.configMapRef) deps.push(`ConfigMap ${ns}/${rev.configMapRef.name}`);
  if (rev?.file !== undefined) deps.push(`File ${rev.file}`);
  const introspection = t.spec.identity.introspection?.clientSecretRef.name;
  if (introspection !== undefined) deps.push(`${ns}/${introspection}`);
  return deps;
}

/** The current tenant unless it clashes with a kept one (the clash is recorded), else the last good one if that fits. */
function pickTenant(state: TenantState, clashOf: (t: CompiledTenant) => PolicyError | undefined): CompiledTenant | undefined {
  delete state.clash;
  const clash = state.current ? clashOf(state.current) : undefined;
  if (clash) state.clash = clash;
  if (state.current && !clash) return state.current;
  const last = state.lastGood?.tenant;
  return last && last !== state.current && !clashOf(last) ? last : undefined;
}

function namespaceOf(key: string): string {
  return key.slice(0, key.indexOf('/'));
}

function generationOf(obj: { metadata: ObjectMeta } | undefined): { generation?: number } {
  return obj?.metadata.generation !== undefined ? { generation: obj.metadata.generation } : {};
}

function lastGoodNote(kind: string, key: string, origin: { file?: string; document?: number } | undefined, generation: number | undefined): PolicyError {
  const which = generation !== undefined ? `generation ${generation}` : 'the version loaded before this change';
  return new PolicyError('POLICY_INVALID', `this version is refused; the last good version (${which}) keeps serving`, { ...(origin ?? {}), object: `${kind} ${key}` });
}

/** Runs a store run to completion, giving the event loop a turn whenever a slice is used up. */
async function drive(run: Run, sliceMs: number): Promise<ApplyResult> {
  let sliceStart = performance.now();
  let sliceCpu = process.threadCpuUsage();
  let longest = 0;
  let longestCpu = 0;
  for (;;) {
    const step = run.next();
    const held = performance.now() - sliceStart;
    if (step.done || held >= sliceMs) {
      longest = Math.max(longest, held);
      longestCpu = Math.max(longestCpu, threadCpuMs(sliceCpu));
    }
    if (step.done) {
      Object.assign(step.value.stats, { longestSliceMs: longest, longestSliceCpuMs: longestCpu });
      return step.value;
    }
    if (held >= sliceMs) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
      sliceCpu = process.threadCpuUsage();
    }
  }
}

/** This thread's CPU time since `from`, ms. */
function threadCpuMs(from: NodeJS.CpuUsage): number {
  const d = process.threadCpuUsage(from);
  return (d.user + d.system) / 1000;
}

/** Compiles all sources at once (validate, check, tests): the store's view of one complete set. */
export function compileSources(sources: StoreInput, options: { jwks?: JwksCache } = {}): CompileResult {
  return toCompileResult(new PolicyStore(options).apply(sources));
}

export interface CompileResult {
  snapshot: PolicySnapshot;
  /** Every error (each refuses its object). */
  problems: PolicyError[];
  /** Warnings (unreachable rules, quotas some tenants lack): reported, nothing refused. */
  warnings: PolicyError[];
  /** Errors per policy key (namespace/name). */
  policyProblems: Map<string, PolicyError[]>;
  /** Errors per tenant key. */
  tenantProblems: Map<string, PolicyError[]>;
  /** Per object ("ApiPolicy ns/name", "Tenant ns/name"): errors, warnings and what serves. */
  reports: ReadonlyMap<string, ObjectReport>;
}

export function toCompileResult(r: ApplyResult): CompileResult {
  const policyProblems = new Map<string, PolicyError[]>();
  const tenantProblems = new Map<string, PolicyError[]>();
  for (const report of r.reports.values()) {
    if (report.errors.length > 0) (report.kind === 'ApiPolicy' ? policyProblems : tenantProblems).set(report.key, report.errors);
  }
  return { snapshot: r.snapshot, problems: r.problems, warnings: r.warnings, policyProblems, tenantProblems, reports: r.reports };
}
