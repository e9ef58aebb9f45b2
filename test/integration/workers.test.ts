/**
 * `portcullis serve --workers 2`, the real CLI in a child process: connections spread over both
 * workers (each writes its own audit chain), one memory quota hammered over many connections
 * admits exactly its limit, readiness and /metrics cover every worker, a policy change reaches
 * every worker, and SIGTERM drains and seals every chain.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet } from 'jose';
import { SigningKey } from '../../extauthz/audit/keys.js';
import { verifyFiles } from '../../extauthz/audit/verify-files.js';
import { AGENCY_SPIFFE, quotaPolicyYaml, quotaRequest } from '../../extauthz/quota/test-fixtures.js';
import { clients, MAIN, startServe, type CheckClient } from '../helpers/serve-process.js';

const LIMIT = 150;
const CONNECTIONS = 16;

function check(c: CheckClient, path = '/v1/items/1'): Promise<number> {
  return new Promise((resolve, reject) => c.Check(quotaRequest({ spiffe: AGENCY_SPIFFE, path }), (err, res) => (err ? reject(err) : resolve(res.status?.code ?? -1))));
}

function decisions(file: string): { requestId?: string; code?: string | null; decision?: string }[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').flatMap((l) => {
    try {
      const e = JSON.parse(l) as { type?: string; decision?: string; code?: string | null };
      return e.type === 'decision' ? [e] : [];
    } catch {
      return [];
    }
  });
}

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith(name)).reduce((sum, l) => sum + Number(l.split(' ').pop()), 0);
}

void test('serve --workers 2: exact quota across workers, a chain per worker, aggregated metrics, policy changes everywhere, sealed on SIGTERM', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-workers-'));
  try {
    const policies = join(dir, 'policies');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(policies);
    writeFileSync(join(policies, 'quota.yaml'), quotaPolicyYaml({ agencyDaily: LIMIT }));
    const keyFile = join(dir, 'audit-key.pem');
    writeFileSync(keyFile, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const file = join(dir, 'audit.jsonl');
    const serve = await startServe(['--policies', policies, '--workers', '2', '--audit-file', file, '--audit-key-file', keyFile]);
    assert.equal((await fetch(`http://127.0.0.1:${serve.httpPort}/readyz`)).status, 200);

    // 2 × LIMIT Checks over CONNECTIONS connections: exactly LIMIT pass, whatever worker took them.
    const cs = clients(serve.grpcPort, CONNECTIONS);
    const codes = await Promise.all(Array.from({ length: 2 * LIMIT }, (_, i) => check(cs[i % CONNECTIONS]!)));
    assert.equal(codes.filter((c) => c === 0).length, LIMIT, 'allowed');
    assert.equal(codes.filter((c) => c !== 0).length, LIMIT, 'denied');

    // Both workers served (the kernel spread the connections), each into its own file and chain.
    const perWorker = [0, 1].map((i) => decisions(join(dir, `audit-w${i}.jsonl`)));
    assert.ok(perWorker[0]!.length > 0 && perWorker[1]!.length > 0, `decisions per worker: ${perWorker.map((d) => d.length).join(', ')}`);
    assert.equal(perWorker[0]!.length + perWorker[1]!.length, 2 * LIMIT);
    assert.equal(await metric(serve.httpPort, 'portcullis_checks_total{'), 2 * LIMIT, 'metrics aggregate both workers');

    // A policy change reaches every worker: the path is refused on every connection afterwards.
    writeFileSync(join(policies, 'quota.yaml'), quotaPolicyYaml({ agencyDaily: LIMIT }).replace('paths: ["/v1/items/**"]\n      principals: { types: [agency] }', 'paths: ["/v1/other/**"]\n      principals: { types: [agency] }'));
    const until = Date.now() + 10_000;
    let seen: number[] = [];
    while (Date.now() < until) {
      seen = await Promise.all(cs.map((c) => check(c, '/v1/items/2')));
      // Before the change: quota exhausted (RESOURCE_EXHAUSTED 8); after: no rule, permission denied (7).
      if (seen.every((c) => c === 7)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.deepEqual(seen, cs.map(() => 7));

    for (const c of cs) c.close();
    serve.child.kill('SIGTERM');
    assert.equal(await serve.exited, 0);
    const keys = createLocalJWKSet(SigningKey.fromFile(keyFile).jwks());
    const report = await verifyFiles([0, 1].map((i) => join(dir, `audit-w${i}.jsonl`)), { keys });
    assert.equal(report.intact, true, JSON.stringify(report.problem));
    assert.deepEqual(report.chains.map((c) => c.sealed), [true, true]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('serve --workers: a worker that cannot start fails startup with STARTUP_FAILED (exit 2)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-workers-'));
  try {
    writeFileSync(join(dir, 'quota.yaml'), quotaPolicyYaml());
    // No audit sink at all: every worker refuses to start, and so does serve.
    const child = spawn(process.execPath, [MAIN, 'serve', '--policies', dir, '--workers', '2', '--grpc-address', '127.0.0.1:0', '--http-address', '127.0.0.1:0', '--ext-proc-address', '127.0.0.1:0', '--no-audit-stdout'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr!.on('data', (c: Buffer) => (err += c.toString('utf8')));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    assert.equal(code, 2);
    assert.match(err, /STARTUP_FAILED: serve --workers 2: a worker could not start/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
