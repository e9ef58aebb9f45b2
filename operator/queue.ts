/**
 * A keyed work queue in the client-go style: duplicate keys merge while waiting, a key is never
 * processed by two workers at once (a key re-added while it runs is processed again after), and
 * only failures are rate limited — the delay of a retry is the larger of the key's exponential
 * backoff (5 ms doubling to ~1000 s) and a global token bucket (10/s, burst 100), as client-go's
 * DefaultControllerRateLimiter. A first add, or an add for a change, runs as soon as a worker is
 * free: limiting those would make a cold start of 10,000 policies take 1,000 s.
 */
export interface QueueOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Global rate limit of retries: sustained keys per second and burst. */
  qps?: number;
  burst?: number;
  workers?: number;
  now?: () => number;
}

export type Handler = (key: string) => Promise<void>;

/** client-go's BucketRateLimiter: each retry reserves a token; the wait is until it exists. */
class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(
    private readonly qps: number,
    private readonly burst: number,
    private readonly now: () => number,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** Reserves one token; returns how long until it is available (0: now). */
  reserve(): number {
    const now = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.qps) * 1000);
  }
}

export class WorkQueue {
  private readonly pending = new Set<string>();
  private readonly order: string[] = [];
  private head = 0;
  private readonly running = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly failures = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly bucket: TokenBucket;
  private stopped = false;
  private readonly opts: Required<QueueOptions>;

  constructor(
    private readonly handler: Handler,
    options: QueueOptions = {},
  ) {
    this.opts = { baseDelayMs: 5, maxDelayMs: 1_000_000, qps: 10, burst: 100, workers: 2, now: () => Date.now(), ...options };
    this.bucket = new TokenBucket(this.opts.qps, this.opts.burst, this.opts.now);
  }

  /** Keys waiting for a worker (not those running or waiting out a backoff). */
  get depth(): number {
    return this.pending.size;
  }

  /** Keys waiting out a retry backoff. */
  get retrying(): number {
    return this.timers.size;
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

  /** Re-adds the key after max(its backoff, the global bucket's wait). Returns the delay. */
  addRateLimited(key: string): number {
    const n = (this.failures.get(key) ?? 0) + 1;
    this.failures.set(key, n);
    const backoff = Math.min(this.opts.baseDelayMs * 2 ** (n - 1), this.opts.maxDelayMs);
    const delay = Math.max(backoff, this.bucket.reserve());
    if (this.timers.has(key)) return delay; // already scheduled: client-go keeps the earlier one
    this.timers.set(key, setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, delay));
    return delay;
  }

  /** The key succeeded: its next failure starts from the base delay again. */
  forget(key: string): void {
    this.failures.delete(key);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  private next(): string | undefined {
    if (this.head >= this.order.length) return undefined;
    const key = this.order[this.head++];
    // Compact now and then, so a long-lived queue's array does not grow without bound.
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order.splice(0, this.head);
      this.head = 0;
    }
    return key;
  }

  private pump(): void {
    while (!this.stopped && this.running.size < this.opts.workers) {
      const key = this.next();
      if (key === undefined) return;
      this.pending.delete(key);
      this.running.add(key);
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
      if (this.dirty.delete(key)) this.add(key);
      this.pump();
    }
  }
}
