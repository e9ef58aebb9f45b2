/**
 * The in-process backend (the default): exact, and atomic because a charge evaluates and commits
 * every counter of the request under the table's lock. The counters live in a SharedQuotaTable
 * (SharedArrayBuffer + Atomics), so backends of several worker threads built on one buffer
 * charge the same counters: limits stay exact across workers. State lives in the backend, not
 * in the policy snapshot, so it survives policy reloads; expired states are reused in place.
 */
import { DeadlineExceeded } from '../pipeline/deadline.js';
import { evaluate, ttlMs, type QuotaState } from './algorithms.js';
import type { ChargeItem, ChargeOutcome, QuotaBackend } from './backend.js';
import { SharedQuotaTable, type SlotState } from './shared-table.js';

export interface MemoryBackendOptions {
  /** Milliseconds since the epoch; injected in tests. */
  clock?: () => number;
  /** The shared table's buffer (another thread's backend), or the capacity of a new table in slots. */
  table?: SharedArrayBuffer | number;
}

export class MemoryBackend implements QuotaBackend {
  readonly name = 'memory' as const;
  readonly table: SharedQuotaTable;
  private readonly clock: () => number;

  constructor(options: MemoryBackendOptions = {}) {
    this.clock = options.clock ?? Date.now;
    this.table = new SharedQuotaTable(options.table);
  }

  /** Synchronous core: evaluate all, commit only if all admit, under the lock. */
  chargeNow(items: readonly ChargeItem[]): ChargeOutcome[] {
    return this.table.locked(() => {
      const now = this.clock();
      const before = items.map((it) => this.table.get(it.key));
      const verdicts = items.map((it, i) => evaluate(live(before[i], now), it, it.cost, now));
      if (verdicts.every((v) => v.allowed)) this.commit(items, verdicts.map((v) => v.next), before, now);
      return verdicts.map(({ next: _next, ...rest }) => rest);
    });
  }

  /** Dry run: the same evaluation under the same lock (a consistent read of every counter), nothing written. */
  peekNow(items: readonly ChargeItem[]): ChargeOutcome[] {
    return this.table.locked(() => {
      const now = this.clock();
      return items.map((it) => evaluate(live(this.table.get(it.key), now), it, it.cost, now)).map(({ next: _next, ...rest }) => rest);
    });
  }

  /** All or none: when the table is full for one key, the counters already written are put back. */
  private commit(items: readonly ChargeItem[], next: QuotaState[], before: (SlotState | undefined)[], now: number): void {
    let i = 0;
    try {
      for (; i < items.length; i++) this.table.set(items[i]!.key, next[i]!, now + ttlMs(items[i]!), now);
    } catch (err) {
      // An entry that did not exist comes back expired (expiresAt 0), which reads as absent.
      for (let j = 0; j < i; j++) this.table.set(items[j]!.key, before[j]?.state ?? EMPTY, before[j]?.expiresAt ?? 0, now);
      throw err;
    }
  }

  charge(items: readonly ChargeItem[], signal?: AbortSignal): Promise<ChargeOutcome[]> {
    if (signal?.aborted) return Promise.reject(new DeadlineExceeded('before charging quotas'));
    try {
      return Promise.resolve(this.chargeNow(items));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  peek(items: readonly ChargeItem[], signal?: AbortSignal): Promise<ChargeOutcome[]> {
    if (signal?.aborted) return Promise.reject(new DeadlineExceeded('before peeking at quotas'));
    try {
      return Promise.resolve(this.peekNow(items));
    } catch (err) {
      return Promise.reject(err instanceof Error ? err : new Error(String(err)));
    }
  }

  /** Counters not yet expired. */
  get size(): number {
    return this.table.live(this.clock());
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

}

const EMPTY: QuotaState = { a: 0, t: 0, p: 0 };

function live(e: SlotState | undefined, now: number): QuotaState | undefined {
  return e && e.expiresAt > now ? e.state : undefined;
}
