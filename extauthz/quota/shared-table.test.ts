import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { QuotaBackendError } from './backend.js';
import { MemoryBackend } from './memory-backend.js';
import { SharedQuotaTable } from './shared-table.js';

const S = (a: number): { a: number; t: number; p: number } => ({ a, t: 1, p: 2 });

describe('SharedQuotaTable', () => {
  const cases: [string, (t: SharedQuotaTable) => unknown, unknown][] = [
    ['an absent key', (t) => t.get('k'), undefined],
    ['set then get', (t) => (t.set('k', S(5), 100, 0), t.get('k')), { state: S(5), expiresAt: 100 }],
    ['a second set overwrites in place', (t) => (t.set('k', S(5), 100, 0), t.set('k', S(6), 200, 0), [t.get('k'), t.live(0)]), [{ state: S(6), expiresAt: 200 }, 1]],
    ['keys longer than a slot are hashed and stay distinct', (t) => (t.set('x'.repeat(300), S(1), 9, 0), t.set(`${'x'.repeat(299)}y`, S(2), 9, 0), [t.get('x'.repeat(300))?.state.a, t.get(`${'x'.repeat(299)}y`)?.state.a]), [1, 2]],
    ['multi-byte keys', (t) => (t.set('pq:{é.consumer}:ü', S(3), 9, 0), t.get('pq:{é.consumer}:ü')?.state.a), 3],
  ];
  for (const [name, run, want] of cases) test(name, () => assert.deepEqual(run(new SharedQuotaTable(64)), want));

  test('a full table refuses a new key, and reuses an expired slot', () => {
    const t = new SharedQuotaTable(2);
    t.set('a', S(1), 10, 0);
    t.set('b', S(1), 20, 0);
    assert.throws(() => t.set('c', S(1), 30, 5), QuotaBackendError);
    t.set('c', S(1), 30, 15); // 'a' expired at 10: its slot is reused
    assert.deepEqual([t.get('a'), t.get('b')?.expiresAt, t.get('c')?.expiresAt], [undefined, 20, 30]);
  });

  test('two views of one buffer see the same counters', () => {
    const a = new SharedQuotaTable(16);
    const b = new SharedQuotaTable(a.buffer);
    a.set('k', S(7), 50, 0);
    assert.equal(b.get('k')?.state.a, 7);
  });
});

describe('MemoryBackend on the shared table', () => {
  const item = (key: string, limit = 3) => ({ key, cost: 1, algorithm: 'fixed-window' as const, limit, periodMs: 1000, capacity: limit });

  test('all or none: when the table is full for the second counter, the first is put back', async () => {
    const b = new MemoryBackend({ clock: () => 0, table: 1 });
    b.chargeNow([item('first')]);
    await assert.rejects(b.charge([item('first'), item('second')]), QuotaBackendError);
    assert.equal(b.chargeNow([item('first')])[0]!.remaining, 1, 'the failed charge took nothing from "first"');
  });

  async function hammer(workers: number, shared: boolean, limit: number, attempts: number): Promise<number[]> {
    const table = new SharedQuotaTable(1024);
    const gate = new SharedArrayBuffer(8);
    let ready = 0;
    const results = Array.from({ length: workers }, () => new Promise<number>((resolve, reject) => {
      const w = new Worker(new URL('./hammer-worker.js', import.meta.url), { workerData: { buffer: shared ? table.buffer : undefined, attempts, limit, now: 1_000, gate } });
      w.on('message', (m: 'ready' | { admitted: number }) => {
        if (m !== 'ready') return resolve(m.admitted);
        // Every worker is waiting at the gate: open it.
        if (++ready === workers) Atomics.store(new Int32Array(gate), 1, 1);
      });
      w.once('error', reject);
    }));
    return Promise.all(results);
  }

  const workers = Math.max(4, availableParallelism());
  test(`${workers} worker threads hammering one quota admit exactly its limit`, async () => {
    const admitted = await hammer(workers, true, 5_000, 4_000);
    assert.equal(admitted.reduce((a, b) => a + b, 0), 5_000, `admitted per worker: ${admitted.join(', ')}`);
  });

  test('control: with a table per worker, the same hammering admits the limit once per worker', async () => {
    const admitted = await hammer(workers, false, 5_000, 4_000);
    assert.equal(admitted.reduce((a, b) => a + b, 0), workers * 4_000);
  });
});
