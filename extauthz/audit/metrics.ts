/** Audit metrics, created unregistered and added to the service's registry by the caller. */
import { Counter, Gauge, type Registry } from 'prom-client';

export class AuditMetrics {
  readonly records = new Counter({ name: 'portcullis_audit_records_total', help: 'Audit records written durably.', registers: [] });
  readonly checkpoints = new Counter({ name: 'portcullis_audit_checkpoints_total', help: 'Signed audit checkpoints written.', registers: [] });
  readonly failures = new Counter({
    name: 'portcullis_audit_failures_total',
    help: 'Decisions that could not be audited, by reason (buffer_full, sink_failing, write_error) and what the policy auditFailure did (deny, allow).',
    labelNames: ['reason', 'action'] as const,
    registers: [],
  });
  readonly writeErrors = new Counter({ name: 'portcullis_audit_write_errors_total', help: 'Failed writes to an audit sink, by sink.', labelNames: ['sink'] as const, registers: [] });
  readonly buffered = new Gauge({ name: 'portcullis_audit_buffered_records', help: 'Audit records waiting to be written.', registers: [] });

  register(registry: Registry): void {
    registry.registerMetric(this.records);
    registry.registerMetric(this.checkpoints);
    registry.registerMetric(this.failures);
    registry.registerMetric(this.writeErrors);
    registry.registerMetric(this.buffered);
  }
}
