/**
 * examples/introspection as its README shows it: the demo provider on loopback, `portcullis
 * check` allowing the active opaque token, denying the inactive one, and failing closed once the
 * provider is gone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const EXAMPLE = join(ROOT, 'examples', 'introspection');
const MAIN = join(ROOT, 'dist', 'extauthz', 'cli', 'main.js');

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function check(policies: string, request: string): { code: number | null; out: { decision?: string; status?: number; code?: string | null } } {
  const r = spawnSync(process.execPath, [MAIN, 'check', '--policies', policies, '--request', join(EXAMPLE, 'requests', request)], { encoding: 'utf8' });
  return { code: r.status, out: JSON.parse(r.stdout.split('\n')[0] || '{}') as { decision?: string; status?: number; code?: string | null } };
}

void test('examples/introspection: active token allowed, inactive denied TOKEN_INACTIVE, provider gone denied', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-introspection-'));
  const port = await freePort();
  const idp = spawn(process.execPath, [join(ROOT, 'examples', 'dev-idp.mjs'), 'serve', '--port', String(port)], { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    await new Promise<void>((resolve, reject) => {
      idp.stderr.on('data', (c: Buffer) => (String(c).includes('dev-idp: JWKS on') ? resolve() : undefined));
      idp.once('exit', (code) => reject(new Error(`idp exited ${code}`)));
    });
    cpSync(join(EXAMPLE, 'policies'), dir, { recursive: true });
    const tenant = join(dir, '10-tenant.yaml');
    writeFileSync(tenant, readFileSync(tenant, 'utf8').replaceAll('127.0.0.1:8089', `127.0.0.1:${port}`));

    const active = check(dir, 'opaque-active.json');
    assert.deepEqual([active.code, active.out.decision, active.out.status], [0, 'allow', 200]);
    const inactive = check(dir, 'opaque-inactive.json');
    assert.deepEqual([inactive.code, inactive.out.decision, inactive.out.status, inactive.out.code], [1, 'deny', 401, 'TOKEN_INACTIVE']);

    idp.kill('SIGTERM');
    await new Promise((r) => idp.once('exit', r));
    const gone = check(dir, 'opaque-active.json');
    assert.deepEqual([gone.code, gone.out.decision, gone.out.status, gone.out.code], [1, 'deny', 503, 'INTROSPECTION_UNAVAILABLE']);
  } finally {
    idp.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
