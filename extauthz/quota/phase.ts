/**
 * The quota phase of the pipeline: plan the counters, charge them all or none on the backend,
 * and turn the outcome into a verdict with RateLimit headers. When the backend cannot answer,
 * each quota's onBackendError decides (any "deny" among them refuses the request with
 * QUOTA_UNAVAILABLE); the metric counts it and one log line marks each outage and recovery.
 */
import { checkDeadline, DeadlineExceeded, raceDeadline } from '../pipeline/deadline.js';
import type { QuotaPhase, QuotaRequest, QuotaResult } from '../pipeline/hooks.js';
import type { ChargeOutcome, QuotaBackend } from './backend.js';
import { rateLimitHeaders } from './headers.js';
import { KeyHasher } from './keys.js';
import type { QuotaMetrics, QuotaOutcome } from './metrics.js';
import { plan, type PlannedQuota } from './plan.js';
import { sharedBudget } from '../policy/cel.js';

/** The subset of a pino logger the phase uses. */
export interface QuotaLog {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface QuotaEnforcerOptions {
  backend: QuotaBackend;
  metrics?: QuotaMetrics;
  log?: QuotaLog;
  /** Secret for the HMAC that pseudonymises subjects in keys (shared by all replicas). */
  hashKey?: string;
}

/** A quota key or cost over its CEL runtime budget denies as a condition over budget would; other plan failures fail closed as unavailable. */
function planCode(outcome: 'undefined_quota' | 'expression_error' | 'expression_budget'): 'CONDITION_BUDGET' | 'QUOTA_UNAVAILABLE' {
  return outcome === 'expression_budget' ? 'CONDITION_BUDGET' : 'QUOTA_UNAVAILABLE';
}

export class QuotaEnforcer implements QuotaPhase {
  private readonly hasher: KeyHasher;
  private failing = false;

  constructor(private readonly options: QuotaEnforcerOptions) {
    this.hasher = new KeyHasher(options.hashKey);
  }

  get backend(): QuotaBackend {
    return this.options.backend;
  }

  async charge(req: QuotaRequest): Promise<QuotaResult> {
    const p = sharedBudget(() => plan(req, this.hasher), req.budget);
    if (!p.ok) {
      this.count(p.quota, p.outcome);
      return { allowed: false, code: planCode(p.outcome), reason: p.reason, headers: {}, summary: { error: p.outcome, quota: p.quota } };
    }
    if (p.quotas.length === 0) return { allowed: true, headers: {} };
    checkDeadline(req.signal, 'before charging quotas');
    const outcomes = await this.call(p.quotas, req.signal);
    return outcomes ? this.verdict(p.quotas, outcomes) : this.backendDown(p.quotas);
  }

  /**
   * Shadow mode's dry run: the verdict charge would give now, with nothing charged (backend peek)
   * and nothing counted in the quota decision metric (shadow counts its own would-be denials).
   */
  async peek(req: QuotaRequest): Promise<QuotaResult> {
    const p = sharedBudget(() => plan(req, this.hasher), req.budget);
    if (!p.ok) return { allowed: false, code: planCode(p.outcome), reason: p.reason, headers: {}, summary: { error: p.outcome, quota: p.quota } };
    if (p.quotas.length === 0) return { allowed: true, headers: {} };
    checkDeadline(req.signal, 'before peeking at quotas');
    const outcomes = await this.call(p.quotas, req.signal, true);
    return outcomes ? this.verdict(p.quotas, outcomes, false) : this.backendDown(p.quotas, false);
  }

  private async call(quotas: PlannedQuota[], signal: AbortSignal | undefined, dryRun = false): Promise<ChargeOutcome[] | undefined> {
    const { backend, metrics } = this.options;
    const started = process.hrtime.bigint();
    try {
      const items = quotas.map((q) => q.item);
      const outcomes = await raceDeadline(dryRun ? backend.peek(items, signal) : backend.charge(items, signal), signal, dryRun ? 'while peeking at quotas' : 'while charging quotas');
      this.recovered();
      return outcomes;
    } catch (err) {
      // A deadline is not a backend outage: onBackendError: allow must not turn it into an allow.
      if (err instanceof DeadlineExceeded) throw err;
      metrics?.backendErrors.inc({ backend: backend.name });
      this.outage(err);
      return undefined;
    } finally {
      metrics?.backendLatency.observe({ backend: backend.name }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  private verdict(quotas: PlannedQuota[], outcomes: ChargeOutcome[], count = true): QuotaResult {
    const compiled = quotas.map((q) => q.quota);
    const headers = rateLimitHeaders(compiled, outcomes);
    const refused = compiled.filter((_, i) => !outcomes[i]!.allowed).map((q) => q.name);
    const summary = { quotas: compiled.map((q, i) => ({ name: q.name, allowed: outcomes[i]!.allowed, remaining: Math.max(0, outcomes[i]!.remaining) })) };
    if (count) compiled.forEach((q, i) => this.count(q.name, outcomes[i]!.allowed ? (refused.length ? 'not_charged' : 'allowed') : 'exceeded'));
    if (refused.length === 0) return { allowed: true, headers, summary };
    const never = outcomes.some((o) => !o.allowed && o.never);
    const reason = never ? `the cost of this request exceeds quota ${refused.join(', ')}` : `quota ${refused.join(', ')} exceeded`;
    return { allowed: false, code: 'QUOTA_EXCEEDED', reason, headers, summary };
  }

  private backendDown(quotas: PlannedQuota[], count = true): QuotaResult {
    const closed = quotas.filter((q) => q.quota.onBackendError === 'deny').map((q) => q.quota.name);
    if (count) for (const q of quotas) this.count(q.quota.name, q.quota.onBackendError === 'deny' ? 'backend_error_denied' : 'backend_error_allowed');
    const summary = { backendError: true, failClosed: closed };
    if (closed.length === 0) return { allowed: true, headers: {}, summary };
    return { allowed: false, code: 'QUOTA_UNAVAILABLE', reason: `quota backend unavailable; quota ${closed.join(', ')} fails closed`, headers: {}, summary };
  }

  private count(quota: string, outcome: QuotaOutcome): void {
    this.options.metrics?.decisions.inc({ quota, outcome });
  }

  private outage(err: unknown): void {
    if (this.failing) return;
    this.failing = true;
    this.options.log?.warn({ backend: this.options.backend.name, err: (err as Error).message }, 'quota backend unavailable; onBackendError applies until it returns');
  }

  private recovered(): void {
    if (!this.failing) return;
    this.failing = false;
    this.options.log?.info({ backend: this.options.backend.name }, 'quota backend available again');
  }
}
