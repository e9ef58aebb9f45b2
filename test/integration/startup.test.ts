/**
 * `serve` exits non-zero on any startup failure, and does not hang on what it had already opened
 * (a Redis client reconnecting forever kept the process alive before).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const MAIN = join(ROOT, 'dist', 'extauthz', 'cli', 'main.js');

function serve(args: string[]): Promise<{ code: number | null; err: string }> {
  const child = spawn(process.execPath, [MAIN, 'serve', '--policies', join(ROOT, 'examples', 'policies'), '--no-watch', '--http-address', '127.0.0.1:0', '--ext-proc-address', '127.0.0.1:0', '--workers', '1', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
  return new Promise((resolve) => child.once('exit', (code) => resolve({ code, err })));
}

void test('gRPC port in use with the Redis backend (unreachable): STARTUP_FAILED, exit 2, no hang', async () => {
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  try {
    const port = (taken.address() as AddressInfo).port;
    const r = await serve(['--grpc-address', `127.0.0.1:${port}`, '--quota-backend', 'redis', '--redis-url', 'redis://127.0.0.1:1']);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, /portcullis serve: STARTUP_FAILED: .*(EADDRINUSE|address already in use|No address added)/i);
  } finally {
    taken.close();
  }
});

void test('no audit sink with the Redis backend: a usage error, exit 2, no hang', async () => {
  const r = await serve(['--grpc-address', '127.0.0.1:0', '--quota-backend', 'redis', '--redis-url', 'redis://127.0.0.1:1', '--no-audit-stdout']);
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /portcullis serve: USAGE: the audit trail needs a sink/);
});
