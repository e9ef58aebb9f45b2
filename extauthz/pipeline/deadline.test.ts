import { after, before, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileValid } from '../../test/helpers/policies.js';
import { bearer, checkRequest } from '../../test/helpers/requests.js';
import { generateKey, mintToken, type TestKey } from '../../test/helpers/keys.js';
import { HOSTS, REVENUE_SPIFFE, standardFiles } from '../../test/helpers/fixtures.js';
import { JwksServer } from '../../test/helpers/jwks-server.js';
import { CallDeadline, DeadlineExceeded, raceDeadline } from './deadline.js';
import type { Decision } from './decision.js';
import type { QuotaPhase } from './hooks.js';
import { DecisionPipeline } from './pipeline.js';
import type { ChargeOutcome, QuotaBackend } from '../quota/backend.js';
import { MemoryBackend } from '../quota/memory-backend.js';
import { QuotaEnforcer } from '../quota/phase.js';
import { KEYS, quotaPolicyYaml, quotaRequest } from '../quota/test-fixtures.js';

describe('CallDeadline', () => {
  test('aborts when the deadline passes (fake timers), not before', () => {
    mock.timers.enable({ apis: ['setTimeout'], now: 1_000 });
    try {
      const d = new CallDeadline(1_200, 1_000);
      mock.timers.tick(199);
      assert.equal(d.signal.aborted, false);
      mock.timers.tick(1);
      assert.equal(d.signal.aborted, true);
      d.dispose();
    } finally {
      mock.timers.reset();
    }
  });

  test('the shadow deadline fires at half the time left, and with the Check deadline or cancel', () => {
    mock.timers.enable({ apis: ['setTimeout'], now: 1_000 });
    try {
      const d = new CallDeadline(1_200, 1_000);
      mock.timers.tick(99);
      assert.deepEqual([d.shadowSignal.aborted, d.signal.aborted], [false, false]);
      mock.timers.tick(1);
      assert.deepEqual([d.shadowSignal.aborted, d.signal.aborted], [true, false]);
      d.dispose();
      const c = new CallDeadline(undefined);
      c.cancel();
      assert.deepEqual([c.shadowSignal.aborted, c.signal.aborted], [true, true]);
      assert.equal(new CallDeadline(999, 1_000).shadowSignal.aborted, true);
    } finally {
      mock.timers.reset();
    }
  });

  test('a deadline already past aborts at once; none never aborts; cancel aborts', () => {
    assert.equal(new CallDeadline(Date.now() - 1).signal.aborted, true);
    const none = new CallDeadline(undefined);
    assert.equal(none.signal.aborted, false);
    none.cancel();
    assert.equal(none.signal.aborted, true);
  });

  test('raceDeadline rejects with DeadlineExceeded when the signal fires first', async () => {
    const c = new AbortController();
    const never = new Promise<number>(() => undefined);
    const raced = raceDeadline(never, c.signal, 'in test');
    c.abort();
    await assert.rejects(raced, (err: unknown) => err instanceof DeadlineExceeded && err.code === 'DEADLINE_EXCEEDED');
    assert.equal(await raceDeadline(Promise.resolve(7), new AbortController().signal, 'x'), 7);
  });
});

describe('deadlines in the pipeline, from the attacker side: a slow or late Check', () => {
  const NOW = new Date('2026-03-01T12:00:00Z');
  const agency = checkRequest({ host: HOSTS.stats, path: '/v1/stats/income/2025', principal: REVENUE_SPIFFE, headers: { 'x-purpose-of-use': 'statistics' } });
  let key: TestKey;
  let jwks: JwksServer;

  before(async () => {
    key = await generateKey('ES256');
    jwks = await new JwksServer([key.publicJwk]).start();
  });
  after(() => jwks.close());

  function counting(): QuotaPhase & { charges: number } {
    const q = { charges: 0, charge: () => (q.charges++, Promise.resolve({ allowed: true, headers: {} })) };
    return q;
  }

  test('a Check whose deadline has already passed is denied before it charges quotas, and the audit says so', async () => {
    const snapshot = compileValid(standardFiles([key.publicJwk])).snapshot;
    const quota = counting();
    const audited: Decision[] = [];
    const p = new DecisionPipeline({ snapshot: () => snapshot, clock: () => NOW, quota, audit: { record: (d) => (audited.push(d), Promise.resolve()) } });
    const d = await p.check(agency, { signal: AbortSignal.abort() });
    assert.deepEqual({ allowed: d.allowed, code: d.code, status: d.status }, { allowed: false, code: 'DEADLINE_EXCEEDED', status: 503 });
    assert.equal(quota.charges, 0);
    assert.equal(audited[0]?.code, 'DEADLINE_EXCEEDED');
  });

  test('the deadline passing while the phases ran turns their allow into the deny the client got', async () => {
    const snapshot = compileValid(standardFiles([key.publicJwk])).snapshot;
    const c = new AbortController();
    const audited: Decision[] = [];
    // The quota phase is where the time went: it answers allow, but only after the deadline.
    const quota: QuotaPhase = { charge: () => (c.abort(), Promise.resolve({ allowed: true, headers: {} })) };
    const p = new DecisionPipeline({ snapshot: () => snapshot, clock: () => NOW, quota, audit: { record: (d) => (audited.push(d), Promise.resolve()) } });
    const d = await p.check(agency, { signal: c.signal });
    assert.equal(d.allowed, false);
    assert.equal(d.code, 'DEADLINE_EXCEEDED');
    assert.equal(audited[0]?.allowed, false);
  });

  test('a deny decided after the deadline is recorded as the deadline deny the proxy gave the client', async () => {
    const snapshot = compileValid(standardFiles([key.publicJwk])).snapshot;
    const c = new AbortController();
    const quota: QuotaPhase = { charge: () => (c.abort(), Promise.resolve({ allowed: false, code: 'QUOTA_EXCEEDED', reason: 'over', headers: {} })) };
    const d = await new DecisionPipeline({ snapshot: () => snapshot, clock: () => NOW, quota }).check(agency, { signal: c.signal });
    assert.equal(d.code, 'DEADLINE_EXCEEDED');
    assert.match(d.reason, /phases decided QUOTA_EXCEEDED: over/);
  });

  test('a stalled JWKS fetch is cut off by the deadline; quotas are never charged', async () => {
    jwks.hold = true;
    const snapshot = compileValid(standardFiles(jwks.url)).snapshot;
    const quota = counting();
    const c = new AbortController();
    jwks.onFetch = () => c.abort();
    const p = new DecisionPipeline({ snapshot: () => snapshot, clock: () => NOW, quota });
    const token = await mintToken(key, { now: NOW, sub: 'c-1', claims: { amr: ['mfa'] } });
    const d = await p.check(checkRequest({ host: HOSTS.records, path: '/v1/citizens/c-1/records', headers: bearer(token) }), { signal: c.signal });
    jwks.onFetch = undefined;
    jwks.release();
    assert.equal(d.code, 'DEADLINE_EXCEEDED', d.reason);
    assert.match(d.reason, /verifying the token/);
    assert.equal(quota.charges, 0);
  });

  test('a quota backend call the deadline outruns is a deadline deny, never onBackendError: allow', async () => {
    const snapshot = compileValid(quotaPolicyYaml({ onBackendError: 'allow' })).snapshot;
    const c = new AbortController();
    // A Redis that answers too late: the deadline fires while the call is in flight.
    const never = (): Promise<ChargeOutcome[]> => (c.abort(), new Promise<ChargeOutcome[]>(() => undefined));
    const slow: QuotaBackend = { name: 'redis', charge: never, peek: never, close: () => Promise.resolve() };
    const p = new DecisionPipeline({ snapshot: () => snapshot, quota: new QuotaEnforcer({ backend: slow }) });
    const d = await p.check(quotaRequest({ apiKey: KEYS.a1 }), { signal: c.signal });
    assert.equal(d.code, 'DEADLINE_EXCEEDED', d.reason);
    assert.match(d.reason, /while charging quotas/);
  });

  test('past the deadline the in-memory backend charges nothing', async () => {
    const backend = new MemoryBackend();
    await assert.rejects(backend.charge([{ key: 'k', cost: 1, algorithm: 'fixed-window', limit: 1, periodMs: 1000, capacity: 1 }], AbortSignal.abort()), DeadlineExceeded);
    const [outcome] = await backend.charge([{ key: 'k', cost: 1, algorithm: 'fixed-window', limit: 1, periodMs: 1000, capacity: 1 }]);
    assert.equal(outcome?.allowed, true, 'the refused charge did not use the only unit');
  });
});
