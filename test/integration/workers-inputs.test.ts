/**
 * `serve --workers 2` decides exactly as one process does with every input the policy store
 * reads besides tenants, policies and Secrets: a revocation list in a folder file, one in a
 * ConfigMap, and a body schema in a ConfigMap — at startup and after each is edited. Both
 * servers (the real CLI) watch the same folder; every Check goes over 16 connections, so both
 * workers answer it (their audit chains show they did).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tempPolicyDir, type TempDir } from '../helpers/policies.js';
import { clients, startServe, type CheckClient, type Serve } from '../helpers/serve-process.js';
import { AT_START, betaRevoked, decide, openPolicy, ordersYaml, revokedKeys, schemaYaml, tenantsYaml, untilBothApplyEdits, decisionsPerWorker } from '../helpers/workers-inputs.js';

const CONNECTIONS = 16;
const LIST = 'lists/acme-revoked.json';

let dir: TempDir;
let work: string;
let single: Serve;
let pool: Serve;
let one: CheckClient[];
let many: CheckClient[];

before(async () => {
  dir = tempPolicyDir({ 'tenants.yaml': tenantsYaml(`{ file: ${LIST} }`), 'beta-revoked.yaml': betaRevoked(['beta-2']), 'open.yaml': openPolicy, 'orders.yaml': ordersYaml, 'order-schema.yaml': schemaYaml(10) });
  dir.write(LIST, revokedKeys(['acme-2']));
  // Audit chains and key outside the watched folder.
  work = mkdtempSync(join(tmpdir(), 'portcullis-workers-inputs-'));
  const keyFile = join(work, 'audit-key.pem');
  writeFileSync(keyFile, generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }));
  const audit = (name: string): string[] => ['--audit-file', join(work, `${name}.jsonl`), '--audit-key-file', keyFile];
  single = await startServe(['--policies', dir.dir, '--workers', '1', ...audit('single')]);
  pool = await startServe(['--policies', dir.dir, '--workers', '2', ...audit('pool')]);
  one = clients(single.grpcPort, 1);
  many = clients(pool.grpcPort, CONNECTIONS);
});

after(async () => {
  for (const c of [...(one ?? []), ...(many ?? [])]) c.close();
  for (const s of [single, pool]) s?.child.kill('SIGTERM');
  await Promise.all([single?.exited, pool?.exited]);
  dir?.remove();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('at startup every worker decides as one process: revoked keys from a file and a ConfigMap, a body schema from a ConfigMap', async () => {
  assert.deepEqual(await decide(one), AT_START, 'one process');
  assert.deepEqual(await decide(many), AT_START, 'every connection of serve --workers 2');
  const perWorker = decisionsPerWorker(join(work, 'pool.jsonl'), 2);
  assert.ok(perWorker.every((n) => n > 0), `decisions per worker: ${perWorker.join(', ')}`);
});

test('after the file, the revocation ConfigMap and the schema ConfigMap are edited, every worker decides as one process', async () => {
  dir.write(LIST, revokedKeys(['acme-1', 'acme-2']));
  dir.write('beta-revoked.yaml', betaRevoked(['beta-1', 'beta-2']));
  dir.write('order-schema.yaml', schemaYaml(100));
  await untilBothApplyEdits(one, many);
});
