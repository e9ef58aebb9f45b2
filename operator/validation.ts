/**
 * Accepted uses the engine's full checks: every ApiPolicy and Tenant the operator caches goes
 * through the engine's PolicyStore, the same per-object compile and cross-object checks that
 * ext_authz runs (typed CEL, hosts claimed twice, identity overlaps, quotas no tenant defines,
 * …), so status says what the data plane will do. The store compiles only objects whose
 * generation changed; one result is shared by every reconcile until a spec changes, and
 * status-only updates (the operator's own writes) do not invalidate it. When a recompile changes
 * another object's report (a host conflict appears or clears), that policy is re-enqueued, so
 * both sides' status follows.
 *
 * Secrets: with verifySecrets the store reads the same label-selected Secrets ext_authz reads
 * (as stand-ins, secret-stand-ins.ts) with requireSecrets, so a missing Secret, a missing key or a
 * malformed value refuses the Tenant here exactly as it does there. Without it the Secrets are not
 * read and a Tenant naming one is reported unverified (conditions.ts). ADR 0013.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { generationFingerprint, PolicyStore, type ObjectReport } from '../extauthz/policy/store.js';
import { JwksCache, secretProblemOf, TenantDirectory, type SecretProblem } from '../extauthz/policy/tenants.js';
import { sourcesFrom } from '../kube/objects.js';
import type { PolicyError } from '../extauthz/errors.js';

interface Lister {
  list(ns?: string): readonly KubernetesObject[];
}

export interface ValidationSources {
  policies: Lister;
  tenants: Lister;
  /** ConfigMaps labelled portcullis.io/revocation=true: a Tenant whose configMapRef names none is not Ready. */
  configMaps?: Lister;
  /** The label-selected Secrets (stand-ins); absent: Secrets are not verified. */
  secrets?: Lister;
}

/** One object's verdict, formatted for status. */
export interface Verdicts {
  /** Errors: the current version is refused. */
  errors: string[];
  warnings: string[];
  /** Set when the current version is refused and an earlier one keeps serving. */
  servingGeneration?: number;
  /** The first error's Secret problem, when a Secret the tenant names refuses it. */
  secretProblem?: SecretProblem;
}

interface Compiled {
  reports: Map<string, Verdicts>;
  directories: ReadonlyMap<string, TenantDirectory>;
}

const NONE: Verdicts = { errors: [], warnings: [] };

function format(problems: readonly PolicyError[]): string[] {
  return problems.map((p) => p.format().replace(/^(ApiPolicy|Tenant) \S+ /, ''));
}

function verdicts(r: ObjectReport): Verdicts {
  const lastGood = r.serving === 'last-good' && r.servingGeneration !== undefined ? { servingGeneration: r.servingGeneration } : {};
  const problem = r.errors.map((e) => secretProblemOf(e.cause)).find((p) => p !== undefined);
  return { errors: format(r.errors), warnings: format(r.warnings), ...lastGood, ...(problem ? { secretProblem: problem.problem } : {}) };
}

function key(o: KubernetesObject): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}

function same(a: Verdicts | undefined, b: Verdicts | undefined): boolean {
  return JSON.stringify(a ?? NONE) === JSON.stringify(b ?? NONE);
}

export class PolicyValidation {
  private compiled: Compiled | undefined;
  private pending = true;
  private inflight: Promise<void> | undefined;
  private readonly generations = new Map<string, number | undefined>();
  private readonly store: PolicyStore;

  constructor(
    private readonly sources: ValidationSources,
    /** Called for policies whose verdict changed because of another object's edit. */
    private readonly onPolicyChanged: (key: string) => void = () => undefined,
  ) {
    this.store = new PolicyStore({ jwks: new JwksCache(), requireSecrets: sources.secrets !== undefined, fingerprint: generationFingerprint });
  }

  /** Whether Secrets are read (a Tenant's Secret references are verified). */
  get verifiesSecrets(): boolean {
    return this.sources.secrets !== undefined;
  }

  /** Feed every ApiPolicy and Tenant event here; only spec changes (generation), adds and deletes invalidate. */
  observe(kind: 'ApiPolicy' | 'Tenant', obj: KubernetesObject, event: 'add' | 'update' | 'delete'): void {
    const k = `${kind}:${key(obj)}`;
    const generation = obj.metadata?.generation;
    if (event === 'delete') this.generations.delete(k);
    else if (this.generations.has(k) && this.generations.get(k) === generation) return;
    else this.generations.set(k, generation);
    this.pending = true;
  }

  /** A revocation ConfigMap changed: the tenants naming it compile again (their status follows). */
  observeConfigMap(): void {
    this.pending = true;
  }

  /** A label-selected Secret changed: the store recompiles exactly the tenants naming it. */
  observeSecret(): void {
    this.pending = true;
  }

  /** The engine's verdict on one ApiPolicy (namespace/name). */
  async policy(policyKey: string): Promise<Verdicts> {
    return (await this.current()).reports.get(`ApiPolicy ${policyKey}`) ?? NONE;
  }

  async tenant(tenantKey: string): Promise<Verdicts> {
    return (await this.current()).reports.get(`Tenant ${tenantKey}`) ?? NONE;
  }

  /** The namespace's compiled tenants (for deciding whether agencies can reach a workload). */
  async directory(namespace: string): Promise<TenantDirectory> {
    return (await this.current()).directories.get(namespace) ?? new TenantDirectory();
  }

  /** The latest compile; one recompile at a time, shared by concurrent callers. */
  private async current(): Promise<Compiled> {
    // Bounded: under constant churn a caller gets a recent result rather than waiting forever.
    for (let i = 0; i < 3 && (this.pending || !this.compiled); i++) {
      this.inflight ??= this.recompile().finally(() => {
        this.inflight = undefined;
      });
      await this.inflight;
    }
    return this.compiled!;
  }

  private async recompile(): Promise<void> {
    this.pending = false;
    const sources = sourcesFrom(this.sources.policies.list(), this.sources.tenants.list(), this.sources.secrets?.list() ?? [], this.sources.configMaps?.list() ?? []);
    // Sliced: a cold start with thousands of policies never holds the event loop (leader renewals).
    const result = await this.store.applyAsync(sources);
    const reports = new Map([...result.reports].map(([k, r]) => [k, verdicts(r)]));
    const next: Compiled = { reports, directories: result.snapshot.tenants };
    const previous = this.compiled;
    this.compiled = next;
    if (previous) this.notifyChanged(previous, next);
  }

  private notifyChanged(previous: Compiled, next: Compiled): void {
    for (const k of new Set([...previous.reports.keys(), ...next.reports.keys()])) {
      if (!k.startsWith('ApiPolicy ') || same(previous.reports.get(k), next.reports.get(k))) continue;
      this.onPolicyChanged(k.slice('ApiPolicy '.length));
    }
  }
}
