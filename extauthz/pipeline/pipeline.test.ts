import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileValid } from '../../test/helpers/policies.js';
import { bearer, checkRequest, type RequestSpec } from '../../test/helpers/requests.js';
import { generateKey, mintToken, type TestKey } from '../../test/helpers/keys.js';
import { HOSTS, PARTNER_KEY, REVENUE_SPIFFE, standardFiles } from '../../test/helpers/fixtures.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import type { Decision } from './decision.js';
import type { QuotaPhase } from './hooks.js';
import { DecisionPipeline, type PipelineDeps } from './pipeline.js';

const NOW = new Date('2026-03-01T12:00:00Z');

let key: TestKey;
let snapshot: PolicySnapshot;

before(async () => {
  key = await generateKey('ES256');
  snapshot = compileValid(standardFiles([key.publicJwk])).snapshot;
});

function pipeline(extra: Partial<PipelineDeps> = {}): DecisionPipeline {
  return new DecisionPipeline({ snapshot: () => snapshot, clock: () => NOW, ...extra });
}

function check(spec: RequestSpec, extra: Partial<PipelineDeps> = {}): Promise<Decision> {
  return pipeline(extra).check(checkRequest(spec));
}

function body(d: Decision): { error: { code: string; message: string; requestId: string } } {
  return JSON.parse(d.body ?? '{}') as { error: { code: string; message: string; requestId: string } };
}

describe('pipeline: decisions end to end (no network)', () => {
  const agency = { host: HOSTS.stats, path: '/v1/stats/income/2025', principal: REVENUE_SPIFFE, headers: { 'x-purpose-of-use': 'statistics' } };
  const cases: [string, () => Promise<RequestSpec>, { allowed: boolean; code: string | null; status: number; rule?: string }][] = [
    ['agency with a declared purpose', async () => agency, { allowed: true, code: null, status: 200, rule: 'agency-aggregates' }],
    ['agency declaring a purpose its tenant does not list', async () => ({ ...agency, headers: { 'x-purpose-of-use': 'marketing' } }), { allowed: false, code: 'PURPOSE_NOT_ALLOWED', status: 403 }],
    // The example condition reads the header: a request without it cannot evaluate it.
    ['agency declaring no purpose', async () => ({ ...agency, headers: {} }), { allowed: false, code: 'CONDITION_ERROR', status: 403 }],
    ['spoofed x-portcullis-tenant without credentials', async () => ({ ...agency, principal: undefined, headers: { 'x-purpose-of-use': 'statistics', 'x-portcullis-tenant': 'dept-revenue', 'x-portcullis-principal': REVENUE_SPIFFE } }), { allowed: false, code: 'UNAUTHENTICATED', status: 401 }],
    ['spoofed XFCC for a tenant that does not trust it', async () => ({ ...agency, principal: undefined, headers: { 'x-purpose-of-use': 'statistics', 'x-forwarded-client-cert': `URI=${REVENUE_SPIFFE}` } }), { allowed: false, code: 'UNAUTHENTICATED', status: 401 }],
    ['citizen reads own record with MFA', async () => ({ host: HOSTS.records, path: '/v1/citizens/c-1/records', headers: bearer(await mintToken(key, { now: NOW, sub: 'c-1', claims: { amr: ['mfa'] } })) }), { allowed: true, code: null, status: 200, rule: 'citizen-own-record' }],
    ['citizen without MFA', async () => ({ host: HOSTS.records, path: '/v1/citizens/c-1/records', headers: bearer(await mintToken(key, { now: NOW, sub: 'c-1' })) }), { allowed: false, code: 'MFA_REQUIRED', status: 401 }],
    ['citizen reads another record', async () => ({ host: HOSTS.records, path: '/v1/citizens/c-2/records', headers: bearer(await mintToken(key, { now: NOW, sub: 'c-1', claims: { amr: ['mfa'] } })) }), { allowed: false, code: 'FORBIDDEN', status: 403 }],
    ['expired token', async () => ({ host: HOSTS.records, path: '/v1/citizens/c-1/records', headers: bearer(await mintToken(key, { now: NOW, iatOffset: -7200, expOffset: -3600 })) }), { allowed: false, code: 'INVALID_TOKEN', status: 401 }],
    ['wrong audience', async () => ({ host: HOSTS.records, path: '/v1/citizens/c-1/records', headers: bearer(await mintToken(key, { now: NOW, aud: 'other' })) }), { allowed: false, code: 'UNKNOWN_ISSUER', status: 401 }],
    ['not a bearer token', async () => ({ host: HOSTS.records, path: '/v1/citizens/c-1/records', headers: { authorization: 'Basic dXNlcjpwYXNz' } }), { allowed: false, code: 'INVALID_TOKEN', status: 401 }],
    ['partner with an API key', async () => ({ host: HOSTS.open, path: '/v1/datasets/population', headers: { 'x-api-key': PARTNER_KEY } }), { allowed: true, code: null, status: 200, rule: 'partner-read-only' }],
    ['partner with an unknown API key', async () => ({ host: HOSTS.open, path: '/v1/datasets/population', headers: { 'x-api-key': 'guess' } }), { allowed: false, code: 'INVALID_API_KEY', status: 401 }],
    ['anonymous public endpoint on a wildcard host', async () => ({ host: `eu.${HOSTS.open}:8443`, path: '/healthz' }), { allowed: true, code: null, status: 200, rule: 'public-health' }],
    ['denied admin path (deny rule, anonymous)', async () => ({ host: HOSTS.records, path: '/admin/users' }), { allowed: false, code: 'FORBIDDEN', status: 403, rule: 'no-admin' }],
    ['unknown host', async () => ({ host: 'nowhere.example', path: '/' }), { allowed: false, code: 'NO_POLICY', status: 403 }],
    ['context extension routes to a named policy', async () => ({ host: 'nowhere.example', path: '/healthz', contextExtensions: { 'portcullis.io/policy': 't/open' } }), { allowed: true, code: null, status: 200, rule: 'public-health' }],
    ['context extension naming an unknown policy', async () => ({ host: HOSTS.open, path: '/healthz', contextExtensions: { 'portcullis.io/policy': 't/nope' } }), { allowed: false, code: 'NO_POLICY', status: 403 }],
    ['path traversal', async () => ({ host: HOSTS.records, path: '/v1/citizens/../admin' }), { allowed: false, code: 'BAD_REQUEST', status: 400 }],
    ['encoded slash', async () => ({ host: HOSTS.records, path: '/v1/citizens/a%2Fb/records' }), { allowed: false, code: 'BAD_REQUEST', status: 400 }],
  ];
  for (const [name, make, want] of cases) {
    test(name, async () => {
      const d = await check(await make());
      assert.deepEqual({ allowed: d.allowed, code: d.code, status: d.status }, { allowed: want.allowed, code: want.code, status: want.status }, d.reason);
      if (want.rule) assert.equal(d.rule, want.rule);
    });
  }

  test('a CheckRequest without attributes.request.http is a BAD_REQUEST decision', async () => {
    const d = await pipeline().check({ attributes: {} });
    assert.equal(d.allowed, false);
    assert.equal(d.code, 'BAD_REQUEST');
    const d2 = await pipeline().check(null as never);
    assert.equal(d2.code, 'BAD_REQUEST');
  });

  test('no snapshot loaded yet: every request is denied', async () => {
    const d = await new DecisionPipeline({ snapshot: () => undefined }).check(checkRequest({ host: HOSTS.open, path: '/healthz' }));
    assert.equal(d.code, 'NO_POLICY');
  });
});

describe('pipeline: shape', () => {
  test('allow: identity headers set, client x-portcullis-* and the API key removed', async () => {
    const d = await check({ host: HOSTS.open, path: '/v1/datasets/x', headers: { 'x-api-key': PARTNER_KEY, 'x-portcullis-tenant': 'forged', 'X-Portcullis-Principal': 'forged', 'x-portcullis-admin': 'true' } });
    assert.equal(d.allowed, true);
    assert.equal(d.headers['x-portcullis-tenant'], 'partner-acme');
    assert.equal(d.headers['x-portcullis-principal'], 'key-1');
    assert.equal(d.headers['x-portcullis-principal-type'], 'partner');
    assert.equal(d.headers['x-portcullis-policy'], 't/open');
    assert.equal(d.headers['x-portcullis-rule'], 'partner-read-only');
    assert.equal(d.headers['x-portcullis-request-id'], d.requestId);
    // Client copies are either removed or overwritten by the value Portcullis sets (never kept).
    assert.ok(d.removeHeaders.includes('x-api-key'));
    assert.ok(d.removeHeaders.includes('x-portcullis-admin'));
    for (const name of ['x-portcullis-tenant', 'x-portcullis-principal', 'x-portcullis-admin']) {
      assert.ok(d.removeHeaders.includes(name) || (d.headers[name] !== undefined && d.headers[name] !== 'forged'), name);
    }
  });

  test('allow for an anonymous caller marks the principal type and sets no principal', async () => {
    const d = await check({ host: HOSTS.open, path: '/healthz', headers: { 'x-request-id': 'req-42' } });
    assert.equal(d.headers['x-portcullis-principal-type'], 'anonymous');
    assert.equal(d.headers['x-portcullis-principal'], undefined);
    assert.equal(d.requestId, 'req-42');
  });

  test('401: WWW-Authenticate, JSON body with code and request id, nothing internal', async () => {
    const token = await mintToken(key, { now: NOW, aud: 'other-api' });
    const d = await check({ host: HOSTS.records, path: '/v1/citizens/c-1/records', headers: { ...bearer(token), 'x-request-id': 'req-401' } });
    assert.equal(d.status, 401);
    assert.match(d.headers['www-authenticate'] ?? '', /^Bearer realm="portcullis"/);
    assert.equal(d.headers['content-type'], 'application/json');
    const b = body(d);
    assert.deepEqual(Object.keys(b.error).sort(), ['code', 'message', 'requestId']);
    assert.equal(b.error.code, 'UNKNOWN_ISSUER');
    assert.equal(b.error.requestId, 'req-401');
    for (const secret of [token, 'other-api', 'citizen-app', 't/records']) assert.ok(!d.body!.includes(secret), `body leaks ${secret}`);
  });

  test('MFA_REQUIRED carries the insufficient_user_authentication challenge', async () => {
    const d = await check({ host: HOSTS.records, path: '/v1/citizens/c-1/records', headers: bearer(await mintToken(key, { now: NOW, sub: 'c-1' })) });
    assert.match(d.headers['www-authenticate'] ?? '', /insufficient_user_authentication/);
  });

  test('403 has no WWW-Authenticate and does not echo the condition', async () => {
    const d = await check({ host: HOSTS.stats, path: '/v1/stats/x', principal: REVENUE_SPIFFE, headers: {} });
    assert.equal(d.status, 403);
    assert.equal(d.headers['www-authenticate'], undefined);
    assert.ok(!d.body!.includes('tenant.purposes'));
  });

  test('a purpose the tenant does not list: 403 PURPOSE_NOT_ALLOWED, the value echoed nowhere', async () => {
    const d = await check({ host: HOSTS.stats, path: '/v1/stats/x', principal: REVENUE_SPIFFE, headers: { 'x-purpose-of-use': 'marketing-xyz' } });
    assert.equal(d.status, 403);
    assert.equal(d.code, 'PURPOSE_NOT_ALLOWED');
    for (const text of [d.body!, d.reason]) assert.ok(!text.includes('marketing-xyz'));
  });
});

describe('pipeline: failures fail closed', () => {
  test('an unexpected error in a phase denies with INTERNAL and is reported', async () => {
    const seen: unknown[] = [];
    const quota: QuotaPhase = { charge: () => Promise.reject(new TypeError('boom: secret detail')) };
    const d = await check({ host: HOSTS.open, path: '/healthz' }, { quota, onInternalError: (err) => seen.push(err) });
    assert.equal(d.allowed, false);
    assert.equal(d.code, 'INTERNAL');
    assert.equal(d.status, 500);
    assert.ok(!d.body!.includes('secret detail'));
    assert.equal(seen.length, 1);
  });

  test('an audit failure turns an allow into AUDIT_UNAVAILABLE (auditFailure: deny)', async () => {
    const d = await check({ host: HOSTS.open, path: '/healthz' }, { audit: { record: () => Promise.reject(new Error('disk full')) } });
    assert.equal(d.code, 'AUDIT_UNAVAILABLE');
    assert.equal(d.status, 503);
  });

  test('the audit sink sees every decision', async () => {
    const recorded: Decision[] = [];
    await check({ host: HOSTS.open, path: '/healthz' }, { audit: { record: (d) => (recorded.push(d), Promise.resolve()) } });
    await check({ host: 'nowhere.example', path: '/' }, { audit: { record: (d) => (recorded.push(d), Promise.resolve()) } });
    assert.deepEqual(recorded.map((d) => d.allowed), [true, false]);
  });
});
