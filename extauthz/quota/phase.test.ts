import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { compileYaml } from '../../test/helpers/policies.js';
import { DecisionPipeline } from '../pipeline/pipeline.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import type { ChargeItem, ChargeOutcome, QuotaBackend } from './backend.js';
import { QuotaBackendError } from './backend.js';
import { MemoryBackend } from './memory-backend.js';
import { QuotaMetrics } from './metrics.js';
import { QuotaEnforcer } from './phase.js';
import { CelBudgetExceededError, type CelProgram } from '../policy/cel.js';
import { AGENCY_SPIFFE, KEYS, quotaPolicyYaml, quotaRequest, type QuotaFixtureOptions } from './test-fixtures.js';

const T0 = 1_800_000_000_000;

function snapshotOf(o: QuotaFixtureOptions = {}): PolicySnapshot {
  const c = compileYaml(quotaPolicyYaml(o));
  assert.deepEqual(c.problems.map((p) => p.format()), []);
  return c.snapshot;
}

/** Records every key charged, so tests can inspect them. */
class Spy implements QuotaBackend {
  readonly name = 'memory' as const;
  readonly keys: string[] = [];
  constructor(private readonly inner: QuotaBackend) {}
  charge(items: readonly ChargeItem[]): Promise<ChargeOutcome[]> {
    this.keys.push(...items.map((i) => i.key));
    return this.inner.charge(items);
  }
  peek(items: readonly ChargeItem[]): Promise<ChargeOutcome[]> {
    return this.inner.peek(items);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

class DownBackend implements QuotaBackend {
  readonly name = 'redis' as const;
  charge(): Promise<ChargeOutcome[]> {
    return Promise.reject(new QuotaBackendError('connection refused'));
  }
  peek(): Promise<ChargeOutcome[]> {
    return this.charge();
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function setup(o: QuotaFixtureOptions = {}, backend?: QuotaBackend): { pipeline: DecisionPipeline; spy: Spy; registry: Registry; set: (s: PolicySnapshot) => void } {
  let snap = snapshotOf(o);
  const spy = new Spy(backend ?? new MemoryBackend({ clock: () => T0 }));
  const registry = new Registry();
  const quota = new QuotaEnforcer({ backend: spy, metrics: new QuotaMetrics(registry) });
  const pipeline = new DecisionPipeline({ snapshot: () => snap, quota });
  return { pipeline, spy, registry, set: (s) => (snap = s) };
}

void describe('quota phase through the pipeline', () => {
  void test('over quota: 429, QUOTA_EXCEEDED, Retry-After and the draft RateLimit headers', async () => {
    const { pipeline } = setup();
    for (let i = 0; i < 3; i++) {
      const d = await pipeline.check(quotaRequest({ apiKey: KEYS.a1 }));
      assert.equal(d.allowed, true, d.reason);
      assert.match(d.responseHeaders['ratelimit']!, new RegExp(`^"burst";r=${2 - i};t=\\d+, "app-total";r=${999 - i};t=\\d+$`));
      assert.equal(d.responseHeaders['ratelimit-policy'], '"burst";q=3;w=60, "app-total";q=1000;w=86400');
    }
    const d = await pipeline.check(quotaRequest({ apiKey: KEYS.a1 }));
    assert.deepEqual([d.allowed, d.status, d.code], [false, 429, 'QUOTA_EXCEEDED']);
    assert.equal(d.headers['retry-after'], '20'); // 3 per minute: one token every 20 s
    assert.match(d.headers['ratelimit']!, /^"burst";r=0;/);
    assert.match(d.body!, /QUOTA_EXCEEDED/);
  });

  void test('isolation: same key id in two tenants, and consumers vs agencies, never share a counter', async () => {
    const { pipeline, spy } = setup({ burstLimit: 1, agencyDaily: 1 });
    assert.equal((await pipeline.check(quotaRequest({ apiKey: KEYS.a1 }))).allowed, true);
    assert.equal((await pipeline.check(quotaRequest({ apiKey: KEYS.a1 }))).code, 'QUOTA_EXCEEDED');
    // app-b's "user1" has the same subject but its own tenant: a fresh allowance.
    assert.equal((await pipeline.check(quotaRequest({ apiKey: KEYS.b1 }))).allowed, true);
    assert.equal((await pipeline.check(quotaRequest({ apiKey: KEYS.a2 }))).allowed, true);
    assert.equal((await pipeline.check(quotaRequest({ spiffe: AGENCY_SPIFFE }))).allowed, true);
    assert.equal((await pipeline.check(quotaRequest({ spiffe: AGENCY_SPIFFE }))).code, 'QUOTA_EXCEEDED');
    const keys = new Set(spy.keys);
    const tags = new Set([...keys].map((k) => /\{([^}]+)\}/.exec(k)?.[1] ?? ''));
    assert.equal(tags.size, 3, 'one hash tag per tenant and principal type');
    assert.ok([...tags].some((t) => t.endsWith('.agency')) && [...tags].some((t) => t.endsWith('.consumer')));
    for (const k of keys) assert.doesNotMatch(k, /user1|user2|spiffe|revenue|app-a|app-b/, `no clear text in ${k}`);
  });

  void test('a rule naming a quota the tenant does not define fails closed with QUOTA_UNAVAILABLE', async () => {
    const { pipeline, registry } = setup();
    const d = await pipeline.check(quotaRequest({ spiffe: AGENCY_SPIFFE, path: '/v1/missing' }));
    assert.deepEqual([d.allowed, d.status, d.code], [false, 503, 'QUOTA_UNAVAILABLE']);
    assert.match(d.reason, /tenant revenue does not define/);
    assert.match(await registry.metrics(), /portcullis_quota_decisions_total\{quota="burst",outcome="undefined_quota"\} 1/);
  });

  void test('cost from CEL: a bulk request costs more, and a cost beyond the bucket is refused', async () => {
    const { pipeline } = setup({ burstLimit: 5 });
    const bulk = (n: number) => pipeline.check(quotaRequest({ apiKey: KEYS.a1, method: 'POST', path: '/v1/bulk', headers: { 'x-count': String(n) } }));
    assert.equal((await bulk(4)).allowed, true);
    const d = await bulk(2);
    assert.equal(d.code, 'QUOTA_EXCEEDED');
    assert.equal((await bulk(1)).allowed, true);
    assert.match((await bulk(6)).reason, /cost of this request exceeds quota burst/);
  });

  void test('a CEL expression failure denies rather than skipping the quota', async () => {
    const { pipeline } = setup();
    const d = await pipeline.check(quotaRequest({ apiKey: KEYS.a1, method: 'POST', path: '/v1/bulk', headers: { 'x-count': 'many' } }));
    assert.equal(d.code, 'QUOTA_UNAVAILABLE');
    assert.match(d.reason, /cost expression failed/);
  });

  void test('a cost expression over its runtime budget denies with CONDITION_BUDGET, not as a backend outage', async () => {
    const snap = snapshotOf();
    const rule = snap.byKey.get('q/quota-api')!.rules.find((r) => r.name === 'consumer-bulk')!;
    const ref = rule.quotas![0]! as { cost?: unknown };
    const program = ref.cost as CelProgram;
    // The meter's verdict (cel-meter) as the program would throw it past 100,000 steps or 5 ms.
    ref.cost = { ...program, evaluate: () => { throw new CelBudgetExceededError('evaluation exceeded 100000 steps'); } };
    const registry = new Registry();
    const pipeline = new DecisionPipeline({ snapshot: () => snap, quota: new QuotaEnforcer({ backend: new MemoryBackend({ clock: () => T0 }), metrics: new QuotaMetrics(registry) }) });
    const d = await pipeline.check(quotaRequest({ apiKey: KEYS.a1, method: 'POST', path: '/v1/bulk', headers: { 'x-count': '1' } }));
    assert.deepEqual([d.allowed, d.code], [false, 'CONDITION_BUDGET']);
    assert.match(d.reason, /quota burst: cost expression exceeded its runtime budget/);
    assert.match(await registry.metrics(), /portcullis_quota_decisions_total\{quota="burst",outcome="expression_budget"\} 1/);
  });

  void test('inline rule quota keyed by a CEL expression (source address)', async () => {
    const { pipeline } = setup();
    const at = (ip: string) => pipeline.check(quotaRequest({ apiKey: KEYS.a1, path: '/v1/inline/x', sourceIp: ip }));
    assert.equal((await at('192.0.2.1')).allowed, true);
    assert.equal((await at('192.0.2.1')).allowed, true);
    assert.equal((await at('192.0.2.1')).code, 'QUOTA_EXCEEDED');
    assert.equal((await at('192.0.2.2')).allowed, true);
  });

  void test('state survives a policy reload', async () => {
    const { pipeline, set } = setup({ burstLimit: 1 });
    assert.equal((await pipeline.check(quotaRequest({ apiKey: KEYS.a1 }))).allowed, true);
    set(snapshotOf({ burstLimit: 1 }));
    assert.equal((await pipeline.check(quotaRequest({ apiKey: KEYS.a1 }))).code, 'QUOTA_EXCEEDED');
  });
});

void describe('backend unavailable', () => {
  const cases = [
    { onBackendError: 'deny' as const, allowed: false, code: 'QUOTA_UNAVAILABLE', outcome: 'backend_error_denied' },
    { onBackendError: 'allow' as const, allowed: true, code: null, outcome: 'backend_error_allowed' },
  ];
  for (const c of cases) {
    void test(`onBackendError ${c.onBackendError}`, async () => {
      const snap = snapshotOf({ onBackendError: c.onBackendError });
      const registry = new Registry();
      const lines: string[] = [];
      const log = { warn: (_: object, m: string) => lines.push(m), info: (_: object, m: string) => lines.push(m) };
      const pipeline = new DecisionPipeline({ snapshot: () => snap, quota: new QuotaEnforcer({ backend: new DownBackend(), metrics: new QuotaMetrics(registry), log }) });
      for (let i = 0; i < 3; i++) {
        const d = await pipeline.check(quotaRequest({ spiffe: AGENCY_SPIFFE }));
        assert.deepEqual([d.allowed, d.code], [c.allowed, c.code]);
      }
      const text = await registry.metrics();
      assert.match(text, new RegExp(`portcullis_quota_decisions_total\\{quota="daily",outcome="${c.outcome}"\\} 3`));
      assert.match(text, /portcullis_quota_backend_errors_total\{backend="redis"\} 3/);
      assert.equal(lines.length, 1, 'one log line per outage, not per request');
    });
  }
});
