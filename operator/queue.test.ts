import assert from 'node:assert/strict';
import { test } from 'node:test';
import { WorkQueue } from './queue.js';

const tick = (ms = 20): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('duplicate keys merge while waiting', async () => {
  const seen: string[] = [];
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const q = new WorkQueue(async (k) => {
    seen.push(k);
    if (k === 'block') await gate;
  }, { workers: 1 });
  q.add('block');
  q.add('a');
  q.add('a');
  q.add('a');
  release();
  await tick(50);
  assert.deepEqual(seen, ['block', 'a']);
  q.stop();
});

test('a key is never processed twice at once; re-added while running, it runs again after', async () => {
  let running = 0;
  let maxRunning = 0;
  let runs = 0;
  const q = new WorkQueue(async () => {
    running++;
    maxRunning = Math.max(maxRunning, running);
    runs++;
    await tick(30);
    running--;
  }, { workers: 4 });
  q.add('k');
  await tick(5);
  q.add('k');
  q.add('k');
  await tick(120);
  assert.equal(maxRunning, 1);
  assert.equal(runs, 2);
  q.stop();
});

test('failures back off per key and succeed later', async () => {
  let calls = 0;
  const q = new WorkQueue(async () => {
    calls++;
    if (calls < 3) throw new Error('transient');
  }, { baseDelayMs: 5 });
  q.add('k');
  await tick(150);
  assert.equal(calls, 3);
  q.stop();
});

test('the global token bucket limits throughput', async () => {
  let now = 0;
  const done: string[] = [];
  const q = new WorkQueue(async (k) => void done.push(k), { qps: 1, burst: 2, now: () => now });
  for (const k of ['a', 'b', 'c', 'd']) q.add(k);
  await tick(30);
  assert.deepEqual(done, ['a', 'b']);
  now = 5000;
  await tick(1100);
  assert.ok(done.length >= 3, `expected more keys after refill, got ${done.join(',')}`);
  q.stop();
});
