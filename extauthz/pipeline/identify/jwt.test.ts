import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PortcullisError } from '../../errors.js';
import { JwksCache, type TenantDirectory } from '../../policy/tenants.js';
import { JwksServer } from '../../../test/helpers/jwks-server.js';
import { generateKey, hmacWithPublicKey, ISSUER, AUDIENCE, mintToken, unsecuredToken, type MintOptions, type TestKey } from '../../../test/helpers/keys.js';
import { compileValid } from '../../../test/helpers/policies.js';
import { NS, standardFiles } from '../../../test/helpers/fixtures.js';
import { JwtIdentifier } from './jwt.js';

const NOW = new Date('2026-03-01T12:00:00Z');

function rejects(code: string, reason?: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof PortcullisError, `expected PortcullisError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    if (reason) assert.match(err.message, reason);
    return true;
  };
}

describe('JWT with an inline JWKS', () => {
  let rs: TestKey;
  let es: TestKey;
  let ed: TestKey;
  let stranger: TestKey;
  let dir: TenantDirectory;

  before(async () => {
    [rs, es, ed, stranger] = await Promise.all([generateKey('RS256'), generateKey('ES256'), generateKey('EdDSA'), generateKey('ES256')]);
    dir = compileValid(standardFiles([rs.publicJwk, es.publicJwk, ed.publicJwk])).snapshot.tenants.get(NS)!;
  });

  const identify = (token: string, now = NOW): Promise<unknown> => new JwtIdentifier().identify(token, dir, now);

  for (const alg of ['RS256', 'ES256', 'EdDSA'] as const) {
    test(`a valid ${alg} token identifies a consumer of the citizen-app tenant`, async () => {
      const key = { RS256: rs, ES256: es, EdDSA: ed }[alg];
      const p = await new JwtIdentifier().identify(await mintToken(key, { now: NOW, sub: 'c-1', claims: { amr: ['mfa'] } }), dir, NOW);
      assert.equal(p.type, 'consumer');
      assert.equal(p.tenant.name, 'citizen-app');
      assert.equal(p.subject, 'c-1');
      assert.equal(p.method, 'jwt');
      assert.equal(p.mfa, true);
    });
  }

  test('MFA: acr from requiredAcr counts; no acr/amr does not', async () => {
    const jwt = new JwtIdentifier();
    assert.equal((await jwt.identify(await mintToken(es, { now: NOW, claims: { acr: 'urn:loa:high' } }), dir, NOW)).mfa, true);
    assert.equal((await jwt.identify(await mintToken(es, { now: NOW, claims: { acr: 'urn:loa:low', amr: ['pwd'] } }), dir, NOW)).mfa, false);
  });

  const bad: [string, (k: { rs: TestKey; es: TestKey; stranger: TestKey }) => Promise<string> | string, string, RegExp?][] = [
    ['alg none', () => unsecuredToken({ iss: ISSUER, aud: AUDIENCE, sub: 'x', exp: NOW.getTime() / 1000 + 60 }), 'INVALID_TOKEN', /algorithm none/],
    ['HS256 forged with the public key as secret', (k) => hmacWithPublicKey(k.rs, { iss: ISSUER, aud: AUDIENCE, sub: 'x', exp: NOW.getTime() / 1000 + 60 }), 'INVALID_TOKEN', /HS256/],
    ['expired', (k) => mintToken(k.es, { now: NOW, iatOffset: -7200, expOffset: -3600 }), 'INVALID_TOKEN', /expired/],
    ['expired beyond the clock skew', (k) => mintToken(k.es, { now: NOW, iatOffset: -600, expOffset: -31 }), 'INVALID_TOKEN', /expired/],
    ['nbf in the future', (k) => mintToken(k.es, { now: NOW, nbfOffset: 600 }), 'INVALID_TOKEN', /nbf/],
    ['iat in the future', (k) => mintToken(k.es, { now: NOW, iatOffset: 600 }), 'INVALID_TOKEN', /future/],
    ['no exp', (k) => mintToken(k.es, { now: NOW, expOffset: null }), 'INVALID_TOKEN', /exp/],
    ['wrong audience', (k) => mintToken(k.es, { now: NOW, aud: 'another-api' }), 'UNKNOWN_ISSUER'],
    ['wrong issuer', (k) => mintToken(k.es, { now: NOW, iss: 'https://evil.example' }), 'UNKNOWN_ISSUER'],
    ['unknown kid', (k) => mintToken(k.stranger, { now: NOW }), 'INVALID_TOKEN', /no key matches/],
    ['known kid, signed by another key', (k) => mintToken(k.stranger, { now: NOW, kid: k.es.kid }), 'INVALID_TOKEN', /signature/],
    ['algorithm not allowed by the tenant (PS256 not listed)', () => 'eyJhbGciOiJQUzI1NiJ9.' + Buffer.from(JSON.stringify({ iss: ISSUER, aud: AUDIENCE })).toString('base64url') + '.c2ln', 'INVALID_TOKEN'],
    ['garbage', () => 'not.a.jwt', 'INVALID_TOKEN', /malformed/],
    ['no subject', (k) => mintToken(k.es, { now: NOW, sub: '' }), 'INVALID_TOKEN', /sub/],
  ];
  for (const [name, make, code, reason] of bad) {
    test(`rejects: ${name}`, async () => {
      await assert.rejects(async () => identify(await make({ rs, es, stranger })), rejects(code, reason));
    });
  }

  test('a token within the clock skew is accepted', async () => {
    const token = await mintToken(es, { now: NOW, iatOffset: -600, expOffset: -10 });
    assert.equal(((await identify(token)) as { subject: string }).subject, 'citizen-1');
  });

  test('a cached token is rejected once it has expired', async () => {
    const jwt = new JwtIdentifier();
    const token = await mintToken(es, { now: NOW, expOffset: 60 });
    await jwt.identify(token, dir, NOW);
    await assert.rejects(jwt.identify(token, dir, new Date(NOW.getTime() + 120_000)), rejects('INVALID_TOKEN', /expired/));
  });

  test('an oversized token is rejected before any parsing', async () => {
    await assert.rejects(identify('a'.repeat(20_000)), rejects('INVALID_TOKEN', /too large/));
  });
});

describe('JWT with a remote JWKS on loopback', () => {
  let key: TestKey;
  let rotated: TestKey;
  let unknown: TestKey;
  let server: JwksServer;

  before(async () => {
    [key, rotated, unknown] = await Promise.all([generateKey('ES256'), generateKey('RS256'), generateKey('ES256')]);
    server = await new JwksServer([key.publicJwk]).start();
  });
  after(() => server.close());

  test('keys are fetched once; unknown kids refetch at most once per cooldown', async (t) => {
    // A fresh cache per test; the real clock drives jose's cooldown, so Date.now is moved by hand.
    let clock = Date.now();
    t.mock.method(Date, 'now', () => clock);
    const dir = compileValid(standardFiles(server.url), new JwksCache()).snapshot.tenants.get(NS)!;
    const jwt = new JwtIdentifier();
    const mint = (k: TestKey, o: MintOptions = {}): Promise<string> => mintToken(k, { now: new Date(clock), ...o });
    const start = server.fetches;

    await jwt.identify(await mint(key), dir, new Date(clock));
    assert.equal(server.fetches - start, 1, 'first use fetches the key set');
    await jwt.identify(await mint(key, { sub: 'other' }), dir, new Date(clock));
    assert.equal(server.fetches - start, 1, 'known kid: served from the cached set');

    // Within the cooldown an unknown kid is rejected without a fetch, however often it is tried.
    for (let i = 0; i < 3; i++) await assert.rejects(jwt.identify(await mint(unknown, { sub: `u${i}` }), dir, new Date(clock)), rejects('INVALID_TOKEN'));
    assert.equal(server.fetches - start, 1);

    // After the cooldown an unknown kid triggers exactly one refetch, and is still rejected.
    clock += 31_000;
    await assert.rejects(jwt.identify(await mint(unknown), dir, new Date(clock)), rejects('INVALID_TOKEN', /no key matches/));
    assert.equal(server.fetches - start, 2);

    // Key rotation: after another cooldown the new kid is found by its one refetch.
    server.keys = [key.publicJwk, rotated.publicJwk];
    clock += 31_000;
    const p = await jwt.identify(await mint(rotated), dir, new Date(clock));
    assert.equal(p.tenant.name, 'citizen-app');
    assert.equal(server.fetches - start, 3);
  });

  test('an unreachable JWKS rejects the token (fail closed)', async () => {
    const dead = new JwksServer([key.publicJwk]);
    await dead.start();
    const url = dead.url;
    await dead.close();
    const dir = compileValid(standardFiles(url), new JwksCache()).snapshot.tenants.get(NS)!;
    await assert.rejects(new JwtIdentifier().identify(await mintToken(key, { now: new Date() }), dir, new Date()), rejects('INVALID_TOKEN'));
  });
});

