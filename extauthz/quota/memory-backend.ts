/**
 * The in-process backend (the default): exact, and atomic because a charge runs synchronously on
 * the one event loop. State lives in the backend, not in the policy snapshot, so it survives
 * policy reloads. Expired states are swept so idle keys do not accumulate.
 */
import { DeadlineExceeded } from '../pipeline/deadline.js';
import { evaluate, ttlMs, type QuotaState } from './algorithms.js';
import type { ChargeItem, ChargeOutcome, QuotaBackend } from './backend.js';

interface Entry {
  state: QuotaState;
  expiresAt: number;
}

export interface MemoryBackendOptions {
  /** Milliseconds since the epoch; injected in tests. */
  clock?: () => number;
  /** Sweep expired entries every this many writes. */
  sweepEvery?: number;
}

export class MemoryBackend implements QuotaBackend {
  readonly name = 'memory' as const;
  private readonly entries = new Map<string, Entry>();
  private readonly clock: () => number;
  private readonly sweepEvery: number;
  private writes = 0;

  constructor(options: MemoryBackendOptions = {}) {
    this.clock = options.clock ?? Date.now;
    this.sweepEvery = options.sweepEvery ?? 10_000;
  }

  /** Synchronous core: evaluate all, commit only if all admit. */
  chargeNow(items: readonly ChargeItem[]): ChargeOutcome[] {
    const now = this.clock();
    const verdicts = items.map((it) => evaluate(this.live(it.key, now), it, it.cost, now));
    if (verdicts.every((v) => v.allowed)) {
      items.forEach((it, i) => this.entries.set(it.key, { state: verdicts[i]!.next, expiresAt: now + ttlMs(it) }));
      this.maybeSweep(now, items.length);
    }
    return verdicts.map(({ next: _next, ...rest }) => rest);
  }

  charge(items: readonly ChargeItem[], signal?: AbortSignal): Promise<ChargeOutcome[]> {
    if (signal?.aborted) return Promise.reject(new DeadlineExceeded('before charging quotas'));
    return Promise.resolve(this.chargeNow(items));
  }

  get size(): number {
    return this.entries.size;
  }

  close(): Promise<void> {
    this.entries.clear();
    return Promise.resolve();
  }

  private live(key: string, now: number): QuotaState | undefined {
    const e = this.entries.get(key);
    return e && e.expiresAt > now ? e.state : undefined;
  }

  private maybeSweep(now: number, n: number): void {
    this.writes += n;
    if (this.writes < this.sweepEvery) return;
    this.writes = 0;
    for (const [k, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(k);
  }
}
