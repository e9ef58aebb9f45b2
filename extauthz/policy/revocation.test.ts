import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileYaml } from '../../test/helpers/policies.js';
import { bearer, checkRequest } from '../../test/helpers/requests.js';
import { generateKey, mintToken, type TestKey } from '../../test/helpers/keys.js';
import { HOSTS, NS, PARTNER_KEY, REVENUE_SPIFFE, POLICIES_YAML, tenantsYaml } from '../../test/helpers/fixtures.js';
import { DecisionPipeline } from '../pipeline/pipeline.js';
import { parseRevocationList, revokedKind, REVOCATION_LIMITS, RevocationListError } from './revocation.js';

const NOW = new Date('2026-03-01T12:00:00Z');
const LATER = '2026-03-01T12:01:00Z';

describe('revocation list parsing: strict, bounded, never quoting an id', () => {
  const bad: [string, string, RegExp][] = [
    ['not JSON', '{jti: [', /not valid JSON/],
    ['an array at the top', '["a"]', /JSON object/],
    ['an unknown top-level field', '{"jtis": ["a"]}', /unknown top-level field/],
    ['a list that is not a list', '{"jti": "a"}', /jti must be a list/],
    ['an entry with an unknown field', '{"sub": [{"id": "a", "reason": "x"}]}', /unknown field/],
    ['an id that is not a string', '{"sub": [{"id": 7}]}', /id must be a string/],
    ['an empty id', '{"sub": [""]}', /must not be empty/],
    ['an id over the length bound', JSON.stringify({ jti: ['x'.repeat(REVOCATION_LIMITS.idBytes + 1)] }), /longer than/],
    ['until not RFC 3339', '{"jti": [{"id": "secret-jti", "until": "tomorrow"}]}', /RFC 3339/],
    ['until without a zone', '{"jti": [{"id": "secret-jti", "until": "2026-12-31T00:00:00"}]}', /RFC 3339/],
    ['too many entries', JSON.stringify({ jti: Array.from({ length: REVOCATION_LIMITS.entries + 1 }, (_, i) => `j${i}`) }), /more than/],
    ['too large', JSON.stringify({ jti: ['x'.repeat(REVOCATION_LIMITS.bytes)] }), /larger than/],
  ];
  for (const [name, text, message] of bad) {
    test(`refused: ${name}`, () => {
      assert.throws(() => parseRevocationList(text, 'test'), (err: unknown) => {
        assert.ok(err instanceof RevocationListError);
        assert.match(err.message, message);
        assert.doesNotMatch(err.message, /secret-jti/);
        return true;
      });
    });
  }

  test('ids, objects and expiries: the later expiry of a duplicate wins', () => {
    const r = parseRevocationList(JSON.stringify({
      jti: ['j1', { id: 'j2', until: LATER }, { id: 'gone', until: '2026-03-01T11:59:59Z' }],
      sub: [{ id: 's1', until: LATER }, { id: 's1', until: '2026-03-02T00:00:00+02:00' }],
      apiKeys: ['key-1'],
    }), 'test');
    assert.equal(r.size, 5);
    assert.equal(r.jti.get('j1'), Infinity);
    assert.equal(revokedKind(r, { method: 'jwt', subject: 'x', claims: { jti: 'gone' } }, NOW.getTime()), undefined, 'expired before now: ignored');
    assert.equal(r.sub.get('s1'), Date.parse('2026-03-01T22:00:00Z'));
  });

  test('lookups: the subject for any method, the jti for JWTs, the key id for API keys; expiry at lookup time', () => {
    const r = parseRevocationList(JSON.stringify({ jti: [{ id: 'j1', until: LATER }], sub: ['s1'], apiKeys: ['key-1'] }), 'test');
    const now = NOW.getTime();
    assert.equal(revokedKind(r, { method: 'jwt', subject: 'someone', claims: { jti: 'j1' } }, now), 'jti');
    assert.equal(revokedKind(r, { method: 'jwt', subject: 'someone', claims: { jti: 'j1' } }, Date.parse(LATER)), undefined);
    assert.equal(revokedKind(r, { method: 'jwt', subject: 's1', claims: { jti: undefined } }, now), 'sub');
    assert.equal(revokedKind(r, { method: 'mtls', subject: 's1', claims: { jti: undefined } }, now), 'sub');
    assert.equal(revokedKind(r, { method: 'mtls', subject: 'someone', claims: { jti: 'j1' } }, now), undefined);
    assert.equal(revokedKind(r, { method: 'api-key', subject: 'key-1', claims: { jti: undefined } }, now), 'api-key');
    assert.equal(revokedKind(r, { method: 'api-key', subject: 's1', claims: { jti: undefined } }, now), undefined);
  });
});

/** The standard tenants with a revocation source on the consumer app, the agency and the partner. */
function tenantsWith(keys: TestKey, list: object | string | undefined): Record<string, string> {
  const ref = '\n  revocation: { configMapRef: { name: revoked, key: list.json } }';
  let tenants = tenantsYaml([keys.publicJwk])
    .replace('  type: consumer-app', `  type: consumer-app${ref}`)
    .replace('  type: partner', `  type: partner${ref}`)
    .replace(/(name: dept-revenue[^]*?  type: agency)/, `$1${ref}`);
  if (list !== undefined) {
    const text = typeof list === 'string' ? list : JSON.stringify(list);
    tenants += `---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: revoked, namespace: ${NS} }\ndata:\n  list.json: ${JSON.stringify(text)}\n`;
  }
  return { 'tenants.yaml': tenants, 'policies.yaml': POLICIES_YAML };
}

describe('revocation in the decision pipeline', () => {
  let key: TestKey;
  before(async () => {
    key = await generateKey('ES256');
  });

  const citizen = async (claims: Record<string, unknown>): Promise<ReturnType<typeof checkRequest>> =>
    checkRequest({ host: HOSTS.records, path: '/v1/citizens/c-1/records', headers: bearer(await mintToken(key, { now: NOW, sub: 'c-1', claims: { amr: ['mfa'], ...claims } })) });

  test('revoked jti, subject, SPIFFE subject and API key id: 401 REVOKED with the principal on record; others pass', async () => {
    const c = compileYaml(tenantsWith(key, { jti: [{ id: 'j-bad', until: LATER }], sub: [REVENUE_SPIFFE], apiKeys: ['key-1'] }));
    assert.deepEqual(c.problems.map((p) => p.format()), []);
    let now = NOW;
    const p = new DecisionPipeline({ snapshot: () => c.snapshot, clock: () => now });
    const revoked = await p.check(await citizen({ jti: 'j-bad' }));
    assert.deepEqual([revoked.status, revoked.code, revoked.audit.revoked, revoked.principal?.tenant], [401, 'REVOKED', 'jti', 'citizen-app']);
    assert.doesNotMatch(revoked.reason + (revoked.body ?? ''), /j-bad/);
    assert.match(revoked.headers['www-authenticate'] ?? '', /invalid_token/);
    assert.equal((await p.check(await citizen({ jti: 'j-good' }))).allowed, true);
    const agency = await p.check(checkRequest({ host: HOSTS.stats, path: '/v1/stats/x', principal: REVENUE_SPIFFE, headers: { 'x-purpose-of-use': 'statistics' } }));
    assert.deepEqual([agency.code, agency.audit.revoked], ['REVOKED', 'sub']);
    const partner = await p.check(checkRequest({ host: HOSTS.open, path: '/v1/datasets/population', headers: { 'x-api-key': PARTNER_KEY } }));
    assert.deepEqual([partner.code, partner.audit.revoked], ['REVOKED', 'api-key']);
    // The jti entry expires: the same token is accepted again, no reload needed.
    now = new Date(LATER);
    assert.equal((await p.check(await citizen({ jti: 'j-bad' }))).allowed, true);
  });

  test('a missing or malformed source refuses the tenant at /spec/revocation (no good list ever: its principals do not authenticate)', async () => {
    for (const [list, message] of [[undefined, /ConfigMap t\/revoked not found/], ['{"jti": 1}', /jti must be a list/]] as const) {
      const c = compileYaml(tenantsWith(key, list));
      const problem = c.tenantProblems.get(`${NS}/citizen-app`)?.[0];
      assert.ok(problem, 'the tenant is refused');
      assert.equal(problem.location.path, '/spec/revocation');
      assert.match(problem.message, message);
      const d = await new DecisionPipeline({ snapshot: () => c.snapshot, clock: () => NOW }).check(await citizen({ jti: 'j-any' }));
      assert.deepEqual([d.allowed, d.status], [false, 401]);
    }
  });

  test('revocation.file outside folder mode is refused', () => {
    const c = compileYaml({ 't.yaml': tenantsWith(key, {})['tenants.yaml']!.replace('configMapRef: { name: revoked, key: list.json }', 'file: revoked.json') });
    assert.match(c.tenantProblems.get(`${NS}/citizen-app`)?.[0]?.message ?? '', /only with a policy folder/);
  });
});
