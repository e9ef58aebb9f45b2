/**
 * The real server over real gRPC: startServer on free loopback ports, a JWKS on a loopback HTTP
 * server, keys generated here. Every bad input gets a denied CheckResponse (never an RPC error).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { JwksServer } from '../helpers/jwks-server.js';
import { generateKey, mintToken, unsecuredToken, type TestKey, ISSUER, AUDIENCE } from '../helpers/keys.js';
import { tempPolicyDir, type TempDir } from '../helpers/policies.js';
import { bearer, checkRequest, type RequestSpec } from '../helpers/requests.js';
import { headerMap, httpStatus, startTestServer, type CheckResponse, type TestServer } from '../helpers/server.js';
import { makeCert } from '../helpers/certs.js';
import { HEALTH_SPIFFE, HOSTS, PARTNER_KEY, REVENUE_SPIFFE, standardFiles } from '../helpers/fixtures.js';
import { fromStruct, type ProtoStruct } from '../../extauthz/server/struct.js';

let jwks: JwksServer;
let key: TestKey;
let stranger: TestKey;
let dir: TempDir;
let srv: TestServer;

before(async () => {
  [key, stranger] = await Promise.all([generateKey('RS256'), generateKey('ES256')]);
  jwks = await new JwksServer([key.publicJwk]).start();
  dir = tempPolicyDir(standardFiles(jwks.url));
  srv = await startTestServer(dir.dir);
});

after(async () => {
  await srv?.close();
  await jwks?.close();
  dir?.remove();
});

function denied(r: CheckResponse): { grpc: number | undefined; http: number; code: string; requestId: string; headers: Record<string, string> } {
  assert.ok(r.deniedResponse, `expected a denied response, got ${JSON.stringify(r)}`);
  const body = JSON.parse(r.deniedResponse.body ?? '') as { error: { code: string; requestId: string } };
  return { grpc: r.status?.code, http: httpStatus(r.deniedResponse.status?.code), code: body.error.code, requestId: body.error.requestId, headers: headerMap(r.deniedResponse.headers) };
}

const records = (headers: Record<string, string>): RequestSpec => ({ host: HOSTS.records, path: '/v1/citizens/c-1/records', headers });
const stats: RequestSpec = { host: HOSTS.stats, path: '/v1/stats/income/2025', headers: { 'x-purpose-of-use': 'statistics' } };

describe('gRPC Check: bad input is denied with a clear code', () => {
  const now = (): Date => new Date();
  const cases: [string, () => Promise<unknown>, { code: string; http: number; grpc: number }][] = [
    ['no attributes.request.http', async () => ({ attributes: { source: { principal: REVENUE_SPIFFE } } }), { code: 'BAD_REQUEST', http: 400, grpc: grpc.status.INVALID_ARGUMENT }],
    ['an empty CheckRequest', async () => ({}), { code: 'BAD_REQUEST', http: 400, grpc: grpc.status.INVALID_ARGUMENT }],
    ['an oversized header', async () => checkRequest({ ...stats, headers: { 'x-big': 'x'.repeat(20_000) } }), { code: 'BAD_REQUEST', http: 400, grpc: grpc.status.INVALID_ARGUMENT }],
    ['a garbage header name', async () => checkRequest({ ...stats, headers: { 'bad header\u0001': 'v' } }), { code: 'BAD_REQUEST', http: 400, grpc: grpc.status.INVALID_ARGUMENT }],
    ['a header with CRLF', async () => checkRequest({ ...stats, headers: { 'x-a': 'a\r\nb' } }), { code: 'BAD_REQUEST', http: 400, grpc: grpc.status.INVALID_ARGUMENT }],
    ['a JWT with alg none', async () => checkRequest(records(bearer(unsecuredToken({ iss: ISSUER, aud: AUDIENCE, sub: 'c-1', exp: Math.floor(Date.now() / 1000) + 600, amr: ['mfa'] }, key.kid)))), { code: 'INVALID_TOKEN', http: 401, grpc: grpc.status.UNAUTHENTICATED }],
    ['an expired token', async () => checkRequest(records(bearer(await mintToken(key, { now: now(), sub: 'c-1', iatOffset: -7200, expOffset: -3600 })))), { code: 'INVALID_TOKEN', http: 401, grpc: grpc.status.UNAUTHENTICATED }],
    ['a future token (nbf)', async () => checkRequest(records(bearer(await mintToken(key, { now: now(), sub: 'c-1', nbfOffset: 3600 })))), { code: 'INVALID_TOKEN', http: 401, grpc: grpc.status.UNAUTHENTICATED }],
    ['a future token (iat)', async () => checkRequest(records(bearer(await mintToken(key, { now: now(), sub: 'c-1', iatOffset: 3600, expOffset: 7200 })))), { code: 'INVALID_TOKEN', http: 401, grpc: grpc.status.UNAUTHENTICATED }],
    ['a wrong audience', async () => checkRequest(records(bearer(await mintToken(key, { now: now(), sub: 'c-1', aud: 'other-api' })))), { code: 'UNKNOWN_ISSUER', http: 401, grpc: grpc.status.UNAUTHENTICATED }],
    ['an unknown kid', async () => checkRequest(records(bearer(await mintToken(stranger, { now: now(), sub: 'c-1' })))), { code: 'INVALID_TOKEN', http: 401, grpc: grpc.status.UNAUTHENTICATED }],
    ['a spoofed x-portcullis-tenant', async () => checkRequest({ ...stats, headers: { ...stats.headers, 'x-portcullis-tenant': 'dept-revenue', 'x-portcullis-principal-type': 'agency' } }), { code: 'UNAUTHENTICATED', http: 401, grpc: grpc.status.UNAUTHENTICATED }],
    ['a spoofed XFCC for a tenant that does not trust it', async () => checkRequest({ ...stats, headers: { ...stats.headers, 'x-forwarded-client-cert': `By=spiffe://c2g/ns/gw;URI=${REVENUE_SPIFFE}` } }), { code: 'UNAUTHENTICATED', http: 401, grpc: grpc.status.UNAUTHENTICATED }],
    ['an unknown API key', async () => checkRequest({ host: HOSTS.open, path: '/v1/datasets/x', headers: { 'x-api-key': 'guess' } }), { code: 'INVALID_API_KEY', http: 401, grpc: grpc.status.UNAUTHENTICATED }],
    ['a host without a policy', async () => checkRequest({ host: 'nowhere.example' }), { code: 'NO_POLICY', http: 403, grpc: grpc.status.PERMISSION_DENIED }],
    ['path traversal', async () => checkRequest({ host: HOSTS.records, path: '/v1/citizens/%2e%2e/admin' }), { code: 'BAD_REQUEST', http: 400, grpc: grpc.status.INVALID_ARGUMENT }],
  ];
  for (const [name, make, want] of cases) {
    test(name, async () => {
      const d = denied(await srv.check((await make()) as Record<string, unknown>));
      assert.deepEqual({ code: d.code, http: d.http, grpc: d.grpc }, want);
      assert.ok(d.requestId.length > 0);
      assert.equal(d.headers['content-type'], 'application/json');
      if (want.http === 401) assert.match(d.headers['www-authenticate'] ?? '', /^Bearer realm="portcullis"/);
    });
  }
});

describe('gRPC Check: allowed requests', () => {
  test('a valid RS256 token from the loopback JWKS, with MFA', async () => {
    const r = await srv.check(checkRequest(records({ ...bearer(await mintToken(key, { sub: 'c-1', claims: { amr: ['mfa'] } })), 'x-portcullis-tenant': 'forged' })));
    assert.equal(r.status?.code, grpc.status.OK);
    const headers = headerMap(r.okResponse?.headers);
    assert.equal(headers['x-portcullis-tenant'], 'citizen-app');
    assert.equal(headers['x-portcullis-principal'], 'c-1');
    assert.equal(headers['x-portcullis-rule'], 'citizen-own-record');
    const meta = fromStruct(r.dynamicMetadata as ProtoStruct) as { portcullis: { rule: string; tenant: string } };
    assert.equal(meta.portcullis.rule, 'citizen-own-record');
    assert.equal(meta.portcullis.tenant, 'citizen-app');
  });

  test('an agency by source.principal (SPIFFE)', async () => {
    const r = await srv.check(checkRequest({ ...stats, principal: REVENUE_SPIFFE }));
    assert.equal(r.status?.code, grpc.status.OK);
    assert.equal(headerMap(r.okResponse?.headers)['x-portcullis-tenant'], 'dept-revenue');
  });

  test('an agency by source.certificate (PEM with a URI SAN, made by openssl)', async () => {
    const cert = makeCert('/CN=reporting/O=Revenue', [`URI:${REVENUE_SPIFFE}`]);
    const r = await srv.check(checkRequest({ ...stats, certificate: cert.urlEncoded }));
    assert.equal(r.status?.code, grpc.status.OK);
    assert.equal(headerMap(r.okResponse?.headers)['x-portcullis-principal'], REVENUE_SPIFFE);
  });

  test('an agency through XFCC, for the tenant that trusts it', async () => {
    const r = await srv.check(checkRequest({ ...stats, headers: { ...stats.headers, 'x-forwarded-client-cert': `By=spiffe://c2g/ns/gw;URI=${HEALTH_SPIFFE}` } }));
    assert.equal(r.status?.code, grpc.status.OK);
    assert.equal(headerMap(r.okResponse?.headers)['x-portcullis-tenant'], 'dept-health');
  });

  test('a partner by API key; the key is removed upstream', async () => {
    const r = await srv.check(checkRequest({ host: HOSTS.open, path: '/v1/datasets/population', headers: { 'x-api-key': PARTNER_KEY } }));
    assert.equal(r.status?.code, grpc.status.OK);
    assert.ok(r.okResponse?.headersToRemove?.includes('x-api-key'));
  });

  test('the headerMap form Envoy sends (raw_value bytes) is read too', async () => {
    const r = await srv.check({
      attributes: { source: { principal: REVENUE_SPIFFE }, request: { http: { method: 'GET', host: HOSTS.stats, path: '/v1/stats/x', headerMap: { headers: [{ key: 'x-purpose-of-use', rawValue: Buffer.from('statistics') }] } } } },
    });
    assert.equal(r.status?.code, grpc.status.OK);
  });
});

describe('health, readiness and metrics', () => {
  test('health is SERVING and /readyz is 200 once the snapshot is loaded', async () => {
    assert.equal(await srv.health(), 'SERVING');
    assert.equal(await srv.health('envoy.service.auth.v3.Authorization'), 'SERVING');
    assert.equal((await srv.http('/readyz')).status, 200);
    assert.equal((await srv.http('/healthz')).status, 200);
    assert.equal((await srv.http('/nope')).status, 404);
  });

  test('/metrics counts decisions by code', async () => {
    await srv.check(checkRequest({ host: 'nowhere.example' }));
    const m = await srv.http('/metrics');
    assert.equal(m.status, 200);
    assert.match(m.body, /portcullis_checks_total\{decision="deny",code="NO_POLICY"\} [1-9]/);
    assert.match(m.body, /portcullis_phase_duration_seconds_count\{phase="parse"\} [1-9]/);
    assert.match(m.body, /portcullis_policies 3/);
  });
});
