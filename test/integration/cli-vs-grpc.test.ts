/**
 * The CLI (spawned as a real process) and the gRPC service decide the same way for the same
 * CheckRequests: the shared examples, and the test fixtures with freshly minted tokens.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { JwksServer } from '../helpers/jwks-server.js';
import { generateKey, mintToken } from '../helpers/keys.js';
import { tempPolicyDir, type TempDir } from '../helpers/policies.js';
import { bearer, checkRequest, type RequestSpec } from '../helpers/requests.js';
import { headerMap, httpStatus, startTestServer, type CheckResponse, type TestServer } from '../helpers/server.js';
import { HOSTS, PARTNER_KEY, REVENUE_SPIFFE, standardFiles } from '../helpers/fixtures.js';
import { fromProtoJson } from '../../proto/envoy.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = join(ROOT, 'dist/extauthz/cli/main.js');
const EXAMPLES = join(ROOT, 'examples');

interface Outcome {
  decision: 'allow' | 'deny';
  status: number;
  code: string | null;
  rule: string | null;
}

function runCli(args: string[], stdin?: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(stdin ?? '');
  });
}

async function cliOutcome(policies: string, request: string): Promise<Outcome & { exit: number | null }> {
  const r = await runCli(['check', '--policies', policies, '--request', request]);
  const line = r.stdout.split('\n').find((l) => l.startsWith('{"decision"'));
  assert.ok(line, `no decision line from the CLI (exit ${r.code}): ${r.stderr}`);
  const d = JSON.parse(line) as Outcome;
  return { decision: d.decision, status: d.status, code: d.code, rule: d.rule, exit: r.code };
}

function grpcOutcome(r: CheckResponse): Outcome {
  if (r.okResponse) return { decision: 'allow', status: 200, code: null, rule: headerMap(r.okResponse.headers)['x-portcullis-rule'] ?? null };
  const body = JSON.parse(r.deniedResponse?.body ?? '{}') as { error?: { code?: string } };
  return { decision: 'deny', status: httpStatus(r.deniedResponse?.status?.code), code: body.error?.code ?? null, rule: null };
}

describe('CLI and gRPC agree: examples/', () => {
  let srv: TestServer;
  const files = readdirSync(join(EXAMPLES, 'requests')).filter((f) => f.endsWith('.json'));
  before(async () => {
    srv = await startTestServer(join(EXAMPLES, 'policies'));
  });
  after(() => srv?.close());

  test(`${files.length} example requests`, async () => {
    assert.ok(files.length > 0);
    await Promise.all(
      files.map(async (f) => {
        const path = join(EXAMPLES, 'requests', f);
        const cli = await cliOutcome(join(EXAMPLES, 'policies'), path);
        // The server receives what Envoy would send: the same JSON as a proto message.
        const viaGrpc = grpcOutcome(await srv.check(fromProtoJson('envoy.service.auth.v3.CheckRequest', JSON.parse(readFileSync(path, 'utf8')))));
        assert.deepEqual({ decision: cli.decision, status: cli.status, code: cli.code }, { decision: viaGrpc.decision, status: viaGrpc.status, code: viaGrpc.code }, f);
        if (viaGrpc.decision === 'allow') assert.equal(cli.rule, viaGrpc.rule, f);
        assert.equal(cli.exit, cli.decision === 'allow' ? 0 : 1, f);
      }),
    );
  });
});

describe('CLI and gRPC agree: fixtures with live tokens', () => {
  let jwks: JwksServer;
  let dir: TempDir;
  let reqs: TempDir;
  let srv: TestServer;
  const specs: Record<string, RequestSpec> = {};

  before(async () => {
    const [key, stranger] = await Promise.all([generateKey('ES256'), generateKey('RS256')]);
    jwks = await new JwksServer([key.publicJwk]).start();
    dir = tempPolicyDir(standardFiles(jwks.url));
    reqs = tempPolicyDir();
    srv = await startTestServer(dir.dir);
    const records = (headers: Record<string, string>, id = 'c-1'): RequestSpec => ({ host: HOSTS.records, path: `/v1/citizens/${id}/records`, headers });
    Object.assign(specs, {
      'citizen-own-mfa': records(bearer(await mintToken(key, { sub: 'c-1', claims: { amr: ['mfa'] } }))),
      'citizen-no-mfa': records(bearer(await mintToken(key, { sub: 'c-1' }))),
      'citizen-other': records(bearer(await mintToken(key, { sub: 'c-1', claims: { amr: ['mfa'] } })), 'c-2'),
      'unknown-kid': records(bearer(await mintToken(stranger, { sub: 'c-1' }))),
      'agency-stats': { host: HOSTS.stats, path: '/v1/stats/a', principal: REVENUE_SPIFFE, headers: { 'x-purpose-of-use': 'statistics' } },
      'agency-bad-purpose': { host: HOSTS.stats, path: '/v1/stats/a', principal: REVENUE_SPIFFE, headers: { 'x-purpose-of-use': 'ads' } },
      'spoofed-tenant': { host: HOSTS.stats, path: '/v1/stats/a', headers: { 'x-portcullis-tenant': 'dept-revenue', 'x-purpose-of-use': 'statistics' } },
      partner: { host: HOSTS.open, path: '/v1/datasets/a', headers: { 'x-api-key': PARTNER_KEY } },
      'no-policy': { host: 'nowhere.example' },
      traversal: { host: HOSTS.records, path: '/v1/../admin' },
    } satisfies Record<string, RequestSpec>);
    for (const [name, spec] of Object.entries(specs)) reqs.write(`${name}.json`, JSON.stringify(checkRequest(spec)));
  });

  after(async () => {
    await srv?.close();
    await jwks?.close();
    dir?.remove();
    reqs?.remove();
  });

  test('every request gets the same decision, status, code and rule', async () => {
    const seen = new Set<string>();
    await Promise.all(
      Object.entries(specs).map(async ([name, spec]) => {
        const cli = await cliOutcome(dir.dir, join(reqs.dir, `${name}.json`));
        const viaGrpc = grpcOutcome(await srv.check(checkRequest(spec)));
        assert.deepEqual({ decision: cli.decision, status: cli.status, code: cli.code }, { decision: viaGrpc.decision, status: viaGrpc.status, code: viaGrpc.code }, name);
        if (viaGrpc.decision === 'allow') assert.equal(cli.rule, viaGrpc.rule, name);
        seen.add(viaGrpc.code ?? 'ALLOW');
      }),
    );
    // The set covers allows and several distinct deny codes, so agreement is not trivial.
    for (const code of ['ALLOW', 'MFA_REQUIRED', 'FORBIDDEN', 'INVALID_TOKEN', 'UNAUTHENTICATED', 'NO_POLICY', 'BAD_REQUEST']) assert.ok(seen.has(code), code);
  });

  test('the CLI reads the request from stdin with --request -', async () => {
    const r = await runCli(['check', '--policies', dir.dir, '--request', '-'], JSON.stringify(checkRequest(specs.partner)));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /"decision":"allow"/);
  });

  test('spawned exit codes: 2 for an invalid policy folder and for bad JSON', async () => {
    const broken = tempPolicyDir({ 'p.yaml': 'apiVersion: portcullis.io/v1alpha1\nkind: ApiPolicy\nmetadata: { name: p }\nspec: { hosts: [a.example], rules: [{ name: r, bogus: 1 }] }\n' });
    try {
      const bad = await runCli(['check', '--policies', broken.dir, '--request', join(reqs.dir, 'partner.json')]);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /p\.yaml#1 ApiPolicy default\/p \/spec\/rules\/0 line 4 column \d+: POLICY_SCHEMA: .*unknown field "bogus"/);
      const json = await runCli(['check', '--policies', dir.dir, '--request', '-'], '{ nope');
      assert.equal(json.code, 2);
      assert.match(json.stderr, /not JSON/);
      const help = await runCli(['validate', '--help']);
      assert.equal(help.code, 0);
    } finally {
      broken.remove();
    }
  });
});
