import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileValid, compileYaml } from '../../test/helpers/policies.js';
import type { CheckRequestInput } from './check-request.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import { DecisionPipeline, type PhaseName } from './pipeline.js';

const NOW = new Date('2026-03-01T12:00:00Z');
const HOST = 'orders.test.example';

const POLICY = `apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: orders, namespace: t }
spec:
  hosts: [${HOST}]
  rules:
    - name: list-orders
      methods: [GET]
      paths: ["/v1/orders"]
      principals: { anonymous: true }
      request:
        query:
          parameters:
            - { name: limit, type: integer, minimum: 1, maximum: 100 }
            - { name: cursor, type: string, maxLength: 64 }
          unknownParameters: reject
    - name: create-order
      methods: [POST]
      paths: ["/v1/orders"]
      principals: { anonymous: true }
      request:
        contentTypes: [application/json]
        maxBodyBytes: 512
        body:
          inline:
            type: object
            required: [item, quantity]
            additionalProperties: false
            properties:
              item: { type: string, maxLength: 32 }
              quantity: { type: integer, minimum: 1, maximum: 100 }
    - name: no-validation
      methods: [GET]
      paths: ["/v1/health"]
      principals: { anonymous: true }
`;

let snapshot: PolicySnapshot;
before(() => {
  snapshot = compileValid({ 'orders.yaml': POLICY }).snapshot;
});

function request(method: string, path: string, headers: Record<string, string> = {}, body?: string): CheckRequestInput {
  return { attributes: { request: { http: { method, host: HOST, path, headers, ...(body !== undefined ? { body } : {}) } } } };
}

function post(body: string, headers: Record<string, string> = {}): CheckRequestInput {
  return request('POST', '/v1/orders', { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers }, body);
}

describe('pipeline: request validation', () => {
  const cases: [string, CheckRequestInput, { status: number; code: string | null; pointer?: string }][] = [
    ['a page size within bounds', request('GET', '/v1/orders?limit=100'), { status: 200, code: null }],
    ['a page size over 100', request('GET', '/v1/orders?limit=1000'), { status: 400, code: 'QUERY_INVALID', pointer: '/limit' }],
    ['an undeclared parameter', request('GET', '/v1/orders?limit=5&admin=true'), { status: 400, code: 'QUERY_INVALID', pointer: '' }],
    ['a valid order', post('{"item":"pen","quantity":2}'), { status: 200, code: null }],
    ['an order of 500', post('{"item":"pen","quantity":500}'), { status: 400, code: 'BODY_INVALID', pointer: '/quantity' }],
    ['an order as text/plain', post('{"item":"pen","quantity":2}', { 'content-type': 'text/plain' }), { status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', pointer: '' }],
    ['an order over 512 bytes', post(JSON.stringify({ item: 'pen', quantity: 2, note: 'x'.repeat(600) })), { status: 413, code: 'BODY_TOO_LARGE', pointer: '' }],
    ['a body Envoy truncated', post('{"item":"pen","quantity":2}', { 'x-envoy-auth-partial-body': 'true' }), { status: 400, code: 'BODY_INCOMPLETE', pointer: '' }],
    ['a rule without request checks ignores the query', request('GET', '/v1/health?anything=goes'), { status: 200, code: null }],
  ];
  for (const [name, input, want] of cases) {
    test(name, async () => {
      const d = await new DecisionPipeline({ snapshot: () => snapshot, clock: () => NOW }).check(input);
      assert.equal(d.status, want.status, d.reason);
      assert.equal(d.code, want.code);
      if (want.pointer !== undefined) {
        const body = JSON.parse(d.body ?? '{}') as { error: { code: string; pointer?: string } };
        assert.equal(body.error.code, want.code);
        assert.equal(body.error.pointer, want.pointer);
        assert.deepEqual(d.audit.validation?.pointer, want.pointer);
      } else {
        assert.equal(d.audit.validation, undefined);
      }
    });
  }

  test('the deny body and reason never echo the offending value', async () => {
    const secret = 'AT-SECRET-VALUE-123';
    const d = await new DecisionPipeline({ snapshot: () => snapshot, clock: () => NOW }).check(post(JSON.stringify({ item: secret.repeat(3), quantity: 1 })));
    assert.equal(d.code, 'BODY_INVALID');
    assert.ok(!JSON.stringify(d).includes(secret));
  });

  test('an invalid request is denied before the quota phase (no quota charged)', async () => {
    const phases: PhaseName[] = [];
    const p = new DecisionPipeline({ snapshot: () => snapshot, clock: () => NOW, observe: (name) => phases.push(name) });
    await p.check(request('GET', '/v1/orders?limit=1000'));
    assert.ok(!phases.includes('quota'), phases.join(','));
    phases.length = 0;
    await p.check(request('GET', '/v1/orders?limit=10'));
    assert.ok(phases.includes('quota'));
  });

  test('explain names the failed check in the trace', async () => {
    const d = await new DecisionPipeline({ snapshot: () => snapshot, clock: () => NOW }).check(request('GET', '/v1/orders?limit=1000'), { explain: true });
    const last = d.trace[d.trace.length - 1];
    assert.equal(last?.rule, 'list-orders');
    assert.match(last?.reason ?? '', /request query check failed at \/limit/);
  });

  test('a body schema that does not compile refuses the policy, with its location', () => {
    const bad = POLICY.replace('item: { type: string, maxLength: 32 }', 'item: { type: string, pattern: "(a+)+\\\\1" }');
    const c = compileYaml({ 'orders.yaml': bad });
    const p = c.problems.find((x) => x.code === 'POLICY_REQUEST');
    assert.ok(p, c.problems.map((x) => x.format()).join('\n'));
    assert.match(p.format(), /\/spec\/rules\/1\/request\/body\/inline.*rule create-order.*RE2/);
  });

  test('a shadow rule\'s request checks are evaluated and audited as wouldDeny, never applied', async () => {
    const shadowed = POLICY.replace('    - name: list-orders\n      methods: [GET]', '    - name: list-orders-strict\n      shadow: true\n      methods: [GET]\n      paths: ["/v1/orders"]\n      principals: { anonymous: true }\n      request: { query: { parameters: [{ name: limit, type: integer, maximum: 10 }] } }\n    - name: list-orders\n      methods: [GET]');
    const snap = compileValid({ 'orders.yaml': shadowed }).snapshot;
    const d = await new DecisionPipeline({ snapshot: () => snap, clock: () => NOW }).check(request('GET', '/v1/orders?limit=50'));
    assert.equal(d.status, 200, d.reason);
    assert.equal(d.audit.wouldDeny?.code, 'QUERY_INVALID');
    assert.equal(d.audit.wouldDeny?.rule, 'list-orders-strict');
  });

  test('a configMapRef whose ConfigMap is absent refuses the policy rather than validating nothing (schema-refs.test.ts covers the rest)', () => {
    const ref = POLICY.replace(/        body:\n          inline:\n[\s\S]*?quantity: \{[^\n]*\n/, '        body:\n          configMapRef: { name: order-schema, key: schema.json }\n');
    const c = compileYaml({ 'orders.yaml': ref });
    assert.ok(c.problems.some((x) => x.code === 'POLICY_REQUEST' && /ConfigMap t\/order-schema not found/.test(x.message)), c.problems.map((x) => x.format()).join('\n'));
    assert.equal(c.snapshot.byKey.get('t/orders'), undefined);
  });
});
