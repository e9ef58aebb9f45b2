/**
 * A keyed work queue in the client-go style: duplicate keys merge while waiting, a key is never
 * processed by two workers at once (a key re-added while it runs is processed again after), and
 * failures back off per key (5 ms doubling to ~1000 s) under a global token bucket.
 */
export interface QueueOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Global rate limit: sustained keys per second and burst. */
  qps?: number;
  burst?: number;
  workers?: number;
  now?: () => number;
}

export type Handler = (key: string) => Promise<void>;

export class WorkQueue {
  private readonly pending = new Set<string>();
  private readonly order: string[] = [];
  private readonly running = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private tokens: number;
  private lastRefill: number;
  private active = 0;
  private stopped = false;
  private wake: NodeJS.Timeout | undefined;
  private readonly opts: Required<QueueOptions>;

  constructor(
    private readonly handler: Handler,
    options: QueueOptions = {},
  ) {
    this.opts = { baseDelayMs: 5, maxDelayMs: 1_000_000, qps: 10, burst: 100, workers: 2, now: () => Date.now(), ...options };
    this.tokens = this.opts.burst;
    this.lastRefill = this.opts.now();
  }

  get depth(): number {
    return this.pending.size;
  }

  add(key: string): void {
    if (this.stopped) return;
    if (this.running.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.pending.has(key)) return;
    this.pending.add(key);
    this.order.push(key);
    this.pump();
  }

  /** Re-adds the key after its per-key backoff. */
  addRateLimited(key: string): void {
    const n = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, n);
    const delay = Math.min(this.opts.baseDelayMs * 2 ** (n - 1), this.opts.maxDelayMs);
    clearTimeout(this.timers.get(key));
    this.timers.set(key, setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delay));
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    clearTimeout(this.wake);
  }

  private takeToken(): boolean {
    const now = this.opts.now();
    this.tokens = Math.min(this.opts.burst, this.tokens + ((now - this.lastRefill) / 1000) * this.opts.qps);
    this.lastRefill = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private pump(): void {
    while (!this.stopped && this.active < this.opts.workers && this.order.length > 0) {
      if (!this.takeToken()) {
        clearTimeout(this.wake);
        this.wake = setTimeout(() => this.pump(), Math.ceil(1000 / this.opts.qps));
        return;
      }
      const key = this.order.shift()!;
      this.pending.delete(key);
      this.running.add(key);
      this.active++;
      void this.run(key);
    }
  }

  private async run(key: string): Promise<void> {
    try {
      await this.handler(key);
      this.forget(key);
    } catch {
      this.addRateLimited(key);
    } finally {
      this.running.delete(key);
      this.active--;
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
    }
  }
}
