import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const MAIN = fileURLToPath(new URL('./main.js', import.meta.url));

test('the operator without a kubeconfig exits 1 with a message saying what to provide', () => {
  const home = mkdtempSync(join(tmpdir(), 'portcullis-op-'));
  try {
    const r = spawnSync(process.execPath, [MAIN, '--no-leader-elect', '--http-address', '127.0.0.1:0'], { env: { PATH: process.env.PATH ?? '', HOME: home }, encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 1, `exit status (signal ${r.signal}); stderr: ${r.stderr}`);
    assert.match(r.stderr, /^portcullis-operator: KUBE_CONFIG: no Kubernetes configuration found: pass --kubeconfig FILE, set KUBECONFIG/);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});
