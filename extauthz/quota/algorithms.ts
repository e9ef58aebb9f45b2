/**
 * The three quota algorithms as pure functions of (state, limits, cost, now): no clock, no I/O,
 * so tests inject time and the memory backend stays exact. The Redis backend runs the same
 * arithmetic in Lua (redis-scripts.ts); tests keep the two in step.
 *
 * Each function returns the verdict and the state to store if (and only if) every quota of the
 * request admits it: charging is all or none.
 */
import type { Algorithm } from './model.js';

export interface Limits {
  algorithm: Algorithm;
  limit: number;
  periodMs: number;
  capacity: number;
}

/** Token bucket: tokens and the time they were counted. Windows: window start, counts. */
export interface QuotaState {
  /** tokens (bucket) or count in the current window. */
  a: number;
  /** last refill time (bucket) or start of the current window. */
  t: number;
  /** count in the previous window (sliding window only). */
  p: number;
}

export interface Verdict {
  allowed: boolean;
  /** Units still available after this request (allowed) or now (denied), floored. */
  remaining: number;
  /** Milliseconds until the allowance is fully restored (window end, or bucket full). */
  resetMs: number;
  /** Denied: milliseconds until this cost could be admitted. */
  retryAfterMs: number;
  /** The state to store when the whole request is admitted. */
  next: QuotaState;
  /** The cost can never be admitted (cost > capacity). */
  never?: boolean;
}

function tokenBucket(s: QuotaState | undefined, l: Limits, cost: number, now: number): Verdict {
  const rate = l.limit / l.periodMs; // tokens per ms
  const elapsed = s ? Math.max(0, now - s.t) : 0;
  const tokens = s ? Math.min(l.capacity, s.a + elapsed * rate) : l.capacity;
  const toFull = (level: number): number => Math.ceil((l.capacity - level) / rate);
  if (cost > l.capacity) return { allowed: false, remaining: Math.floor(tokens), resetMs: toFull(tokens), retryAfterMs: l.periodMs, next: { a: tokens, t: now, p: 0 }, never: true };
  if (cost <= tokens) {
    const left = tokens - cost;
    return { allowed: true, remaining: Math.floor(left), resetMs: toFull(left), retryAfterMs: 0, next: { a: left, t: now, p: 0 } };
  }
  return { allowed: false, remaining: Math.floor(tokens), resetMs: toFull(tokens), retryAfterMs: Math.ceil((cost - tokens) / rate), next: { a: tokens, t: now, p: 0 } };
}

/** Windows are aligned to the Unix epoch, so a 24h window resets at 00:00 UTC on every replica. */
function windowStart(now: number, periodMs: number): number {
  return now - (now % periodMs);
}

function fixedWindow(s: QuotaState | undefined, l: Limits, cost: number, now: number): Verdict {
  const start = windowStart(now, l.periodMs);
  const used = s && s.t === start ? s.a : 0;
  const resetMs = start + l.periodMs - now;
  if (cost > l.limit) return { allowed: false, remaining: l.limit - used, resetMs, retryAfterMs: l.periodMs, next: { a: used, t: start, p: 0 }, never: true };
  if (used + cost <= l.limit) return { allowed: true, remaining: l.limit - used - cost, resetMs, retryAfterMs: 0, next: { a: used + cost, t: start, p: 0 } };
  return { allowed: false, remaining: l.limit - used, resetMs, retryAfterMs: resetMs, next: { a: used, t: start, p: 0 } };
}

/** Counts of the current and previous windows, as seen at `start`. */
function slide(s: QuotaState | undefined, start: number, periodMs: number): { cur: number; prev: number } {
  if (!s) return { cur: 0, prev: 0 };
  if (s.t === start) return { cur: s.a, prev: s.p };
  if (s.t === start - periodMs) return { cur: 0, prev: s.a };
  return { cur: 0, prev: 0 };
}

/**
 * Sliding window (the weighted two-window approximation): the previous window's count weighs in
 * proportion to how much of it still overlaps the last `period`. Smooth at window boundaries,
 * two numbers of state, and the same in Lua.
 */
function slidingWindow(s: QuotaState | undefined, l: Limits, cost: number, now: number): Verdict {
  const start = windowStart(now, l.periodMs);
  const elapsed = now - start;
  const { cur, prev } = slide(s, start, l.periodMs);
  const used = prev * (1 - elapsed / l.periodMs) + cur;
  const resetMs = (cur > 0 ? 2 * l.periodMs : l.periodMs) - elapsed;
  const next = { a: cur, t: start, p: prev };
  if (cost > l.limit) return { allowed: false, remaining: Math.max(0, Math.floor(l.limit - used)), resetMs, retryAfterMs: l.periodMs, next, never: true };
  if (used + cost <= l.limit) return { allowed: true, remaining: Math.floor(l.limit - used - cost), resetMs, retryAfterMs: 0, next: { a: cur + cost, t: start, p: prev } };
  return { allowed: false, remaining: Math.max(0, Math.floor(l.limit - used)), resetMs, retryAfterMs: slidingRetry({ cur, prev, cost, elapsed }, l), next };
}

/** When the decaying previous window (or, failing that, the next one) makes room for `cost`. */
export function slidingRetry({ cur, prev, cost, elapsed }: { cur: number; prev: number; cost: number; elapsed: number }, l: Limits): number {
  const room = l.limit - cost - cur;
  if (room >= 0 && prev > 0) {
    // prev * (1 - (elapsed + t) / period) + cur <= limit - cost
    return Math.max(1, Math.ceil(l.periodMs * (1 - room / prev) - elapsed));
  }
  // In the next window the current count becomes the previous one and decays from there.
  const nextRoom = l.limit - cost;
  const intoNext = cur > 0 ? Math.ceil(l.periodMs * (1 - nextRoom / cur)) : 0;
  return Math.max(1, l.periodMs - elapsed + Math.max(0, intoNext));
}

const ALGORITHMS: Record<Algorithm, (s: QuotaState | undefined, l: Limits, cost: number, now: number) => Verdict> = {
  'token-bucket': tokenBucket,
  'fixed-window': fixedWindow,
  'sliding-window': slidingWindow,
};

export function evaluate(s: QuotaState | undefined, l: Limits, cost: number, now: number): Verdict {
  return ALGORITHMS[l.algorithm](s, l, cost, now);
}

/** How long a stored state matters: after this, a fresh state gives the same verdict. */
export function ttlMs(l: Limits): number {
  if (l.algorithm === 'token-bucket') return Math.ceil(l.capacity / (l.limit / l.periodMs)) + 1000;
  return (l.algorithm === 'sliding-window' ? 2 : 1) * l.periodMs + 1000;
}
