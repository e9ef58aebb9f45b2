/**
 * The quota backends' dry run (shadow mode): peek answers what charge would answer now and
 * writes nothing — on the in-memory shared table and on a real redis-server (its own, on a free
 * port), for each algorithm.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import type { ChargeItem, ChargeOutcome, QuotaBackend } from '../../extauthz/quota/backend.js';
import { MemoryBackend } from '../../extauthz/quota/memory-backend.js';
import { RedisBackend } from '../../extauthz/quota/redis-backend.js';
import type { Algorithm } from '../../extauthz/quota/model.js';
import { startRedis, type RedisServer } from './redis-server.js';

const DAY = 86_400_000;
const ALGORITHMS: Algorithm[] = ['fixed-window', 'sliding-window', 'token-bucket'];

function item(algorithm: Algorithm, key: string, cost = 1): ChargeItem {
  return { key: `{peek}:${key}`, algorithm, limit: 3, periodMs: DAY, capacity: 3, cost };
}

/** The parts of an outcome that do not move with the clock within a test (a day-long period). */
function gist(o: ChargeOutcome[]): [boolean, number][] {
  return o.map((x) => [x.allowed, x.remaining]);
}

async function peekNeverCharges(backend: QuotaBackend, exists: (key: string) => Promise<boolean>): Promise<void> {
  for (const algorithm of ALGORITHMS) {
    const it = item(algorithm, algorithm);
    // Nothing stored yet: peek admits, and still nothing is stored.
    assert.deepEqual(gist(await backend.peek([it])), [[true, 2]], algorithm);
    assert.equal(await exists(it.key), false, `${algorithm}: a peek created the key`);
    for (let i = 0; i < 3; i++) {
      const peeked = gist(await backend.peek([it]));
      assert.deepEqual(gist(await backend.peek([it])), peeked, `${algorithm}: two peeks differ`);
      assert.deepEqual(gist(await backend.charge([it])), peeked, `${algorithm}: the charge after a peek differs from it`);
    }
    // At the limit: peek refuses as charge would, and refusing stored nothing either.
    assert.deepEqual(gist(await backend.peek([it])), [[false, 0]], algorithm);
    assert.deepEqual(gist(await backend.charge([it])), [[false, 0]], algorithm);
    // A peek whose cost exceeds the limit says so (never), like a charge.
    const big = await backend.peek([item(algorithm, `${algorithm}-big`, 4)]);
    assert.equal(big[0]!.never, true, algorithm);
  }
}

void describe('quota peek (dry run)', () => {
  let redis: RedisServer;
  let backend: RedisBackend;
  let raw: Redis;

  before(async () => {
    redis = await startRedis();
    backend = new RedisBackend({ url: redis.url, commandTimeoutMs: 2000 });
    assert.ok(await backend.ready(5000));
    raw = new Redis(redis.url);
  });

  after(async () => {
    raw?.disconnect();
    await backend?.close();
    await redis?.close();
  });

  test('in memory (shared table): peek answers as charge would and writes nothing', async () => {
    const memory = new MemoryBackend({ clock: () => 1_700_000_000_000, table: 64 });
    await peekNeverCharges(memory, (key) => Promise.resolve(memory.table.locked(() => memory.table.get(key)) !== undefined));
    assert.equal(memory.size, 3, 'only the three charged counters exist');
  });

  test('on redis-server: peek answers as charge would and writes nothing', async () => {
    await peekNeverCharges(backend, async (key) => (await raw.exists(key)) === 1);
    const ttl = await raw.pttl('{peek}:fixed-window');
    await backend.peek([item('fixed-window', 'fixed-window')]);
    assert.ok((await raw.pttl('{peek}:fixed-window')) <= ttl, 'a peek does not extend the expiry');
    assert.deepEqual((await raw.keys('{peek}:*')).sort(), ['{peek}:fixed-window', '{peek}:sliding-window', '{peek}:token-bucket']);
  });

  test('on redis-server: a peek after a restart (empty script cache) still works and writes nothing', async () => {
    await redis.restart();
    await new Promise<void>((resolve) => {
      const poll = (): void => void backend.ready(100).then((ok) => (ok ? resolve() : setImmediate(poll)));
      poll();
    });
    assert.deepEqual(gist(await backend.peek([item('token-bucket', 'after')])), [[true, 2]]);
    assert.equal(await raw.exists('{peek}:after'), 0);
  });
});
