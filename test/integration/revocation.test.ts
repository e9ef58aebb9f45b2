/**
 * Revocation end to end under the real server and the real folder watcher: a token verified and
 * cached by earlier Checks is revoked by editing the tenant's revocation file, and the next Check
 * after the change is denied 401 REVOKED within one second. A malformed list keeps the last good
 * one serving (and is reported in the metrics); a server that never had a good list authenticates
 * none of that tenant's principals.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { generateKey, mintToken, type TestKey } from '../helpers/keys.js';
import { HOSTS, PARTNER_KEY, POLICIES_YAML, tenantsYaml } from '../helpers/fixtures.js';
import { tempPolicyDir, type TempDir } from '../helpers/policies.js';
import { bearer, checkRequest } from '../helpers/requests.js';
import { httpStatus, startTestServer, type CheckResponse, type TestServer } from '../helpers/server.js';

const REF = '\n  revocation: { file: lists/revoked.json }';

function tenants(key: TestKey): string {
  return tenantsYaml([key.publicJwk]).replace('  type: consumer-app', `  type: consumer-app${REF}`).replace('  type: partner', `  type: partner${REF}`);
}

let key: TestKey;
let dir: TempDir;
let srv: TestServer;
let token: string;

const citizen = (t = token): Promise<CheckResponse> => srv.check(checkRequest({ host: HOSTS.records, path: '/v1/citizens/c-1/records', headers: bearer(t) }));
const partner = (): Promise<CheckResponse> => srv.check(checkRequest({ host: HOSTS.open, path: '/v1/datasets/population', headers: { 'x-api-key': PARTNER_KEY } }));
const code = (r: CheckResponse): string => (r.status?.code === grpc.status.OK ? 'OK' : (JSON.parse(r.deniedResponse?.body ?? '{}') as { error?: { code?: string } }).error?.code ?? '?');
const metric = async (re: RegExp): Promise<number> => Number(re.exec((await srv.http('/metrics')).body)?.[1] ?? '0');

/** Checks until `want`, returning the milliseconds from `since`; fails after the limit. */
async function deniedWithin(since: number, check: () => Promise<CheckResponse>, want: string, limitMs = 1000): Promise<number> {
  for (;;) {
    const r = await check();
    const elapsed = performance.now() - since;
    if (code(r) === want) return elapsed;
    assert.ok(elapsed < limitMs, `still ${code(r)} after ${Math.round(elapsed)} ms (want ${want})`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

before(async () => {
  key = await generateKey('ES256');
  token = await mintToken(key, { sub: 'c-1', claims: { amr: ['mfa'], jti: 'jti-0001' } });
  dir = tempPolicyDir({ 'tenants.yaml': tenants(key), 'policies.yaml': POLICIES_YAML });
  dir.write('lists/revoked.json', JSON.stringify({ jti: ['some-other-token'] }));
  srv = await startTestServer(dir.dir, { watch: true });
});

after(async () => {
  await srv?.close();
  dir?.remove();
});

test('a cached verified token revoked in the file is denied 401 REVOKED on a Check within 1 s of the change', async (t) => {
  assert.equal(code(await citizen()), 'OK');
  assert.equal(code(await citizen()), 'OK', 'second Check: served from the verified-token cache');
  const written = performance.now();
  dir.write('lists/revoked.json', JSON.stringify({ jti: ['some-other-token', { id: 'jti-0001', until: '2999-01-01T00:00:00Z' }] }));
  const ms = await deniedWithin(written, citizen, 'REVOKED');
  const r = await citizen();
  assert.equal(httpStatus(r.deniedResponse?.status?.code), 401);
  assert.doesNotMatch(JSON.stringify(r), /jti-0001/, 'the revoked id is never echoed');
  assert.ok(ms < 1000, `${ms} ms`);
  t.diagnostic(`denied ${Math.round(ms)} ms after the file was written`);
  assert.equal(await metric(/portcullis_revocation_denials_total\{tenant="t\/citizen-app",kind="jti"\} (\d+)/), 2);
  // Another token of the same tenant still passes.
  assert.equal(code(await citizen(await mintToken(key, { sub: 'c-1', claims: { amr: ['mfa'], jti: 'jti-0002' } }))), 'OK');
});

test('an API key id revoked in the file: 401 REVOKED within 1 s', async () => {
  assert.equal(code(await partner()), 'OK');
  const written = performance.now();
  dir.write('lists/revoked.json', JSON.stringify({ jti: ['jti-0001'], apiKeys: ['key-1'] }));
  await deniedWithin(written, partner, 'REVOKED');
});

test('a malformed list keeps the last good list serving and is reported; fixing it applies', async () => {
  dir.write('lists/revoked.json', '{"jti": ["jti-0001"], "apiKeys": [');
  const start = performance.now();
  while ((await metric(/portcullis_revocation_sources_failing (\d+)/)) !== 2) {
    assert.ok(performance.now() - start < 2000, 'the broken list is reported for both tenants');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  assert.equal(code(await citizen()), 'REVOKED', 'last good list still serves');
  assert.equal(code(await partner()), 'REVOKED');
  const written = performance.now();
  dir.write('lists/revoked.json', JSON.stringify({ jti: [] }));
  await deniedWithin(written, citizen, 'OK');
  assert.equal(code(await partner()), 'OK');
  assert.equal(await metric(/portcullis_revocation_sources_failing (\d+)/), 0);
});

test('a server that never had a good list authenticates none of the tenant\'s principals', async () => {
  const broken = tempPolicyDir({ 'tenants.yaml': tenants(key), 'policies.yaml': POLICIES_YAML, 'revoked.json': 'not json' });
  broken.write('lists/revoked.json', 'not json');
  const other = await startTestServer(broken.dir);
  try {
    const r = await other.check(checkRequest({ host: HOSTS.records, path: '/v1/citizens/c-1/records', headers: bearer(token) }));
    assert.equal(httpStatus(r.deniedResponse?.status?.code), 401);
    const p = await other.check(checkRequest({ host: HOSTS.open, path: '/v1/datasets/population', headers: { 'x-api-key': PARTNER_KEY } }));
    assert.equal(httpStatus(p.deniedResponse?.status?.code), 401);
  } finally {
    await other.close();
    broken.remove();
  }
});
