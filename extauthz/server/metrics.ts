/** Prometheus metrics of the decision service, on a registry of its own (no global state). */
import type { PolicyError } from '../errors.js';
import type { ApplyResult } from '../policy/store.js';
import { Counter, Gauge, Registry, collectDefaultMetrics, type MetricValueWithName } from 'prom-client';
import type { Decision } from '../pipeline/decision.js';
import type { PhaseName } from '../pipeline/pipeline.js';

const PHASE_BUCKETS = [0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.2];

interface Series {
  labels: Record<string, string>;
  /** Per bucket (not cumulative); the last slot is +Inf. */
  counts: Float64Array;
  sum: number;
  count: number;
}

/**
 * A Prometheus histogram with one label, for the hot path: a Check observes seven phases, and
 * prom-client's Histogram validates and hashes the label object on every observe. Here a series
 * is found by its label value in a Map and an observation is a bucket scan and two additions;
 * the exposition (cumulative buckets, _sum, _count) is built only when scraped.
 */
export class LabelledHistogram<L extends string> {
  readonly type = 'histogram' as const;
  readonly aggregator = 'sum' as const;
  private readonly series = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly label: L,
    private readonly buckets: readonly number[],
  ) {}

  observe(value: string, seconds: number): void {
    let s = this.series.get(value);
    if (!s) {
      s = { labels: { [this.label]: value }, counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 };
      this.series.set(value, s);
    }
    if (!Number.isFinite(seconds)) return;
    let i = 0;
    while (i < this.buckets.length && seconds > this.buckets[i]!) i++;
    s.counts[i]! += 1;
    s.sum += seconds;
    s.count += 1;
  }

  get(): Promise<{ name: string; help: string; type: 'histogram'; aggregator: 'sum'; values: MetricValueWithName<string>[] }> {
    const values: MetricValueWithName<string>[] = [];
    for (const s of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += s.counts[i]!;
        values.push({ metricName: `${this.name}_bucket`, labels: { le, ...s.labels }, value: cumulative });
      });
      values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf', ...s.labels }, value: s.count });
      values.push({ metricName: `${this.name}_sum`, labels: { ...s.labels }, value: s.sum });
      values.push({ metricName: `${this.name}_count`, labels: { ...s.labels }, value: s.count });
    }
    return Promise.resolve({ name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values });
  }

  reset(): void {
    this.series.clear();
  }
}

export class ServiceMetrics {
  readonly registry = new Registry();
  readonly checks: Counter<'decision' | 'code'> = new Counter({
    name: 'portcullis_checks_total',
    help: 'Check decisions by decision and error code.',
    labelNames: ['decision', 'code'] as const,
    registers: [this.registry],
    collect: () => this.flushAllowed(),
  });
  readonly shadowWouldDeny = new Counter({
    name: 'portcullis_shadow_would_deny_total',
    help: 'Requests a shadow policy or shadow rule would have denied (never applied), by policy, rule, code and tenant.',
    labelNames: ['policy', 'rule', 'code', 'tenant'] as const,
    registers: [this.registry],
  });
  readonly phase = new LabelledHistogram<'phase'>('portcullis_phase_duration_seconds', 'Time spent in each decision phase.', 'phase', PHASE_BUCKETS);
  readonly reloads = new Counter({ name: 'portcullis_policy_reloads_total', help: 'Policy snapshot loads by result.', labelNames: ['result'] as const, registers: [this.registry] });
  // 'max': with --workers, the primary and each worker report the same snapshot; a sum would multiply it.
  readonly policies = new Gauge({ name: 'portcullis_policies', help: 'ApiPolicies in the active snapshot.', registers: [this.registry], aggregator: 'max' });
  readonly snapshotVersion = new Gauge({ name: 'portcullis_snapshot_version', help: 'Version of the active policy snapshot.', registers: [this.registry], aggregator: 'max' });
  readonly requestInvalid = new Counter({
    name: 'portcullis_request_invalid_total',
    help: 'Requests denied by a rule\'s request validation, by policy and error code (BODY_INVALID, QUERY_INVALID, ...).',
    labelNames: ['policy', 'code'] as const,
    registers: [this.registry],
  });
  readonly deprecatedCalls = new Counter({
    name: 'portcullis_deprecated_calls_total',
    help: 'Calls to deprecated routes (since reached: deprecated, or past the sunset), by tenant (namespace/name), policy, rule and state, so an API owner knows whom to tell before a sunset.',
    labelNames: ['tenant', 'policy', 'rule', 'state'] as const,
    registers: [this.registry],
  });
  readonly revocations = new Counter({ name: 'portcullis_revocation_denials_total', help: 'Checks denied REVOKED, by tenant (namespace/name) and the kind of list entry (jti, sub, api-key).', labelNames: ['tenant', 'kind'] as const, registers: [this.registry] });
  readonly revocationSourcesFailing = new Gauge({ name: 'portcullis_revocation_sources_failing', help: 'Tenants whose revocation source is missing or does not parse (their last good list serves; a tenant without one authenticates no one).', registers: [this.registry] });
  /** Cluster mode: the failing tenants kept per report (countRevocationReports). */
  private readonly revocationTally = new ObjectTally(revocationFailures);
  /** Allowed checks counted here and added to `checks` at scrape time (the common case, no label hashing per Check). */
  private allowed = 0;

  constructor(defaults = true) {
    this.registry.registerMetric(this.phase as never);
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: 'portcullis_' });
  }

  observePhase = (phase: PhaseName, seconds: number): void => {
    this.phase.observe(phase, seconds);
  };

  private flushAllowed(): void {
    if (this.allowed === 0) return;
    this.checks.inc({ decision: 'allow', code: 'OK' }, this.allowed);
    this.allowed = 0;
  }

  countDecision = (d: Decision): void => {
    if (d.allowed && d.code === null) this.allowed++;
    else this.countDeny(d);
    if (d.audit.lifecycle !== undefined && d.audit.lifecycle !== 'announced') this.countDeprecated(d, d.audit.lifecycle);
    const w = d.audit.wouldDeny;
    if (w) this.shadowWouldDeny.inc({ policy: w.policy, rule: w.rule ?? '(default)', code: w.code, tenant: d.principal?.tenant ?? '(none)' });
  };

  private countDeprecated(d: Decision, state: string): void {
    this.deprecatedCalls.inc({ tenant: d.principal ? `${d.principal.namespace}/${d.principal.tenant}` : '', policy: d.policy ?? '', rule: d.rule ?? '(default)', state });
  }

  private countDeny(d: Decision): void {
    this.checks.inc({ decision: d.allowed ? 'allow' : 'deny', code: d.code ?? 'OK' });
    const kind = d.audit.revoked;
    if (kind !== undefined) this.revocations.inc({ tenant: d.principal ? `${d.principal.namespace}/${d.principal.tenant}` : '', kind });
    if (d.audit.validation !== undefined && d.code !== null) this.requestInvalid.inc({ policy: d.policy ?? '', code: d.code });
  }

  /** Counts the tenants whose problems include one at /spec/revocation. */
  countRevocationProblems(problems: readonly PolicyError[]): void {
    this.revocationSourcesFailing.set(new Set(revocationFailures(problems)).size);
  }

  /**
   * The same gauge from a store run's reports, touching only the reports the run changed: every
   * report's problems gathered on each apply was an O(N log N) pass over 10,000 policy reports
   * (10–40 ms in one piece) after every one-object change in cluster mode.
   */
  countRevocationReports(r: Pick<ApplyResult, 'reports' | 'changedReports'>): void {
    this.revocationTally.update(r);
    this.revocationSourcesFailing.set(this.revocationTally.size);
  }
}

/** The objects (`Tenant namespace/name`) whose revocation source fails, once per problem. */
function revocationFailures(problems: readonly PolicyError[]): string[] {
  const out: string[] = [];
  for (const p of problems) if (p.location.path === '/spec/revocation' && p.location.object !== undefined) out.push(p.location.object);
  return out;
}

/**
 * The distinct values `pick` finds in the errors of every report, kept up to date from the
 * reports each run set or removed (ApplyResult.changedReports): the same answer as gathering
 * every report's errors, at the cost of the change.
 */
export class ObjectTally {
  private readonly byReport = new Map<string, readonly string[]>();
  private readonly counts = new Map<string, number>();

  constructor(private readonly pick: (errors: readonly PolicyError[]) => string[]) {}

  /** Distinct values over all reports. */
  get size(): number {
    return this.counts.size;
  }

  update({ reports, changedReports }: Pick<ApplyResult, 'reports' | 'changedReports'>): void {
    for (const id of changedReports) {
      for (const v of this.byReport.get(id) ?? []) {
        const n = this.counts.get(v)! - 1;
        if (n > 0) this.counts.set(v, n);
        else this.counts.delete(v);
      }
      const errors = reports.get(id)?.errors;
      const next = errors && errors.length > 0 ? this.pick(errors) : [];
      if (next.length > 0) this.byReport.set(id, next);
      else this.byReport.delete(id);
      for (const v of next) this.counts.set(v, (this.counts.get(v) ?? 0) + 1);
    }
  }
}
