import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileYaml, loadYaml } from '../../test/helpers/policies.js';
import type { CheckRequestInput } from '../pipeline/check-request.js';
import { DecisionPipeline } from '../pipeline/pipeline.js';
import type { PolicySnapshot } from './snapshot.js';
import { PolicyStore } from './store.js';
import { orderSchema, orderSchemaConfigMap, ordersPolicy } from '../../test/helpers/order-schema.js';

const HOST = 'orders.test.example';
const POLICY = ordersPolicy({ namespace: 't', host: HOST });
const schema = orderSchema;
const configMap = (data: Record<string, string>, name = 'order-schema'): string => orderSchemaConfigMap({ namespace: 't', data, name });

function post(body: string): CheckRequestInput {
  return { attributes: { request: { http: { method: 'POST', host: HOST, path: '/v1/orders', headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) }, body } } } };
}

async function decide(snapshot: PolicySnapshot, body: string): Promise<[number, string | null]> {
  const d = await new DecisionPipeline({ snapshot: () => snapshot }).check(post(body));
  return [d.status, d.code];
}

void describe('request.body.configMapRef: a body schema held in a ConfigMap', () => {
  void test('compiles like inline and validates the body', async () => {
    const c = compileYaml({ 'p.yaml': POLICY, 'cm.yaml': configMap({ 'schema.json': schema(10) }) });
    assert.deepEqual(c.problems.map((p) => p.format()), []);
    assert.deepEqual(await decide(c.snapshot, '{"quantity":3}'), [200, null]);
    assert.deepEqual(await decide(c.snapshot, '{"quantity":30}'), [400, 'BODY_INVALID']);
  });

  const refused: [string, string, RegExp][] = [
    ['no such ConfigMap', '', /ConfigMap t\/order-schema not found \(in a cluster it needs the label portcullis.io\/schema=true/],
    ['no such key', configMap({ 'other.json': schema(10) }), /ConfigMap t\/order-schema has no key schema.json/],
    ['not JSON', configMap({ 'schema.json': '{"type": "object",' }), /ConfigMap t\/order-schema key schema.json is not JSON/],
    ['a schema the bounds refuse', configMap({ 'schema.json': JSON.stringify({ $ref: 'https://elsewhere.example/s.json' }) }), /POLICY_REQUEST: request.body: /],
    ['over 64 KiB', configMap({ 'schema.json': JSON.stringify({ description: 'x'.repeat(70_000) }) }), /larger than 65536 bytes/],
  ];
  for (const [name, cm, message] of refused) {
    void test(`refused, never a rule that validates nothing: ${name}`, () => {
      const c = compileYaml({ 'p.yaml': POLICY, ...(cm ? { 'cm.yaml': cm } : {}) });
      assert.equal(c.problems.length, 1, c.problems.map((p) => p.format()).join('\n'));
      assert.equal(c.problems[0]!.code, 'POLICY_REQUEST');
      assert.match(c.problems[0]!.format(), message);
      assert.equal(c.snapshot.byKey.get('t/orders'), undefined);
    });
  }

  void test('a ConfigMap edit recompiles the policy that names it, and only that one; a broken edit keeps the last good schema', async () => {
    const other = POLICY.replace('name: orders', 'name: other').replace(HOST, 'other.test.example').replace('order-schema', 'other-schema');
    const load = (max: number | string): ReturnType<typeof loadYaml> =>
      loadYaml({ 'p.yaml': POLICY, 'q.yaml': other, 'cm.yaml': configMap({ 'schema.json': typeof max === 'number' ? schema(max) : max }), 'cm2.yaml': configMap({ 'schema.json': schema(5) }, 'other-schema') });
    const store = new PolicyStore();
    const first = store.apply(load(10).sources);
    assert.deepEqual(first.problems.map((p) => p.format()), []);
    assert.deepEqual(await decide(first.snapshot, '{"quantity":30}'), [400, 'BODY_INVALID']);

    const edited = store.apply(load(50).sources);
    assert.equal(edited.stats.policiesCompiled, 1);
    assert.deepEqual(await decide(edited.snapshot, '{"quantity":30}'), [200, null]);
    assert.equal(store.apply(load(50).sources).stats.policiesCompiled, 0, 'nothing changed: nothing compiles');

    const broken = store.apply(load('not json').sources);
    assert.equal(broken.reports.get('ApiPolicy t/orders')?.serving, 'last-good');
    assert.deepEqual(await decide(broken.snapshot, '{"quantity":30}'), [200, null]);
    assert.deepEqual(await decide(broken.snapshot, '{"quantity":60}'), [400, 'BODY_INVALID']);
  });

  void test('a body with neither inline nor configMapRef is refused (the CRD rule, in folder mode too)', () => {
    const c = compileYaml({ 'p.yaml': ordersPolicy({ namespace: 't', host: HOST, body: '{}' }) });
    assert.match(c.problems.map((p) => p.format()).join('\n'), /POLICY_SCHEMA: body needs exactly one of inline or configMapRef/);
    assert.equal(c.snapshot.byKey.get('t/orders'), undefined);
  });

  void test('responseSchema.configMapRef: mask paths are checked against the ConfigMap\'s schema', () => {
    const masked = (field: string): string => `apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: records, namespace: t }
spec:
  hosts: [records.test.example]
  rules:
    - name: read
      methods: [GET]
      paths: ["/v1/records"]
      principals: { anonymous: true }
      responseSchema: { configMapRef: { name: record-schema, key: schema.json } }
      mask: [{ field: "${field}", action: redact }]
`;
    const cm = configMap({ 'schema.json': JSON.stringify({ type: 'object', properties: { taxId: { type: 'string' } } }) }, 'record-schema');
    assert.deepEqual(compileYaml({ 'p.yaml': masked('$.taxId'), 'cm.yaml': cm }).problems.map((p) => p.format()), []);
    assert.match(compileYaml({ 'p.yaml': masked('$.taxID'), 'cm.yaml': cm }).problems.map((p) => p.format()).join('\n'), /selects nothing in responseSchema/);
    const missing = compileYaml({ 'p.yaml': masked('$.taxId') }).problems;
    assert.equal(missing.length, 1);
    assert.equal(missing[0]!.code, 'POLICY_INVALID');
    assert.match(missing[0]!.format(), /\/spec\/rules\/0\/responseSchema\/configMapRef .*responseSchema: ConfigMap t\/record-schema not found/);
  });
});
