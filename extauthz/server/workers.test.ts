import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkWorkers, DEFAULTS, resolveServeConfig } from '../config.js';
import { PolicyError } from '../errors.js';
import { compileSources, type StoreInput } from '../policy/store.js';
import { fromWire, toWire, WIRE_FIELDS } from './forwarded-source.js';
import { loadYaml } from '../../test/helpers/policies.js';
import { orderSchema, orderSchemaConfigMap, ordersPolicy } from '../../test/helpers/order-schema.js';
import { workerFile } from './workers.js';

void test('--workers: auto is the CPUs this process may use, bounded; numbers are checked', () => {
  assert.equal(checkWorkers(undefined, 2), 2);
  assert.equal(checkWorkers('auto', 8), 8);
  assert.equal(checkWorkers('auto', 500), 64);
  assert.equal(checkWorkers('auto', 0), 1);
  assert.equal(checkWorkers('3', 2), 3);
  for (const bad of ['0', '-1', '1.5', '65', 'two', '']) assert.throws(() => checkWorkers(bad, 2), /--workers must be auto or an integer from 1 to 64/);
  assert.equal(resolveServeConfig({ policyDir: 'p' }, {}, 4).workers, 4);
  assert.equal(resolveServeConfig({ policyDir: 'p' }, { workers: '1' }, 4).workers, 1);
  // Embedding (startServer with DEFAULTS) stays single-threaded.
  assert.equal(DEFAULTS.workers, 1);
});

void test('each worker writes its own audit file: the suffix goes before the extension', () => {
  assert.equal(workerFile('/var/log/audit.jsonl', 0), '/var/log/audit-w0.jsonl');
  assert.equal(workerFile('/var/log/audit', 3), '/var/log/audit-w3');
  assert.equal(workerFile('/var/log.d/audit', 1), '/var/log.d/audit-w1');
});

void test('forwarded object sets keep their broken objects\' problems across the thread boundary', () => {
  const problem = new PolicyError('POLICY_CEL', 'does not compile', { file: 'a.yaml', object: 'ApiPolicy t/a' }, { severity: 'error' });
  const wire = structuredClone(toWire({ tenants: [], policies: [], secrets: [], broken: new Map([['ApiPolicy t/a', [problem]]]) }));
  const back = fromWire(wire).broken!.get('ApiPolicy t/a')![0]!;
  assert.ok(back instanceof PolicyError);
  assert.equal(back.code, 'POLICY_CEL');
  assert.equal(back.format(), problem.format());
});

const WIRE_YAML = {
  'tenants.yaml': `apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: file-listed, namespace: t }
spec:
  type: agency
  identity: { mtls: { spiffeIds: ["spiffe://gov.example/ns/a/*"] } }
  revocation: { file: lists/revoked.json }
---
apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: map-listed, namespace: t }
spec:
  type: agency
  identity: { mtls: { spiffeIds: ["spiffe://gov.example/ns/b/*"] } }
  revocation: { configMapRef: { name: revoked, key: list.json } }
---
apiVersion: v1
kind: ConfigMap
metadata: { name: revoked, namespace: t }
data: { list.json: '{"sub": ["someone"]}' }
`,
  'orders.yaml': ordersPolicy({ namespace: 't', host: 'orders.example' }),
  'schema.yaml': orderSchemaConfigMap({ namespace: 't', data: { 'schema.json': orderSchema(10) } }),
};

/** What a store makes of an input: every object's problems, and what serves. */
function compiled(input: StoreInput): { problems: string[]; serving: string[] } {
  const r = compileSources(input);
  return { problems: r.problems.map((p) => p.format()), serving: [...r.reports.values()].map((o) => `${o.kind} ${o.key}: ${o.serving}`).sort() };
}

void test('a forwarded object set compiles in a worker exactly as in the primary: ConfigMaps and revocation files cross too', () => {
  const { sources } = loadYaml(WIRE_YAML);
  const folder: StoreInput = { ...sources, files: new Map([['lists/revoked.json', { text: '{"jti": ["t-1"]}' }]]) };
  const want = compiled(folder);
  assert.deepEqual(want.problems, [], 'the primary compiles everything');
  assert.deepEqual(want.serving, ['ApiPolicy t/orders: current', 'Tenant t/file-listed: current', 'Tenant t/map-listed: current']);
  assert.deepEqual(compiled(fromWire(structuredClone(toWire(folder)))), want);
  // No folder (the cluster source): revocation.file is refused in the worker as in the primary.
  const cluster: StoreInput = { ...sources };
  const refused = compiled(cluster);
  assert.match(refused.problems.join('\n'), /revocation.file works only with a policy folder/);
  assert.deepEqual(compiled(fromWire(structuredClone(toWire(cluster)))), refused);
  // Every field but the identity-based hint is forwarded.
  assert.deepEqual(Object.entries(WIRE_FIELDS).filter(([, how]) => how !== 'forwarded').map(([k]) => k), ['policyChanges']);
});

void test('a forwarded source tells every subscriber of each new snapshot (the server and the worker both listen)', async () => {
  const { ForwardedPolicySource } = await import('./forwarded-source.js');
  const source = new ForwardedPolicySource(undefined, 'spec', (err) => assert.fail(String(err)));
  await source.start();
  assert.equal(source.snapshot, undefined);
  const heard: string[] = [];
  source.subscribe(() => heard.push('server'));
  source.subscribe(() => heard.push('worker'));
  await source.push(toWire({ tenants: [], policies: [], secrets: [] }));
  assert.deepEqual(heard, ['server', 'worker']);
  assert.ok(source.snapshot);
});
