/**
 * Deadlines against a real redis-server, from the attacker's side: a client that makes its Checks
 * late (a slow upload, a stalled token endpoint, a flood) must not make them cost the quota of the
 * principal they claim. A Check whose deadline has passed is denied DEADLINE_EXCEEDED, audited as
 * such, and the Redis counters are exactly as they were.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileValid } from '../helpers/policies.js';
import { DecisionPipeline } from '../../extauthz/pipeline/pipeline.js';
import type { Decision } from '../../extauthz/pipeline/decision.js';
import { DeadlineExceeded } from '../../extauthz/pipeline/deadline.js';
import { RedisBackend } from '../../extauthz/quota/redis-backend.js';
import { QuotaEnforcer } from '../../extauthz/quota/phase.js';
import { KEYS, quotaPolicyYaml, quotaRequest } from '../../extauthz/quota/test-fixtures.js';
import { startRedis, type RedisServer } from './redis-server.js';

let redis: RedisServer;
let backend: RedisBackend;

before(async () => {
  redis = await startRedis();
  backend = new RedisBackend({ url: redis.url, commandTimeoutMs: 2000 });
  assert.ok(await backend.ready(5000), 'redis-server did not become ready');
});

after(async () => {
  await backend?.close();
  await redis?.close();
});

const ITEM = { key: 'deadline:k', cost: 1, algorithm: 'fixed-window' as const, limit: 1, periodMs: 60_000, capacity: 1 };

void describe('Redis quotas and expired deadlines', () => {
  void test('an expired Check is denied before any script reaches Redis; the counters are untouched', async () => {
    // burst: 1 per minute, so one stray charge would turn the next allowed Check into a 429.
    const snapshot = compileValid(quotaPolicyYaml({ burstLimit: 1 })).snapshot;
    const audited: Decision[] = [];
    const p = new DecisionPipeline({ snapshot: () => snapshot, quota: new QuotaEnforcer({ backend }), audit: { record: (d) => (audited.push(d), Promise.resolve()) } });
    for (let i = 0; i < 5; i++) {
      const d = await p.check(quotaRequest({ apiKey: KEYS.a1 }), { signal: AbortSignal.abort() });
      assert.deepEqual([d.allowed, d.code, d.status], [false, 'DEADLINE_EXCEEDED', 503]);
    }
    assert.deepEqual(audited.map((d) => d.code), Array(5).fill('DEADLINE_EXCEEDED'));
    const live = await p.check(quotaRequest({ apiKey: KEYS.a1 }));
    assert.equal(live.allowed, true, `the expired Checks charged the burst quota: ${live.reason}`);
    assert.equal((await p.check(quotaRequest({ apiKey: KEYS.a1 }))).code, 'QUOTA_EXCEEDED', 'the quota itself is enforced');
  });

  void test('the backend itself sends nothing past the deadline', async () => {
    await assert.rejects(backend.charge([ITEM], AbortSignal.abort()), DeadlineExceeded);
    const [first] = await backend.charge([ITEM]);
    assert.equal(first?.allowed, true, 'the refused charge used the only unit');
    const [second] = await backend.charge([ITEM]);
    assert.equal(second?.allowed, false);
  });
});
