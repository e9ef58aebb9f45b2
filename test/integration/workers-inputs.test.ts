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
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256Hex } from '../helpers/fixtures.js';
import { orderSchema, orderSchemaConfigMap, ordersPolicy } from '../helpers/order-schema.js';
import { tempPolicyDir, type TempDir } from '../helpers/policies.js';
import { eventually } from '../helpers/server.js';
import { clients, startServe, type CheckClient, type Serve } from '../helpers/serve-process.js';

const NS = 't';
const OPEN = 'open.workers.example';
const ORDERS = 'orders.workers.example';
const CONNECTIONS = 16;
const KEYS = { acme1: 'acme-key-1-for-tests-only', acme2: 'acme-key-2-for-tests-only', beta1: 'beta-key-1-for-tests-only', beta2: 'beta-key-2-for-tests-only' } as const;

const tenantsYaml = `apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: partner-acme, namespace: ${NS} }
spec:
  type: partner
  identity:
    apiKeys: { secretRef: { name: partner-acme-keys } }
  revocation: { file: lists/acme-revoked.json }
---
apiVersion: v1
kind: Secret
metadata: { name: partner-acme-keys, namespace: ${NS} }
stringData: { acme-1: ${sha256Hex(KEYS.acme1)}, acme-2: ${sha256Hex(KEYS.acme2)} }
---
apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: partner-beta, namespace: ${NS} }
spec:
  type: partner
  identity:
    apiKeys: { secretRef: { name: partner-beta-keys } }
  revocation: { configMapRef: { name: partner-beta-revoked, key: revoked.json } }
---
apiVersion: v1
kind: Secret
metadata: { name: partner-beta-keys, namespace: ${NS} }
stringData: { beta-1: ${sha256Hex(KEYS.beta1)}, beta-2: ${sha256Hex(KEYS.beta2)} }
`;

const betaRevoked = (ids: string[]): string => `apiVersion: v1
kind: ConfigMap
metadata: { name: partner-beta-revoked, namespace: ${NS}, labels: { portcullis.io/revocation: "true" } }
data: { revoked.json: '${JSON.stringify({ apiKeys: ids })}' }
`;

const openPolicy = `apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: open, namespace: ${NS} }
spec:
  hosts: [${OPEN}]
  rules:
    - name: partner-read
      methods: [GET]
      paths: ["/v1/datasets/**"]
      principals: { types: [partner] }
`;

type Case = { name: string; request: unknown };

const partner = (key: string): unknown => ({ attributes: { request: { http: { method: 'GET', host: OPEN, path: '/v1/datasets/population', headers: { 'x-api-key': key } } } } });
const order = (quantity: number): unknown => {
  const body = JSON.stringify({ quantity });
  return { attributes: { request: { http: { method: 'POST', host: ORDERS, path: '/v1/orders', headers: { 'content-type': 'application/json', 'content-length': String(body.length) }, body } } } };
};

const CASES: Case[] = [
  { name: 'acme-1', request: partner(KEYS.acme1) },
  { name: 'acme-2', request: partner(KEYS.acme2) },
  { name: 'beta-1', request: partner(KEYS.beta1) },
  { name: 'beta-2', request: partner(KEYS.beta2) },
  { name: 'order 5', request: order(5) },
  { name: 'order 50', request: order(50) },
];

/** The decision's code: OK, or the denial's error code. */
function checkCode(c: CheckClient, request: unknown): Promise<string> {
  return new Promise((resolve, reject) =>
    c.Check(request, (err, res) => {
      if (err) return reject(err);
      if (res.status?.code === 0) return resolve('OK');
      resolve((JSON.parse(res.deniedResponse?.body ?? '{}') as { error?: { code?: string } }).error?.code ?? `status ${res.status?.code}`);
    }),
  );
}

/** Every case over every connection: case name → the codes, one per connection. */
async function decide(cs: CheckClient[]): Promise<Record<string, string[]>> {
  const out: Record<string, string[]> = {};
  for (const { name, request } of CASES) out[name] = await Promise.all(cs.map((c) => checkCode(c, request)));
  return out;
}

/** What each case decides when every connection agrees (or every distinct answer, joined). */
function summary(d: Record<string, string[]>): Record<string, string> {
  return Object.fromEntries(Object.entries(d).map(([k, v]) => [k, [...new Set(v)].sort().join(' | ')]));
}

function auditedDecisions(file: string): number {
  if (!existsSync(file)) return 0;
  return readFileSync(file, 'utf8').split('\n').filter((l) => l.includes('"type":"decision"')).length;
}

let dir: TempDir;
let work: string;
let single: Serve;
let pool: Serve;
let one: CheckClient[];
let many: CheckClient[];

before(async () => {
  dir = tempPolicyDir({ 'tenants.yaml': tenantsYaml, 'beta-revoked.yaml': betaRevoked(['beta-2']), 'open.yaml': openPolicy, 'orders.yaml': ordersPolicy({ namespace: NS, host: ORDERS }), 'order-schema.yaml': orderSchemaConfigMap({ namespace: NS, data: { 'schema.json': orderSchema(10) } }) });
  dir.write('lists/acme-revoked.json', JSON.stringify({ apiKeys: ['acme-2'] }));
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
  const expected = { 'acme-1': 'OK', 'acme-2': 'REVOKED', 'beta-1': 'OK', 'beta-2': 'REVOKED', 'order 5': 'OK', 'order 50': 'BODY_INVALID' };
  assert.deepEqual(summary(await decide(one)), expected, 'one process');
  assert.deepEqual(summary(await decide(many)), expected, 'every connection of serve --workers 2');
  const perWorker = [0, 1].map((i) => auditedDecisions(join(work, `pool-w${i}.jsonl`)));
  assert.ok(perWorker.every((n) => n > 0), `decisions per worker: ${perWorker.join(', ')}`);
});

test('after the file, the revocation ConfigMap and the schema ConfigMap are edited, every worker decides as one process', async () => {
  dir.write('lists/acme-revoked.json', JSON.stringify({ apiKeys: ['acme-1', 'acme-2'] }));
  dir.write('beta-revoked.yaml', betaRevoked(['beta-1', 'beta-2']));
  dir.write('order-schema.yaml', orderSchemaConfigMap({ namespace: NS, data: { 'schema.json': orderSchema(100) } }));
  const expected = { 'acme-1': 'REVOKED', 'acme-2': 'REVOKED', 'beta-1': 'REVOKED', 'beta-2': 'REVOKED', 'order 5': 'OK', 'order 50': 'OK' };
  let last: Record<string, string>[] = [];
  await eventually(async () => {
    last = [summary(await decide(one)), summary(await decide(many))];
    return last.every((s) => JSON.stringify(s) === JSON.stringify(expected));
  }, 'both servers to apply the edits').catch((err: unknown) => {
    assert.deepEqual(last[1], last[0], 'serve --workers 2 against one process');
    throw err;
  });
});
