import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compileYaml } from '../../test/helpers/policies.js';
import { parseDuration } from './duration.js';
import { KeyHasher } from './keys.js';
import { compileQuota, compileRuleQuota, QuotaConfigError } from './model.js';
import { quotaPolicyYaml } from './test-fixtures.js';

void describe('parseDuration', () => {
  const ok: [string, number][] = [['500ms', 500], ['1s', 1000], ['1m', 60_000], ['24h', 86_400_000], ['1h30m', 5_400_000], ['7d', 604_800_000]];
  for (const [text, ms] of ok) void test(`${text} = ${ms} ms`, () => assert.equal(parseDuration(text), ms));
  const bad = ['0s', '0h0m', '', '1', '1w', '-1s', '1.5h', '400d'];
  for (const text of bad) void test(`rejects "${text}"`, () => assert.throws(() => parseDuration(text), Error));
});

void describe('compileQuota rejects bad configuration', () => {
  const cases: [string, Record<string, unknown>, string, RegExp][] = [
    ['zero limit', { limit: 0, per: '1s' }, 'limit', /limit must be an integer between 1/],
    ['negative limit', { limit: -5, per: '1s' }, 'limit', /limit must be/],
    ['fractional limit', { limit: 1.5, per: '1s' }, 'limit', /limit must be/],
    ['zero period', { limit: 5, per: '0s' }, 'per', /greater than zero/],
    ['zero burst', { limit: 5, per: '1s', burst: 0 }, 'burst', /burst must be/],
    ['burst on a window', { limit: 5, per: '1s', algorithm: 'fixed-window', burst: 10 }, 'burst', /only to the token-bucket/],
    ['zero cost', { limit: 5, per: '1s', cost: 0 }, 'cost', /cost must be/],
    ['negative cost', { limit: 5, per: '1s', cost: -1 }, 'cost', /cost must be/],
    ['cost expression of the wrong type', { limit: 5, per: '1s', cost: "'x'" }, 'cost', /must return int/],
    ['key expression of the wrong type', { limit: 5, per: '1s', key: '1 + 1' }, 'key', /must return string/],
    ['limit without per', { limit: 5 }, 'per', /limit and per go together/],
  ];
  for (const [name, fields, field, message] of cases) {
    void test(name, () => {
      assert.throws(
        () => compileQuota({ name: 'q', ...fields } as never),
        (err: unknown) => err instanceof QuotaConfigError && err.field === field && message.test(err.message),
      );
    });
  }
  void test('a reference to a tenant quota may only override cost', () => {
    assert.deepEqual(compileRuleQuota({ name: 'burst' }), { kind: 'tenant', name: 'burst' });
    assert.throws(() => compileRuleQuota({ name: 'burst', algorithm: 'fixed-window' }), /algorithm needs limit and per/);
  });
  void test('defaults: token bucket, capacity = limit, key principal, cost 1, onBackendError deny', () => {
    const q = compileQuota({ name: 'q', limit: 10, per: '1s' });
    assert.deepEqual([q.algorithm, q.capacity, q.key, q.cost, q.onBackendError], ['token-bucket', 10, 'principal', 1, 'deny']);
  });
});

void describe('policy load reports quota problems with their path', () => {
  void test('a zero-length period in a tenant quota', () => {
    const c = compileYaml(quotaPolicyYaml().replace('per: 24h, algorithm: fixed-window, key: tenant, onBackendError', 'per: 0h, algorithm: fixed-window, key: tenant, onBackendError'));
    const p = c.problems.find((e) => e.location.object === 'Tenant q/revenue');
    assert.ok(p, c.problems.map((e) => e.format()).join('\n'));
    assert.equal(p.code, 'POLICY_INVALID');
    assert.equal(p.location.path, '/spec/quotas/0/per');
  });
  void test('a CEL cost that does not type-check in a rule', () => {
    const c = compileYaml(quotaPolicyYaml().replace(`cost: "int(request.headers['x-count'])"`, `cost: "'bulk'"`));
    const p = c.problems.find((e) => e.location.path?.startsWith('/spec/rules/'));
    assert.ok(p, c.problems.map((e) => e.format()).join('\n'));
    assert.equal(p.code, 'POLICY_CEL');
    assert.equal(p.location.path, '/spec/rules/1/quotas/0/cost');
  });
});

void describe('keys', () => {
  const h = new KeyHasher();
  const parts = fc.record({
    namespace: fc.stringMatching(/^[a-z0-9-]{1,12}$/),
    tenant: fc.stringMatching(/^[a-z0-9-]{0,12}$/),
    principalType: fc.constantFrom('consumer', 'agency', 'partner', 'anonymous'),
    scope: fc.constant('t'),
    quota: fc.constantFrom('burst', 'daily'),
    partition: fc.constant('all'),
  });
  void test('different tenants or principal types never share a key', () => {
    fc.assert(
      fc.property(parts, parts, (a, b) => {
        fc.pre(a.namespace !== b.namespace || a.tenant !== b.tenant || a.principalType !== b.principalType);
        return h.key(a) !== h.key({ ...b, quota: a.quota });
      }),
      { numRuns: 2000 },
    );
  });
  void test('every key of one tenant and type shares one Redis Cluster hash tag', () => {
    const base = { namespace: 'ns', tenant: 't', principalType: 'consumer', scope: 't', quota: 'burst' };
    const k1 = h.key({ ...base, partition: h.subjectPartition('alice') });
    const k2 = h.key({ ...base, quota: 'daily', scope: h.ruleScope('ns/p', 'r'), partition: 'all' });
    assert.equal(/\{[^}]+\}/.exec(k1)?.[0], /\{[^}]+\}/.exec(k2)?.[0]);
    assert.doesNotMatch(k1, /alice/);
  });
  void test('a configured hash key changes every pseudonym', () => {
    assert.notEqual(new KeyHasher('secret-a').subjectPartition('alice'), new KeyHasher('secret-b').subjectPartition('alice'));
  });
});
