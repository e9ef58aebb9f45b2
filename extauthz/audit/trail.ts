/**
 * The audit phase's sink: decisions are chained synchronously (a hash, microseconds), queued in a
 * bounded buffer, and written by one flush loop that groups everything queued since the last
 * write into one write + fdatasync (group commit). Batch mode answers the Check at once; strict
 * mode answers only once the record is durable. When the buffer is full or the sink is failing,
 * record() rejects and the pipeline applies the policy's auditFailure (deny | allow).
 */
import { PortcullisError } from '../errors.js';
import type { CompiledPolicy } from '../policy/compile.js';
import type { AuditSink } from '../pipeline/hooks.js';
import type { Decision } from '../pipeline/decision.js';
import type { Chain } from './chain.js';
import { canonicalJson } from './canonical.js';
import type { AuditMetrics } from './metrics.js';
import type { Pseudonymizer } from './pseudonym.js';
import type { Alert, AlertSink } from '../signals/alert.js';
import { alertFields, decisionFields, type DecisionEntry, type MaskingFields } from './record.js';
import type { LineSink } from './sinks.js';

export type DurabilityMode = 'batch' | 'strict';

export interface AuditTrailOptions {
  chain: Chain;
  pseudonymizer: Pseudonymizer;
  /** The first sink is primary: its failures fail records. Failures of the others are counted only. */
  sinks: LineSink[];
  mode: DurabilityMode;
  checkpointEvery: number;
  checkpointSeconds: number;
  maxBuffered?: number;
  /** Batch mode: the longest a record waits for its write. */
  flushMs?: number;
  source?: DecisionEntry['source'];
  metrics?: AuditMetrics;
  onError?: (err: unknown) => void;
}

interface Pending {
  seq: number;
  hash: string;
  line: string;
  action: 'allow' | 'deny';
  isDecision: boolean;
  done?: { resolve: () => void; reject: (err: Error) => void };
}

const RETRY_MS = [50, 100, 250, 500, 1000, 2000, 5000];

export class AuditTrail implements AuditSink, AlertSink {
  private queue: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly checkpointTimer: NodeJS.Timeout;
  private sinceCheckpoint = 0;
  private lastCheckpointAt = Date.now();
  private written: { seq: number; hash: string } | undefined;
  private failures = 0;
  private closing = false;
  private closeDeadline = Infinity;
  private sealed = false;
  private closed = false;
  private readonly maxBuffered: number;
  private readonly flushMs: number;

  constructor(private readonly o: AuditTrailOptions) {
    this.maxBuffered = o.maxBuffered ?? 10_000;
    this.flushMs = o.flushMs ?? 5;
    const start = o.chain.start();
    this.queue.push({ ...start, action: 'deny', isDecision: false });
    this.checkpointTimer = setInterval(() => this.kick(), Math.max(1, o.checkpointSeconds) * 1000);
    this.checkpointTimer.unref();
    this.kick();
  }

  get chainId(): string {
    return this.o.chain.id;
  }

  record(decision: Decision, policy: CompiledPolicy | undefined): Promise<void> {
    const action = policy?.auditFailure ?? 'deny';
    const refused = this.refusal();
    if (refused) {
      this.o.metrics?.failures.inc({ reason: refused, action });
      return Promise.reject(new PortcullisError('AUDIT_UNAVAILABLE', `audit ${refused.replace('_', ' ')}`));
    }
    return this.enqueue(this.o.chain.append(decisionFields(decision, policy, this.o.pseudonymizer, this.o.source ?? 'grpc')), action);
  }

  /**
   * One ext_proc masking outcome, in the same chain as the decisions. The response is already
   * answered (fail closed by then), so a refusal only rejects: the caller logs it.
   */
  recordMasking(fields: MaskingFields): Promise<void> {
    const refused = this.refusal();
    if (refused) return Promise.reject(new PortcullisError('AUDIT_UNAVAILABLE', `audit ${refused.replace('_', ' ')}`));
    return this.enqueue(this.o.chain.appendMasking(fields), 'allow');
  }

  /** A suspicious-activity alert (extauthz/signals), in the same chain; a refusal only rejects (the caller counts it). */
  recordAlert(alert: Alert): Promise<void> {
    const refused = this.refusal();
    if (refused) return Promise.reject(new PortcullisError('AUDIT_UNAVAILABLE', `audit ${refused.replace('_', ' ')}`));
    return this.enqueue(this.o.chain.appendAlert(alertFields(alert, this.o.pseudonymizer)), 'allow');
  }

  private enqueue(appended: { seq: number; hash: string; line: string }, action: 'allow' | 'deny'): Promise<void> {
    const pending: Pending = { seq: appended.seq, hash: appended.hash, line: appended.line, action, isDecision: true };
    this.queue.push(pending);
    this.o.metrics?.buffered.set(this.queue.length);
    if (this.o.mode === 'batch') {
      this.schedule();
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      pending.done = { resolve, reject };
      this.kick();
    });
  }

  private refusal(): 'buffer_full' | 'sink_failing' | 'closed' | undefined {
    if (this.closing || this.closed) return 'closed';
    if (this.failures > 0) return 'sink_failing';
    if (this.queue.length >= this.maxBuffered) return 'buffer_full';
    return undefined;
  }

  private schedule(): void {
    if (this.timer || this.flushing) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.kick();
    }, this.flushMs);
  }

  /** Starts the flush loop unless it runs; it drains the queue and then stops. */
  private kick(): void {
    if (this.flushing) return;
    this.flushing = this.loop().finally(() => {
      this.flushing = undefined;
      if (this.queue.length > 0 && !this.closed) this.schedule();
    });
  }

  private checkpointDue(extraBytes: number, pending: number): boolean {
    if (this.closing && !this.sealed) return true;
    if (this.sinceCheckpoint + pending === 0) return false;
    if (this.sinceCheckpoint + pending >= this.o.checkpointEvery) return true;
    // 5 % slack: the interval timer that triggers time-based checkpoints may fire a little early.
    if (Date.now() - this.lastCheckpointAt >= this.o.checkpointSeconds * 950) return true;
    return this.o.sinks[0]?.nearlyFull(extraBytes) ?? false;
  }

  private async loop(): Promise<void> {
    for (;;) {
      const step = await this.flushOnce();
      if (step === 'idle' || (step === 'failed' && Date.now() > this.closeDeadline)) return;
      if (step === 'written' && this.queue.length === 0 && !this.checkpointDue(0, 0)) return;
    }
  }

  /** One batch: everything queued, plus a checkpoint over its last entry when one is due. */
  private async flushOnce(): Promise<'idle' | 'written' | 'failed'> {
    const batch = this.queue.splice(0, this.queue.length);
    let text = batch.map((p) => p.line + '\n').join('');
    const head = batch.at(-1) ?? this.written;
    const withCheckpoint = head !== undefined && this.checkpointDue(text.length, batch.length);
    const final = this.closing;
    if (withCheckpoint) text += canonicalJson(this.o.chain.checkpoint(final, head)) + '\n';
    if (text === '') return 'idle';
    if (!(await this.write(batch, text))) return 'failed';
    this.written = head;
    this.sinceCheckpoint += batch.length;
    if (withCheckpoint) this.checkpointWritten(final);
    for (const p of batch) p.done?.resolve();
    this.o.metrics?.records.inc(batch.filter((p) => p.isDecision).length);
    this.o.metrics?.buffered.set(this.queue.length);
    return 'written';
  }

  private checkpointWritten(final: boolean): void {
    if (final) this.sealed = true;
    this.sinceCheckpoint = 0;
    this.lastCheckpointAt = Date.now();
    this.o.metrics?.checkpoints.inc();
  }

  /** Writes to every sink; on a primary failure the batch goes back to the queue for a retry. */
  private async write(batch: Pending[], text: string): Promise<boolean> {
    const [primary, ...others] = this.o.sinks;
    const secondary = Promise.allSettled(others.map((s) => s.write(text).catch((err: unknown) => this.sinkError(s, err))));
    try {
      await primary?.write(text);
      await primary?.rotateIfFull();
      this.failures = 0;
      return true;
    } catch (err) {
      this.sinkError(primary, err);
      this.failures++;
      this.queue.unshift(...batch);
      for (const p of batch) this.fail(p);
      await new Promise((r) => setTimeout(r, RETRY_MS[Math.min(this.failures, RETRY_MS.length) - 1]));
      return false;
    } finally {
      await secondary;
    }
  }

  private fail(p: Pending): void {
    if (!p.done) return;
    this.o.metrics?.failures.inc({ reason: 'write_error', action: p.action });
    p.done.reject(new PortcullisError('AUDIT_UNAVAILABLE', 'audit record could not be written'));
    delete p.done;
  }

  private sinkError(sink: LineSink | undefined, err: unknown): void {
    this.o.metrics?.writeErrors.inc({ sink: sink?.name ?? 'none' });
    this.o.onError?.(err);
  }

  /** Writes what is queued and a final checkpoint, then closes the sinks. Gives up after a few failed retries. */
  async close(): Promise<void> {
    if (this.closed || this.closing) return;
    this.closing = true;
    clearInterval(this.checkpointTimer);
    clearTimeout(this.timer);
    this.timer = undefined;
    this.closeDeadline = Date.now() + 10_000;
    while ((this.flushing || this.queue.length > 0 || !this.sealed) && Date.now() < this.closeDeadline) {
      if (!this.flushing) this.kick();
      await this.flushing;
    }
    this.closed = true;
    for (const p of this.queue) this.fail(p);
    await Promise.allSettled(this.o.sinks.map((s) => s.close()));
  }
}
