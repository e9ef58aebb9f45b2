/**
 * Purpose and legal basis on record (issue 15 part 2): tenant purposes as names or objects, the
 * declared purpose validated against them, requirePurpose, subjectParam and spec.version, and
 * what the audit record of such a decision holds.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileValid, compileYaml } from '../../test/helpers/policies.js';
import { checkRequest, type RequestSpec } from '../../test/helpers/requests.js';
import { decisionFields } from '../audit/record.js';
import { Pseudonymizer } from '../audit/pseudonym.js';
import { authorize } from './authorize.js';
import { parseCheckRequest } from './context.js';
import { DecisionPipeline } from './pipeline.js';
import type { Principal } from './principal.js';

const TENANTS = `apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: dept-revenue, namespace: t }
spec:
  type: agency
  identity: { mtls: { spiffeIds: ["spiffe://td/revenue"] } }
  purposes:
    - statistics
    - { name: tax-audit, legalBasis: "Tax Code s. 12(3); GDPR Art. 6(1)(e)", description: Audit of one taxpayer }
---
apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: citizen-app, namespace: t }
spec:
  type: consumer-app
  identity: { mtls: { spiffeIds: ["spiffe://td/app"] } }
`;

const POLICY = `apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: records, namespace: t }
spec:
  version: v2
  hosts: [records.example]
  rules:
    - name: agency-reads-record
      paths: ["/v2/citizens/{id}/records", "/v2/citizens/{id}"]
      principals: { types: [agency] }
      requirePurpose: true
      subjectParam: id
    - name: agency-mfa
      paths: ["/v2/secure/{id}"]
      principals: { types: [agency] }
      requirePurpose: true
      requireMfa: true
    - name: own-record
      paths: ["/v2/citizens/{id}/records"]
      principals: { types: [consumer] }
      when: "principal.subject == params.id"
      subjectParam: id
    - name: stats
      paths: ["/v2/stats"]
      principals: { types: [agency] }
`;

const { snapshot } = compileValid({ 't.yaml': TENANTS, 'p.yaml': POLICY });
const policy = snapshot.byKey.get('t/records')!;
const dir = snapshot.tenants.get('t')!;
const NOW = new Date('2026-03-01T10:00:00Z');

function principal(tenant: string, subject = 'spiffe://td/revenue'): Principal {
  const t = dir.byName.get(tenant)!;
  return { type: t.principalType, tenant: t, subject, method: 'mtls', claims: {}, spiffeId: subject, mfa: false };
}

const req = (path: string, purpose?: string): RequestSpec => ({ host: 'records.example', path, headers: purpose === undefined ? {} : { 'x-purpose-of-use': purpose } });

describe('tenant purposes', () => {
  test('names and objects compile; CEL still sees the names', () => {
    const t = dir.byName.get('dept-revenue')!;
    assert.deepEqual(t.purposes, ['statistics', 'tax-audit']);
    assert.deepEqual(t.celValue.purposes, ['statistics', 'tax-audit']);
    assert.deepEqual(t.purposeIndex.get('tax-audit'), { name: 'tax-audit', legalBasis: 'Tax Code s. 12(3); GDPR Art. 6(1)(e)', description: 'Audit of one taxpayer' });
    assert.deepEqual(t.purposeIndex.get('statistics'), { name: 'statistics', legalBasis: null, description: null });
  });

  const bad: [string, string, RegExp][] = [
    ['a name with capitals', '[Tax]', /name must be lowercase/],
    ['an object without a legal basis', '[{ name: tax }]', /needs a legalBasis/],
    ['an unknown field', '[{ name: tax, legalBasis: x, basis: y }]', /unknown field/],
    ['a number', '[42]', /must be a name or an object/],
    ['a duplicate', '[tax, { name: tax, legalBasis: x }]', /listed twice/],
    ['an empty legal basis', '[{ name: tax, legalBasis: "" }]', /legalBasis must be printable text of 1 to 256/],
    ['a control character', '[{ name: tax, legalBasis: "a\\u0007b" }]', /legalBasis must be printable/],
    ['a legal basis too long', `[{ name: tax, legalBasis: "${'x'.repeat(257)}" }]`, /1 to 256/],
  ];
  for (const [name, purposes, message] of bad) {
    test(`refused: ${name} (POLICY_INVALID at /spec/purposes/i)`, () => {
      const c = compileYaml({ 't.yaml': TENANTS.replace(/purposes:\n(\s+- .*\n)+/, `purposes: ${purposes}\n`) });
      const p = c.problems.find((e) => e.location.object === 'Tenant t/dept-revenue');
      assert.ok(p, c.problems.map((e) => e.format()).join('\n'));
      assert.equal(p.code, 'POLICY_INVALID');
      assert.match(p.location.path ?? '', /^\/spec\/purposes\/\d+$/);
      assert.match(p.message, message);
    });
  }
});

describe('declared purpose', () => {
  const cases: { name: string; path: string; purpose?: string; who?: string; code: string | null; rule?: string }[] = [
    { name: 'listed purpose (object form) allows', path: '/v2/citizens/c-1/records', purpose: 'tax-audit', code: null, rule: 'agency-reads-record' },
    { name: 'listed purpose (plain name) allows', path: '/v2/citizens/c-1', purpose: 'statistics', code: null, rule: 'agency-reads-record' },
    { name: 'no purpose where the rule requires one: PURPOSE_REQUIRED', path: '/v2/citizens/c-1/records', code: 'PURPOSE_REQUIRED', rule: 'agency-reads-record' },
    { name: 'a purpose the tenant does not list: PURPOSE_NOT_ALLOWED', path: '/v2/citizens/c-1/records', purpose: 'marketing', code: 'PURPOSE_NOT_ALLOWED' },
    { name: 'an unlisted purpose is refused on rules that do not require one', path: '/v2/stats', purpose: 'marketing', code: 'PURPOSE_NOT_ALLOWED' },
    { name: 'no purpose on a rule that does not require one', path: '/v2/stats', code: null, rule: 'stats' },
    { name: 'a tenant with no purposes declaring one: PURPOSE_NOT_ALLOWED', path: '/v2/citizens/c-1/records', purpose: 'statistics', who: 'citizen-app', code: 'PURPOSE_NOT_ALLOWED' },
    { name: 'MFA outranks the purpose requirement', path: '/v2/secure/x', code: 'MFA_REQUIRED', rule: 'agency-mfa' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const who = c.who === undefined ? principal('dept-revenue') : principal(c.who, 'c-1');
      const a = authorize(policy, parseCheckRequest(checkRequest(req(c.path, c.purpose)), NOW), who);
      assert.equal(a.code, c.code, a.reason);
      assert.equal(a.allowed, c.code === null);
      if (c.rule) assert.equal(a.rule?.name, c.rule);
      if (c.purpose !== undefined) assert.ok(!a.reason.includes(c.purpose), 'the declared value is not echoed');
    });
  }

  test('anonymous requests are not bound to a tenant: the header alone decides nothing', () => {
    const a = authorize(policy, parseCheckRequest(checkRequest(req('/v2/stats', 'marketing')), NOW), undefined);
    assert.equal(a.code, 'UNAUTHENTICATED');
  });
});

describe('subjectParam and spec.version at load', () => {
  const withRule = (rule: string): string => POLICY.replace(/  rules:\n[\s\S]*/, `  rules:\n${rule}`);
  const bad: [string, string, RegExp][] = [
    ['a parameter not in every path', '    - name: r\n      paths: ["/a/{id}", "/b/{key}"]\n      subjectParam: id\n', /not a parameter of every path/],
    ['a parameter no path has', '    - name: r\n      paths: ["/a/{key}"]\n      subjectParam: id\n', /not a parameter of every path/],
  ];
  for (const [name, rule, message] of bad) {
    test(`refused: ${name}`, () => {
      const c = compileYaml({ 't.yaml': TENANTS, 'p.yaml': withRule(rule) });
      const p = c.problems.find((e) => e.location.object === 'ApiPolicy t/records');
      assert.ok(p, c.problems.map((e) => e.format()).join('\n'));
      assert.equal(p.code, 'POLICY_INVALID');
      assert.equal(p.location.path, '/spec/rules/0/subjectParam');
      assert.match(p.message, message);
    });
  }

  test('refused by the schema: subjectParam without paths, requirePurpose on a deny rule, a bad version', () => {
    for (const [text, message] of [
      [withRule('    - name: r\n      subjectParam: id\n'), /subjectParam needs paths/],
      [withRule('    - name: r\n      effect: deny\n      requirePurpose: true\n'), /deny rules cannot carry requirePurpose/],
      [POLICY.replace('version: v2', 'version: "v 2"'), /must match pattern/],
    ] as const) {
      const c = compileYaml({ 't.yaml': TENANTS, 'p.yaml': text });
      assert.ok(c.problems.some((p) => p.code === 'POLICY_SCHEMA' && message.test(p.message)), c.problems.map((p) => p.format()).join('\n'));
    }
  });

  test('spec.version and subjectParam are compiled', () => {
    assert.equal(policy.version, 'v2');
    assert.equal(policy.rules.find((r) => r.name === 'agency-reads-record')?.subjectParam, 'id');
    assert.equal(policy.rules.find((r) => r.name === 'stats')?.subjectParam, undefined);
  });
});

describe('the audit record of an agency access', () => {
  const pseudo = new Pseudonymizer(Buffer.alloc(32, 9));
  const pipeline = new DecisionPipeline({ snapshot: () => snapshot, clock: () => NOW });
  const agency = (path: string, purpose?: string): RequestSpec => ({ ...req(path, purpose), principal: 'spiffe://td/revenue' });

  test('carries purpose, legal basis, API version and the pseudonymised resource, nothing in clear', async () => {
    const d = await pipeline.check(checkRequest(agency('/v2/citizens/citizen-4711/records', 'tax-audit')));
    assert.equal(d.allowed, true, d.reason);
    const r = decisionFields(d, policy, pseudo, 'grpc');
    assert.equal(r.purpose, 'tax-audit');
    assert.equal(r.legalBasis, 'Tax Code s. 12(3); GDPR Art. 6(1)(e)');
    assert.equal(r.apiVersion, 'v2');
    // The same keyed pseudonym a principal whose subject is citizen-4711 gets.
    assert.equal(r.resource, pseudo.subject('citizen-4711'));
    assert.ok(!JSON.stringify(r).includes('citizen-4711'));
    assert.equal(r.pathTemplate, '/v2/citizens/{id}/records');
  });

  test('a denial for a missing purpose still names the subject touched (pseudonymised)', async () => {
    const d = await pipeline.check(checkRequest(agency('/v2/citizens/citizen-4711')));
    assert.equal(d.code, 'PURPOSE_REQUIRED');
    const r = decisionFields(d, policy, pseudo, 'grpc');
    assert.equal(r.resource, pseudo.subject('citizen-4711'));
    assert.equal(r.purpose, null);
    assert.equal(r.legalBasis, null);
  });

  test('a plain-name purpose has no legal basis; a rule without subjectParam records no resource', async () => {
    const d = await pipeline.check(checkRequest(agency('/v2/stats', 'statistics')));
    const r = decisionFields(d, policy, pseudo, 'grpc');
    assert.deepEqual([r.purpose, r.legalBasis, r.apiVersion, r.resource], ['statistics', null, 'v2', null]);
  });

  test('an unlisted purpose is not written to the record', async () => {
    const d = await pipeline.check(checkRequest(agency('/v2/citizens/citizen-4711', 'marketing')));
    assert.equal(d.code, 'PURPOSE_NOT_ALLOWED');
    const r = decisionFields(d, policy, pseudo, 'grpc');
    assert.equal(r.purpose, null);
    assert.ok(!JSON.stringify(r).includes('marketing'));
  });
});
