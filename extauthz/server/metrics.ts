/** Prometheus metrics of the decision service, on a registry of its own (no global state). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Decision } from '../pipeline/decision.js';
import type { PhaseName } from '../pipeline/pipeline.js';

export class ServiceMetrics {
  readonly registry = new Registry();
  readonly checks = new Counter({ name: 'portcullis_checks_total', help: 'Check decisions by decision and error code.', labelNames: ['decision', 'code'] as const, registers: [this.registry] });
  readonly phase = new Histogram({
    name: 'portcullis_phase_duration_seconds',
    help: 'Time spent in each decision phase.',
    labelNames: ['phase'] as const,
    buckets: [0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.2],
    registers: [this.registry],
  });
  readonly reloads = new Counter({ name: 'portcullis_policy_reloads_total', help: 'Policy snapshot loads by result.', labelNames: ['result'] as const, registers: [this.registry] });
  readonly policies = new Gauge({ name: 'portcullis_policies', help: 'ApiPolicies in the active snapshot.', registers: [this.registry] });
  readonly snapshotVersion = new Gauge({ name: 'portcullis_snapshot_version', help: 'Version of the active policy snapshot.', registers: [this.registry] });

  constructor(defaults = true) {
    if (defaults) collectDefaultMetrics({ register: this.registry, prefix: 'portcullis_' });
  }

  observePhase = (phase: PhaseName, seconds: number): void => {
    this.phase.observe({ phase }, seconds);
  };

  countDecision = (d: Decision): void => {
    this.checks.inc({ decision: d.allowed ? 'allow' : 'deny', code: d.code ?? 'OK' });
  };
}
