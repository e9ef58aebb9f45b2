/**
 * Token introspection (RFC 7662) and OIDC discovery against a real HTTP server on 127.0.0.1:
 * active, inactive, timeout, HTTP 500, malformed JSON, cache bounded by exp and by cacheSeconds
 * (injected clock, no sleeps), failure mode allow vs deny, client_secret_basic; discovery with
 * the issuer checked exactly, and its introspection_endpoint used.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { compileYaml } from '../../../test/helpers/policies.js';
import { bearer, checkRequest } from '../../../test/helpers/requests.js';
import { generateKey, mintToken, type TestKey } from '../../../test/helpers/keys.js';
import { JwksCache } from '../../policy/tenants.js';
import type { PolicySnapshot } from '../../policy/snapshot.js';
import { DecisionPipeline } from '../pipeline.js';
import { DeadlineExceeded } from '../deadline.js';
import { IntrospectionClient } from './introspection.js';
import { MAX_TOKEN_BYTES } from './jwt.js';
import type { Decision } from '../decision.js';

const T0 = new Date('2026-03-01T12:00:00Z');
const sec = (d: Date): number => Math.floor(d.getTime() / 1000);
const ISS = 'https://idp.test.example';
const SECRET = 'intro-secret:with/odd chars';

type Answer = { status?: number; body?: string; hang?: boolean };

/** The IdP: discovery, JWKS and introspection on one loopback port. */
class Idp {
  server: Server | undefined;
  port = 0;
  introspections = 0;
  discoveries = 0;
  lastAuth = '';
  lastBody = '';
  issuer = ISS;
  withIntrospectionEndpoint = true;
  keys: unknown[] = [];
  answer: (token: string) => Answer = () => ({ body: '{"active":false}' });
  private hung: ServerResponse[] = [];
  private onHang: (() => void) | undefined;

  /** Resolves when the next request that hangs has arrived. */
  nextHang(): Promise<void> {
    return new Promise((resolve) => (this.onHang = resolve));
  }

  /** Answers every hanging request with `body`. */
  release(body: string): void {
    for (const r of this.hung.splice(0)) r.writeHead(200, { 'content-type': 'application/json' }).end(body);
  }

  get base(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server!.address() as AddressInfo).port;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let body = '';
    for await (const chunk of req) body += String(chunk);
    if (req.url === '/.well-known/openid-configuration') {
      this.discoveries++;
      const doc: Record<string, unknown> = { issuer: this.issuer, jwks_uri: `${this.base}/jwks` };
      if (this.withIntrospectionEndpoint) doc.introspection_endpoint = `${this.base}/introspect`;
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(doc));
    }
    if (req.url === '/jwks') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: this.keys }));
    if (req.url !== '/introspect' || req.method !== 'POST') return void res.writeHead(404).end();
    this.introspect(body, req, res);
  }

  private introspect(body: string, req: IncomingMessage, res: ServerResponse): void {
    this.introspections++;
    this.lastAuth = req.headers.authorization ?? '';
    this.lastBody = body;
    const a = this.answer(new URLSearchParams(body).get('token') ?? '');
    if (a.hang) {
      this.hung.push(res);
      return void this.onHang?.();
    }
    res.writeHead(a.status ?? 200, { 'content-type': 'application/json' }).end(a.body ?? '');
  }

  async stop(): Promise<void> {
    for (const r of this.hung) r.destroy();
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }
}

const idp = new Idp();
let key: TestKey;

before(async () => {
  key = await generateKey('ES256');
  idp.keys = [key.publicJwk];
  await idp.start();
});

after(async () => {
  await idp.stop();
});

const POLICY = `apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: api, namespace: t }
spec:
  hosts: [api.example]
  rules:
    - name: consumers
      methods: [GET]
      principals: { types: [consumer] }
`;

function tenant(introspection: string, jwt = ''): string {
  return `apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: app, namespace: t }
spec:
  type: consumer-app
  identity:
${jwt}    introspection:
      clientId: "portcullis client"
      clientSecretRef: { name: intro, key: secret }
${introspection.replace(/^/gm, '      ')}
---
apiVersion: v1
kind: Secret
metadata: { name: intro, namespace: t }
stringData:
  secret: ${JSON.stringify(SECRET)}
`;
}

function compile(yaml: string): PolicySnapshot {
  const c = compileYaml({ 'tenant.yaml': yaml, 'policy.yaml': POLICY }, new JwksCache());
  assert.deepEqual(c.problems.map((p) => p.format()), []);
  return c.snapshot;
}

/** A pipeline over the snapshot whose clock the test moves. */
function pipeline(snapshot: PolicySnapshot): { check: (token: string) => Promise<Decision>; clock: { now: Date } } {
  const clock = { now: T0 };
  const p = new DecisionPipeline({ snapshot: () => snapshot, clock: () => clock.now });
  return { clock, check: (token) => p.check(checkRequest({ host: 'api.example', path: '/x', headers: bearer(token) })) };
}

const outcome = (d: Decision): [number, string | null] => [d.status, d.code];

describe('introspection of opaque tokens (real loopback endpoint)', () => {
  const answers: Record<string, Answer> = {
    'tok-active': { body: JSON.stringify({ active: true, sub: 'u-1', exp: sec(T0) + 3600, amr: ['mfa'] }) },
    'tok-short': { body: JSON.stringify({ active: true, sub: 'u-2', exp: sec(T0) + 5 }) },
    'tok-inactive': { body: '{"active":false}' },
    'tok-500': { status: 500, body: '{"error":"boom"}' },
    'tok-malformed': { body: '{"active": tru' },
    'tok-no-active': { body: '{"sub":"u-3"}' },
    'tok-hang': { hang: true },
  };
  let snap: PolicySnapshot;
  // The hang case needs a short timeout; the answering cases a long one, or a loaded machine
  // turns a loopback answer into INTROSPECTION_UNAVAILABLE.
  let hangSnap: PolicySnapshot;
  before(() => {
    idp.answer = (t) => answers[t] ?? { body: '{"active":false}' };
    snap = compile(tenant(`endpoint: http://127.0.0.1:${idp.port}/introspect\ncacheSeconds: 60\ntimeoutMs: 5000`));
    hangSnap = compile(tenant(`endpoint: http://127.0.0.1:${idp.port}/introspect\ncacheSeconds: 60\ntimeoutMs: 200`));
  });

  test('active: allowed as the introspected subject, authenticated with client_secret_basic', async () => {
    const { check } = pipeline(snap);
    const d = await check('tok-active');
    assert.deepEqual(outcome(d), [200, null], d.reason);
    assert.equal(d.principal?.subject, 'u-1');
    assert.equal(d.principal?.method, 'opaque');
    const [id, secret] = Buffer.from(idp.lastAuth.replace(/^Basic /, ''), 'base64').toString().split(':').map(decodeURIComponent);
    assert.deepEqual([id, secret], ['portcullis client', SECRET]);
    assert.equal(new URLSearchParams(idp.lastBody).get('token'), 'tok-active');
  });

  const failures: [string, [number, string]][] = [
    ['tok-inactive', [401, 'TOKEN_INACTIVE']],
    ['tok-500', [503, 'INTROSPECTION_UNAVAILABLE']],
    ['tok-malformed', [503, 'INTROSPECTION_UNAVAILABLE']],
    ['tok-no-active', [503, 'INTROSPECTION_UNAVAILABLE']],
    ['tok-hang', [503, 'INTROSPECTION_UNAVAILABLE']],
  ];
  for (const [token, want] of failures) {
    test(`${token}: ${want.join(' ')}`, async () => {
      const d = await pipeline(token === 'tok-hang' ? hangSnap : snap).check(token);
      assert.deepEqual(outcome(d), want, d.reason);
      if (token === 'tok-hang') assert.match(d.reason, /within 200 ms/);
    });
  }

  test("concurrent Checks of one token share one request, and one caller's deadline does not fail the others", async () => {
    const t = compile(tenant(`endpoint: http://127.0.0.1:${idp.port}/introspect\ncacheSeconds: 0\ntimeoutMs: 5000`)).tenants.get('t')!.opaque[0]!;
    const client = new IntrospectionClient();
    const n = idp.introspections;
    const arrived = idp.nextHang();
    const late = new AbortController();
    const first = client.introspect('tok-hang', t, T0.getTime(), late.signal);
    const second = client.introspect('tok-hang', t, T0.getTime());
    await arrived;
    late.abort();
    await assert.rejects(first, DeadlineExceeded);
    idp.release('{"active":true,"sub":"u-9"}');
    assert.equal((await second)?.['sub'], 'u-9');
    assert.equal(idp.introspections, n + 1);
  });

  test('failures are not cached; answers are, no longer than cacheSeconds', async () => {
    const { check, clock } = pipeline(snap);
    const n = idp.introspections;
    await check('tok-500');
    await check('tok-500');
    assert.equal(idp.introspections, n + 2, 'a failure asks again');
    assert.deepEqual(outcome(await check('tok-active')), [200, null]);
    const cached = idp.introspections;
    clock.now = new Date(T0.getTime() + 59_000);
    assert.deepEqual(outcome(await check('tok-active')), [200, null]);
    assert.equal(idp.introspections, cached, 'within cacheSeconds: from the cache');
    clock.now = new Date(T0.getTime() + 61_000);
    assert.deepEqual(outcome(await check('tok-active')), [200, null]);
    assert.equal(idp.introspections, cached + 1, 'after cacheSeconds: asked again');
  });

  test('the cache never outlives the token: exp in 5 s, cacheSeconds 60', async () => {
    const { check, clock } = pipeline(snap);
    assert.deepEqual(outcome(await check('tok-short')), [200, null]);
    const n = idp.introspections;
    clock.now = new Date(T0.getTime() + 4_000);
    assert.deepEqual(outcome(await check('tok-short')), [200, null]);
    assert.equal(idp.introspections, n);
    clock.now = new Date(T0.getTime() + 6_000);
    assert.deepEqual(outcome(await check('tok-short')), [401, 'TOKEN_INACTIVE'], 'past exp: asked again, and the stale answer is refused');
    assert.equal(idp.introspections, n + 1);
  });

  test('a revoked introspected jti is denied REVOKED', async () => {
    const yaml = tenant(`endpoint: http://127.0.0.1:${idp.port}/introspect`).replace('  type: consumer-app', '  type: consumer-app\n  revocation: { configMapRef: { name: rev, key: l } }')
      + `---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: rev, namespace: t }\ndata:\n  l: '{"sub": ["u-1"]}'\n`;
    assert.deepEqual(outcome(await pipeline(compile(yaml)).check('tok-active')), [401, 'REVOKED']);
  });
});

describe('introspection of verified JWTs (mode jwt): failure mode per tenant', () => {
  const jwtBlock = (keys: string): string => `    jwt:\n      issuer: ${ISS}\n      audiences: [api]\n      ${keys}\n`;
  let good: string;
  let revokedAtIdp: string;
  before(async () => {
    good = await mintToken(key, { now: T0, iss: ISS, aud: 'api', sub: 'j-1' });
    revokedAtIdp = await mintToken(key, { now: T0, iss: ISS, aud: 'api', sub: 'j-2' });
  });

  for (const onError of ['deny', 'allow'] as const) {
    test(`onError: ${onError}`, async () => {
      const snap = compile(tenant(`endpoint: http://127.0.0.1:${idp.port}/introspect\nmode: jwt\nonError: ${onError}\ncacheSeconds: 0`, jwtBlock(`jwks: ${JSON.stringify({ keys: [key.publicJwk] })}`)));
      const { check } = pipeline(snap);
      idp.answer = (t) => (t === good ? { body: '{"active":true}' } : { body: '{"active":false}' });
      assert.deepEqual(outcome(await check(good)), [200, null]);
      assert.deepEqual(outcome(await check(revokedAtIdp)), [401, 'TOKEN_INACTIVE']);
      idp.answer = () => ({ status: 500 });
      assert.deepEqual(outcome(await check(good)), onError === 'deny' ? [503, 'INTROSPECTION_UNAVAILABLE'] : [200, null]);
      // An opaque token for a jwt-mode tenant is not introspected: it is a malformed JWT.
      assert.deepEqual(outcome(await check('opaque-token')), [401, 'INVALID_TOKEN']);
    });
  }
});

describe('hostile introspection answers and tokens', () => {
  const jwt = (): string => `    jwt:\n      issuer: ${ISS}\n      audiences: [api]\n      jwks: ${JSON.stringify({ keys: [key.publicJwk] })}\n`;
  const cases: [string, string, [number, string | null]][] = [
    ['active for this audience and issuer', JSON.stringify({ active: true, sub: 'u-1', aud: ['other', 'api'], iss: ISS }), [200, null]],
    ['active, neither aud nor iss named (RFC 7662 makes both optional)', JSON.stringify({ active: true, sub: 'u-1' }), [200, null]],
    ['active, but issued for another API', JSON.stringify({ active: true, sub: 'u-1', aud: 'payments' }), [401, 'INVALID_TOKEN']],
    ['active, aud not a string or list of strings', JSON.stringify({ active: true, sub: 'u-1', aud: 7 }), [401, 'INVALID_TOKEN']],
    ['active, by another issuer', JSON.stringify({ active: true, sub: 'u-1', iss: 'https://evil.example' }), [401, 'INVALID_TOKEN']],
    ['active without a subject', JSON.stringify({ active: true }), [401, 'INVALID_TOKEN']],
    ['active with a non-string subject', JSON.stringify({ active: true, sub: 42 }), [401, 'INVALID_TOKEN']],
  ];
  for (const [name, body, want] of cases) {
    test(name, async () => {
      idp.answer = () => ({ body });
      const snap = compile(tenant(`endpoint: http://127.0.0.1:${idp.port}/introspect\nmode: both\ncacheSeconds: 0`, jwt()));
      const d = await pipeline(snap).check('opaque-xyz');
      assert.deepEqual(outcome(d), want, d.reason);
    });
  }

  // The header limit answers first (400); identify's own token bound stays behind it.
  test('a token over the size limit is refused before any introspection', async () => {
    const snap = compile(tenant(`endpoint: http://127.0.0.1:${idp.port}/introspect\ncacheSeconds: 0`));
    const n = idp.introspections;
    const d = await pipeline(snap).check('x'.repeat(MAX_TOKEN_BYTES + 1));
    assert.deepEqual(outcome(d), [400, 'BAD_REQUEST'], d.reason);
    assert.equal(idp.introspections, n);
  });
});

describe('OIDC discovery (real loopback document)', () => {
  test('issuerUrl: the keys come from the discovered jwks_uri, the introspection endpoint from the document', async () => {
    idp.issuer = ISS;
    idp.withIntrospectionEndpoint = true;
    const snap = compile(tenant('mode: both', `    jwt:\n      issuer: ${ISS}\n      audiences: [api]\n      issuerUrl: ${idp.base}\n`));
    idp.answer = () => ({ body: JSON.stringify({ active: true, sub: 'o-1', exp: sec(T0) + 60 }) });
    const { check } = pipeline(snap);
    const token = await mintToken(key, { now: T0, iss: ISS, aud: 'api', sub: 'j-9' });
    const n = idp.introspections;
    assert.deepEqual(outcome(await check(token)), [200, null]);
    assert.equal(idp.introspections, n + 1, 'the discovered introspection_endpoint was asked');
    assert.deepEqual(outcome(await check('opaque-abc')), [200, null]);
  });

  test('an issuer mismatch is refused (fail closed), and not re-fetched on every Check', async () => {
    idp.issuer = 'https://evil.example';
    const snap = compile(tenant(`endpoint: http://127.0.0.1:${idp.port}/introspect\nmode: jwt\nonError: allow`, `    jwt:\n      issuer: ${ISS}\n      audiences: [api]\n      issuerUrl: ${idp.base}/\n`));
    const { check } = pipeline(snap);
    const token = await mintToken(key, { now: T0, iss: ISS, aud: 'api' });
    const n = idp.discoveries;
    const d = await check(token);
    assert.deepEqual(outcome(d), [401, 'INVALID_TOKEN']);
    assert.match(d.reason, /another issuer/);
    await check(token);
    assert.equal(idp.discoveries, n + 1, 'a failed discovery is retried at most every 5 s');
    idp.issuer = ISS;
  });

  test('two tenants of a namespace introspecting opaque tokens: the newer is refused (POLICY_CONFLICT)', () => {
    const one = tenant(`endpoint: http://127.0.0.1:${idp.port}/introspect`);
    const two = one.replace('name: app, namespace: t }', 'name: app2, namespace: t, creationTimestamp: "2026-02-01T00:00:00Z" }').split('---')[0]!;
    const c = compileYaml({ 'a.yaml': one.replace('name: app, namespace: t }', 'name: app, namespace: t, creationTimestamp: "2026-01-01T00:00:00Z" }'), 'b.yaml': two, 'policy.yaml': POLICY });
    const problem = c.tenantProblems.get('t/app2')?.[0];
    assert.equal(problem?.code, 'POLICY_CONFLICT');
    assert.match(problem?.message ?? '', /introspect opaque/);
    assert.equal(c.tenantProblems.has('t/app'), false);
  });

  test('https is required except on loopback', () => {
    const c = compileYaml({ 'tenant.yaml': tenant('endpoint: http://idp.example/introspect'), 'policy.yaml': POLICY });
    assert.match(c.tenantProblems.get('t/app')?.[0]?.message ?? '', /must use https/);
  });
});
