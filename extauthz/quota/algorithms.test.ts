import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { evaluate, type Limits, type QuotaState } from './algorithms.js';
import { MemoryBackend } from './memory-backend.js';
import type { ChargeItem } from './backend.js';

/** Runs charges through the memory backend with an injected clock. */
function harness(l: Limits): { at: (ms: number, cost?: number) => ReturnType<MemoryBackend['chargeNow']>[0] } {
  let now = 0;
  const backend = new MemoryBackend({ clock: () => now });
  return {
    at(ms, cost = 1) {
      now = ms;
      return backend.chargeNow([{ key: 'k', cost, ...l }])[0]!;
    },
  };
}

const T0 = 1_800_000_000_000; // a multiple of 1000 and of 60 000: window-aligned
const bucket: Limits = { algorithm: 'token-bucket', limit: 10, periodMs: 1000, capacity: 20 };
const fixed: Limits = { algorithm: 'fixed-window', limit: 5, periodMs: 60_000, capacity: 5 };
const sliding: Limits = { algorithm: 'sliding-window', limit: 10, periodMs: 60_000, capacity: 10 };

void describe('token bucket', () => {
  void test('starts full at the burst capacity and refuses the request after it', () => {
    const h = harness(bucket);
    for (let i = 0; i < 20; i++) assert.equal(h.at(T0).allowed, true, `request ${i}`);
    const r = h.at(T0);
    assert.equal(r.allowed, false);
    assert.equal(r.remaining, 0);
    assert.equal(r.retryAfterMs, 100); // 10 per second: one token per 100 ms
  });
  void test('refills at limit per period, never above capacity', () => {
    const h = harness(bucket);
    for (let i = 0; i < 20; i++) h.at(T0);
    assert.equal(h.at(T0 + 99).allowed, false);
    assert.equal(h.at(T0 + 100).allowed, true);
    assert.equal(h.at(T0 + 100).allowed, false);
    const later = h.at(T0 + 3_600_000);
    assert.equal(later.allowed, true);
    assert.equal(later.remaining, 19); // capped at capacity 20, minus this request
  });
  void test('cost above the capacity is never admitted and burns nothing', () => {
    const h = harness(bucket);
    const r = h.at(T0, 21);
    assert.equal(r.allowed, false);
    assert.equal(r.never, true);
    assert.equal(h.at(T0, 20).allowed, true);
  });
  void test('cost equal to the capacity empties the bucket', () => {
    const h = harness(bucket);
    assert.deepEqual([h.at(T0, 20).allowed, h.at(T0).allowed], [true, false]);
  });
});

void describe('fixed window', () => {
  void test('admits limit units per window and resets exactly at the boundary', () => {
    const h = harness(fixed);
    for (let i = 0; i < 5; i++) assert.equal(h.at(T0 + 59_999).allowed, true);
    const refused = h.at(T0 + 59_999);
    assert.deepEqual([refused.allowed, refused.retryAfterMs, refused.resetMs], [false, 1, 1]);
    assert.equal(h.at(T0 + 60_000).allowed, true);
    assert.equal(h.at(T0 + 60_000).remaining, 3);
  });
  void test('a cost that does not fit is refused without using the window', () => {
    const h = harness(fixed);
    h.at(T0, 3);
    assert.equal(h.at(T0, 3).allowed, false);
    assert.equal(h.at(T0, 2).allowed, true);
  });
  void test('cost above the limit is never admitted', () => {
    const r = harness(fixed).at(T0, 6);
    assert.deepEqual([r.allowed, r.never], [false, true]);
  });
});

void describe('sliding window', () => {
  void test('the previous window weighs in proportion to its overlap', () => {
    const h = harness(sliding);
    for (let i = 0; i < 10; i++) assert.equal(h.at(T0 + 30_000).allowed, true);
    assert.equal(h.at(T0 + 59_999).allowed, false);
    // Half-way through the next window, half of the previous 10 still counts: 5 left.
    const mid = T0 + 90_000;
    for (let i = 0; i < 5; i++) assert.equal(h.at(mid).allowed, true, `request ${i}`);
    assert.equal(h.at(mid).allowed, false);
  });
  void test('forgets everything after two windows', () => {
    const h = harness(sliding);
    for (let i = 0; i < 10; i++) h.at(T0);
    assert.equal(h.at(T0 + 120_000, 10).allowed, true);
  });
  void test('Retry-After points at the moment the cost fits again', () => {
    const h = harness(sliding);
    for (let i = 0; i < 10; i++) h.at(T0);
    const r = h.at(T0 + 60_000);
    assert.equal(r.allowed, false);
    assert.equal(h.at(T0 + 60_000 + r.retryAfterMs - 1).allowed, false);
    assert.equal(h.at(T0 + 60_000 + r.retryAfterMs).allowed, true);
  });
  void test('cost above the limit is never admitted', () => {
    const r = harness(sliding).at(T0, 11);
    assert.deepEqual([r.allowed, r.never], [false, true]);
  });
});

void describe('all or none', () => {
  void test('a request refused by the daily quota does not burn burst tokens', () => {
    let now = T0;
    const backend = new MemoryBackend({ clock: () => now });
    const burst: ChargeItem = { key: 'burst', cost: 1, algorithm: 'token-bucket', limit: 1, periodMs: 1000, capacity: 3 };
    const daily: ChargeItem = { key: 'daily', cost: 1, algorithm: 'fixed-window', limit: 2, periodMs: 86_400_000, capacity: 2 };
    assert.equal(backend.chargeNow([burst, daily]).every((o) => o.allowed), true);
    assert.equal(backend.chargeNow([burst, daily]).every((o) => o.allowed), true);
    const third = backend.chargeNow([burst, daily]);
    assert.deepEqual(third.map((o) => o.allowed), [true, false]);
    // The burst bucket still holds its last token: the refused request charged nothing.
    assert.equal(backend.chargeNow([burst])[0]!.remaining, 0);
    now += 1;
    assert.equal(backend.chargeNow([burst])[0]!.allowed, false);
  });
});

void test('evaluate is pure: the same state and time give the same verdict', () => {
  const s: QuotaState = { a: 3, t: T0, p: 0 };
  assert.deepEqual(evaluate(s, fixed, 1, T0 + 5), evaluate(s, fixed, 1, T0 + 5));
  assert.deepEqual(s, { a: 3, t: T0, p: 0 });
});
