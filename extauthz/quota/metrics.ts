/** Quota metrics, registered on the service's registry (injected; no global state). */
import { Counter, Histogram, type Registry } from 'prom-client';

export type QuotaOutcome = 'allowed' | 'exceeded' | 'not_charged' | 'backend_error_allowed' | 'backend_error_denied' | 'undefined_quota' | 'expression_error' | 'expression_budget';

export class QuotaMetrics {
  readonly decisions: Counter<'quota' | 'outcome'>;
  readonly backendErrors: Counter<'backend'>;
  readonly backendLatency: Histogram<'backend'>;

  constructor(registry: Registry) {
    this.decisions = new Counter({ name: 'portcullis_quota_decisions_total', help: 'Quota decisions by quota name and outcome.', labelNames: ['quota', 'outcome'], registers: [registry] });
    this.backendErrors = new Counter({ name: 'portcullis_quota_backend_errors_total', help: 'Quota backend calls that failed (unreachable, timeout).', labelNames: ['backend'], registers: [registry] });
    this.backendLatency = new Histogram({
      name: 'portcullis_quota_backend_duration_seconds',
      help: 'Latency of one quota backend call (all quotas of a request).',
      labelNames: ['backend'],
      buckets: [0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.2],
      registers: [registry],
    });
  }
}
