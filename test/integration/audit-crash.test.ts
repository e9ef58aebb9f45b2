/**
 * Crash test: `portcullis serve` in strict audit mode, killed with SIGKILL under load. Every Check
 * that got a response has its record in the file, the file verifies up to its last complete
 * record, and a restart on the same file starts a new chain that continues the old one.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { createLocalJWKSet } from 'jose';
import { authorizationService } from '../../proto/envoy.js';
import { SigningKey } from '../../extauthz/audit/keys.js';
import { verifyFiles } from '../../extauthz/audit/verify-files.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const MAIN = join(ROOT, 'dist', 'extauthz', 'cli', 'main.js');

interface Server {
  child: ChildProcess;
  grpcPort: number;
  exited: Promise<number | null>;
}

function startServe(args: string[]): Promise<Server> {
  const child = spawn(process.execPath, [MAIN, 'serve', '--policies', join(ROOT, 'examples', 'policies'), '--no-watch', '--grpc-address', '127.0.0.1:0', '--http-address', '127.0.0.1:0', '--ext-proc-address', '127.0.0.1:0', '--no-audit-stdout', '--workers', '1', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stderr!.on('data', (c: Buffer) => {
      buf += c.toString('utf8');
      const m = /"grpc":"[^"]*:(\d+)"/.exec(buf);
      if (m) resolve({ child, grpcPort: Number(m[1]), exited });
    });
    void exited.then((code) => reject(new Error(`serve exited with ${code}: ${buf}`)));
  });
}

type CheckFn = (req: unknown, cb: (err: grpc.ServiceError | null, res: { status?: { code?: number } }) => void) => void;

function client(port: number): { check: (id: string) => Promise<boolean>; close: () => void } {
  const Ctor = grpc.makeGenericClientConstructor(authorizationService(), 'Authorization');
  const c = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as { Check: CheckFn; close: () => void };
  const base = JSON.parse(readFileSync(join(ROOT, 'examples', 'requests', 'agency-stats.json'), 'utf8')) as { attributes: { request: { http: { headers: Record<string, string> } } } };
  const check = (id: string): Promise<boolean> =>
    new Promise((resolve) => {
      const req = structuredClone(base);
      req.attributes.request.http.headers['x-request-id'] = id;
      c.Check(req, (err, res) => resolve(!err && res.status?.code === 0));
    });
  return { check, close: () => c.close() };
}

void test('strict mode survives kill -9: every answered Check is on disk and the file verifies', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-crash-'));
  try {
    const keyFile = join(dir, 'audit-key.pem');
    writeFileSync(keyFile, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const keys = createLocalJWKSet(SigningKey.fromFile(keyFile).jwks());
    const file = join(dir, 'audit.log');
    const audit = ['--audit-mode', 'strict', '--audit-file', file, '--audit-key-file', keyFile, '--audit-checkpoint-every', '50'];

    const server = await startServe(audit);
    const c = client(server.grpcPort);
    const acked: string[] = [];
    let n = 0;
    let stop = false;
    const worker = async (): Promise<void> => {
      while (!stop) {
        const id = `crash-${n++}`;
        if (await c.check(id)) acked.push(id);
      }
    };
    const workers = Array.from({ length: 32 }, worker);
    while (acked.length < 600) await new Promise((r) => setTimeout(r, 20));
    server.child.kill('SIGKILL');
    await server.exited;
    stop = true;
    await Promise.all(workers);
    c.close();

    const text = readFileSync(file, 'utf8');
    const ids = new Set(text.split('\n').flatMap((l) => {
      try {
        const e = JSON.parse(l) as { type?: string; requestId?: string };
        return e.type === 'decision' && e.requestId ? [e.requestId] : [];
      } catch {
        return [];
      }
    }));
    const missing = acked.filter((id) => !ids.has(id));
    assert.deepEqual(missing, [], `${missing.length} answered checks have no record`);
    const afterCrash = await verifyFiles([file], { keys });
    assert.equal(afterCrash.intact, true, JSON.stringify(afterCrash.problem));

    // Restart on the same file: a new chain that references the crashed chain's last checkpoint.
    const again = await startServe(audit);
    const c2 = client(again.grpcPort);
    for (let i = 0; i < 5; i++) assert.equal(await c2.check(`after-${i}`), true);
    c2.close();
    again.child.kill('SIGTERM');
    assert.equal(await again.exited, 0);
    const afterRestart = await verifyFiles([file], { keys });
    assert.equal(afterRestart.intact, true, JSON.stringify(afterRestart.problem));
    assert.equal(afterRestart.chains.length, 2);
    assert.equal(afterRestart.chains[1]!.sealed, true);
    assert.equal(afterRestart.chains[1]!.records, 5);
    assert.ok(!afterRestart.warnings.some((w) => w.includes('not among the files')), afterRestart.warnings.join('\n'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
