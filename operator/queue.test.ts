import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import { WorkQueue } from './queue.js';

/** Runs queued promise callbacks (the handler's awaits) without moving the clock. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise<void>((r) => setImmediate(r));
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

describe('WorkQueue', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout', 'Date'], now: 0 }));
  afterEach(() => mock.timers.reset());

  test('duplicate keys merge while waiting', async () => {
    const seen: string[] = [];
    const gate = deferred();
    const q = new WorkQueue(async (k) => {
      seen.push(k);
      if (k === 'block') await gate.promise;
    }, { workers: 1 });
    for (const k of ['block', 'a', 'a', 'a']) q.add(k);
    assert.equal(q.depth, 1);
    gate.resolve();
    await settle();
    assert.deepEqual(seen, ['block', 'a']);
    q.stop();
  });

  test('a key is never processed twice at once; re-added while running, it runs once more after', async () => {
    let running = 0;
    let maxRunning = 0;
    let runs = 0;
    const gates = [deferred(), deferred()];
    const q = new WorkQueue(async () => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await gates[runs++]!.promise;
      running--;
    }, { workers: 4 });
    q.add('k');
    await settle();
    q.add('k');
    q.add('k');
    await settle();
    assert.equal(runs, 1, 'the second add waits for the first run');
    gates[0]!.resolve();
    await settle();
    gates[1]!.resolve();
    await settle();
    assert.equal(maxRunning, 1);
    assert.equal(runs, 2);
    q.stop();
  });

  test('first adds are not rate limited: 1,000 keys run without the clock moving', async () => {
    let done = 0;
    const q = new WorkQueue(async () => void done++, { workers: 2, qps: 10, burst: 100 });
    for (let i = 0; i < 1000; i++) q.add(`ns/p${i}`);
    await settle();
    for (let i = 0; i < 100 && done < 1000; i++) await settle();
    assert.equal(done, 1000);
    q.stop();
  });

  test('failures back off per key: 5 ms, 10 ms, 20 ms, and reset after a success', async () => {
    const at: number[] = [];
    let fail = 3;
    const q = new WorkQueue(async () => {
      at.push(Date.now());
      if (fail-- > 0) throw new Error('transient');
    });
    q.add('k');
    await settle();
    for (const step of [4, 1, 9, 1, 19, 1]) {
      mock.timers.tick(step);
      await settle();
    }
    assert.deepEqual(at, [0, 5, 15, 35]);
    // Succeeded: the next failure starts again from 5 ms.
    fail = 1;
    q.add('k');
    await settle();
    mock.timers.tick(5);
    await settle();
    assert.deepEqual(at.slice(4), [35, 40]);
    q.stop();
  });

  const delays: { name: string; failures: number; want: number }[] = [
    { name: 'first retry', failures: 1, want: 5 },
    { name: 'tenth retry', failures: 10, want: 5 * 2 ** 9 },
    { name: 'capped at ~1000 s', failures: 40, want: 1_000_000 },
  ];
  for (const c of delays) {
    test(`per-key delay: ${c.name}`, () => {
      const q = new WorkQueue(async () => undefined, { burst: 1000 });
      let d = 0;
      for (let i = 0; i < c.failures; i++) d = q.addRateLimited('k');
      assert.equal(d, c.want);
      q.stop();
    });
  }

  test('retries share a global bucket (10/s, burst 100): the 101st retry waits 100 ms, not 5', () => {
    const q = new WorkQueue(async () => undefined);
    const first = Array.from({ length: 100 }, (_, i) => q.addRateLimited(`k${i}`));
    assert.ok(first.every((d) => d === 5));
    assert.equal(q.addRateLimited('k100'), 100);
    assert.equal(q.addRateLimited('k101'), 200);
    mock.timers.tick(100); // one token back: the bucket is still two short
    assert.equal(q.addRateLimited('k102'), 200);
    mock.timers.tick(1000); // ten more: the bucket no longer limits
    assert.equal(q.addRateLimited('k103'), 5);
    q.stop();
  });

  test('a key retrying is run again by its timer; stop() cancels pending retries', async () => {
    let runs = 0;
    const q = new WorkQueue(async () => {
      runs++;
      throw new Error('always');
    });
    q.add('k');
    await settle();
    assert.equal(q.retrying, 1);
    q.stop();
    mock.timers.tick(10_000);
    await settle();
    assert.equal(runs, 1);
    assert.equal(q.retrying, 0);
  });
});
