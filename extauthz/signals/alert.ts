/** What a suspicious-activity signal reports. The record builder (audit/record.ts) pseudonymises it. */

export type SignalName = 'invalid-credentials' | 'deny-rate' | 'quota-burst' | 'distinct-subjects';

export const SIGNALS: readonly SignalName[] = ['invalid-credentials', 'deny-rate', 'quota-burst', 'distinct-subjects'];

/**
 * One alert as the engine raises it, in memory only: `subject` is the principal's subject and
 * `network` the grouping prefix (IPv4 /24, IPv6 /64); neither reaches a record or a log as is.
 */
export interface Alert {
  signal: SignalName;
  /** The Check that crossed the threshold (its decision record has the same requestId). */
  requestId: string;
  tenant: string | null;
  principalType: string | null;
  subject: string | null;
  network: string | null;
  /** When the key's window began, and its length. */
  windowStart: Date;
  windowSeconds: number;
  /** What was counted in the window when the threshold was reached: denies, QUOTA_EXCEEDED denies, invalid credentials or distinct data subjects. */
  count: number;
  threshold: number;
  /** deny-rate only: the principal's requests in the window, and the configured ratio. */
  requests: number | null;
  ratio: number | null;
}

/** Where alerts go besides the metrics: the audit trail (the same signed chain as the decisions). */
export interface AlertSink {
  recordAlert(alert: Alert): Promise<void>;
}
