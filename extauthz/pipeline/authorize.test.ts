import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileValid } from '../../test/helpers/policies.js';
import { checkRequest, type RequestSpec } from '../../test/helpers/requests.js';
import type { CompiledPolicy } from '../policy/compile.js';
import { authorize, explainConditions } from './authorize.js';
import { parseCheckRequest } from './context.js';
import type { Principal } from './principal.js';

const TENANTS = ['dept-revenue:agency', 'dept-other:agency', 'citizen-app:consumer-app']
  .map((s) => s.split(':'))
  .map(([name, type]) => `apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: ${name}, namespace: t }
spec:
  type: ${type}
  identity: { mtls: { spiffeIds: ["spiffe://td/${name}"] } }
  purposes: [statistics]
---
`)
  .join('');

const POLICY = (name: string, defaultAction: string, rules: string): string => `apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: ${name}, namespace: t }
spec:
  hosts: [${name}.example]
  defaultAction: ${defaultAction}
  rules:
${rules}`;

const MAIN = POLICY('main', 'deny', `    - name: deny-blocked
      effect: deny
      paths: ["/v1/blocked/**"]
    - name: deny-flagged
      effect: deny
      when: "'x-deny' in request.headers && request.headers['x-deny'] == 'yes'"
    - name: public
      paths: ["/public", "/v1/blocked/public"]
      principals: { anonymous: true }
    - name: first-allow
      paths: ["/v1/items/{id}"]
      principals: { types: [agency] }
    - name: second-allow
      paths: ["/v1/items/{id}"]
      principals: { types: [agency] }
    - name: needs-mfa
      paths: ["/v1/secure"]
      principals: { types: [consumer] }
      requireMfa: true
    - name: broken-condition
      paths: ["/v1/err"]
      when: "request.headers['x-missing'] == 'a'"
    - name: revenue-only
      paths: ["/v1/tenant"]
      principals: { tenants: [dept-revenue] }
    - name: post-only
      methods: [POST]
      paths: ["/v1/post"]
    - name: purpose
      paths: ["/v1/purpose"]
      when: "request.headers['x-purpose-of-use'] in tenant.purposes && request.query['year'] == '2025'"
    - name: own-record
      paths: ["/v1/citizens/{id}"]
      principals: { types: [consumer] }
      when: "principal.subject == params.id"
`);

const OPEN = POLICY('open', 'allow', `    - name: deny-admin
      effect: deny
      paths: ["/admin/**"]
`);

const FAILING_DENY = POLICY('failing', 'allow', `    - name: deny-broken
      effect: deny
      when: "request.headers['x-missing'] == 'a'"
    - name: allow-all
      principals: { anonymous: true }
`);

const { snapshot } = compileValid({ 't.yaml': TENANTS, 'p.yaml': `${MAIN}---\n${OPEN}---\n${FAILING_DENY}` });
const dir = snapshot.tenants.get('t')!;

function principal(tenant: string, opts: { subject?: string; mfa?: boolean } = {}): Principal {
  const t = dir.byName.get(tenant)!;
  return { type: t.principalType, tenant: t, subject: opts.subject ?? 'sub-1', method: 'mtls', claims: {}, spiffeId: '', mfa: opts.mfa ?? false };
}

const NOW = new Date('2026-01-01T00:00:00Z');

interface Case {
  name: string;
  policy?: string;
  req: RequestSpec;
  who?: Principal;
  allowed: boolean;
  code?: string | null;
  rule?: string;
  params?: Record<string, string>;
}

const cases: Case[] = [
  { name: 'deny wins over an allow that also matches', req: { path: '/v1/blocked/public' }, allowed: false, code: 'FORBIDDEN', rule: 'deny-blocked' },
  { name: 'deny by condition', req: { path: '/public', headers: { 'x-deny': 'yes' } }, allowed: false, code: 'FORBIDDEN', rule: 'deny-flagged' },
  { name: 'anonymous rule admits no credentials', req: { path: '/public' }, allowed: true, code: null, rule: 'public' },
  { name: 'anonymous-only rule admits principals too', req: { path: '/public' }, who: principal('dept-revenue'), allowed: true, rule: 'public' },
  { name: 'first matching allow wins', req: { path: '/v1/items/42' }, who: principal('dept-revenue'), allowed: true, rule: 'first-allow', params: { id: '42' } },
  { name: 'no credentials and no rule: UNAUTHENTICATED', req: { path: '/v1/items/42' }, allowed: false, code: 'UNAUTHENTICATED' },
  { name: 'wrong principal type: FORBIDDEN', req: { path: '/v1/items/42' }, who: principal('citizen-app'), allowed: false, code: 'FORBIDDEN' },
  { name: 'requireMfa without MFA: MFA_REQUIRED', req: { path: '/v1/secure' }, who: principal('citizen-app'), allowed: false, code: 'MFA_REQUIRED', rule: 'needs-mfa' },
  { name: 'requireMfa with MFA', req: { path: '/v1/secure' }, who: principal('citizen-app', { mfa: true }), allowed: true, rule: 'needs-mfa' },
  { name: 'condition error (missing map key): CONDITION_ERROR', req: { path: '/v1/err' }, who: principal('dept-revenue'), allowed: false, code: 'CONDITION_ERROR', rule: 'broken-condition' },
  { name: 'tenant listed', req: { path: '/v1/tenant' }, who: principal('dept-revenue'), allowed: true, rule: 'revenue-only' },
  { name: 'tenant not listed', req: { path: '/v1/tenant' }, who: principal('dept-other'), allowed: false, code: 'FORBIDDEN' },
  { name: 'method matched', req: { method: 'POST', path: '/v1/post' }, who: principal('dept-revenue'), allowed: true, rule: 'post-only' },
  { name: 'method not matched', req: { method: 'GET', path: '/v1/post' }, who: principal('dept-revenue'), allowed: false, code: 'FORBIDDEN' },
  { name: 'CEL sees headers, tenant and query', req: { path: '/v1/purpose?year=2025', headers: { 'x-purpose-of-use': 'statistics' } }, who: principal('dept-revenue'), allowed: true, rule: 'purpose' },
  { name: 'CEL condition false', req: { path: '/v1/purpose?year=2024', headers: { 'x-purpose-of-use': 'statistics' } }, who: principal('dept-revenue'), allowed: false, code: 'FORBIDDEN' },
  { name: 'params in CEL: own record', req: { path: '/v1/citizens/c-7' }, who: principal('citizen-app', { subject: 'c-7' }), allowed: true, rule: 'own-record', params: { id: 'c-7' } },
  { name: 'params in CEL: other record', req: { path: '/v1/citizens/c-8' }, who: principal('citizen-app', { subject: 'c-7' }), allowed: false, code: 'FORBIDDEN' },
  { name: 'defaultAction allow', policy: 'open', req: { path: '/anything' }, allowed: true, code: null },
  { name: 'defaultAction allow still honours deny rules', policy: 'open', req: { path: '/admin/x' }, allowed: false, code: 'FORBIDDEN', rule: 'deny-admin' },
  { name: 'a deny rule that cannot be evaluated fails closed', policy: 'failing', req: { path: '/x' }, allowed: false, code: 'CONDITION_ERROR', rule: 'deny-broken' },
];

describe('authorize', () => {
  for (const c of cases) {
    test(c.name, () => {
      const policy: CompiledPolicy = snapshot.byKey.get(`t/${c.policy ?? 'main'}`)!;
      const ctx = parseCheckRequest(checkRequest({ host: `${c.policy ?? 'main'}.example`, ...c.req }), NOW);
      const a = authorize(policy, ctx, c.who);
      assert.equal(a.allowed, c.allowed, a.reason);
      if (c.code !== undefined) assert.equal(a.code, c.code, a.reason);
      if (c.rule !== undefined) assert.equal(a.rule?.name, c.rule, a.reason);
      if (c.params !== undefined) assert.deepEqual(a.params, c.params);
      assert.ok(a.reason.length > 0);
    });
  }

  test('a policy whose rules together loop past the runtime budget denies with CONDITION_BUDGET', () => {
    // Each rule is cheap enough for the static bounds; one Check evaluating all of them is not.
    const rules = Array.from({ length: 35 }, (_, i) => `    - name: loop-${i}\n      paths: ["/loop"]\n      when: "principal.claims.g.all(x, true) && request.method == 'NONE${i}'"\n`).join('');
    const { snapshot: s } = compileValid({ 't.yaml': TENANTS, 'p.yaml': POLICY('loopy', 'deny', rules) });
    const who = { ...principal('dept-revenue'), claims: { g: Array.from({ length: 6000 }, (_, i) => `g${i}`) } };
    const ctx = parseCheckRequest(checkRequest({ host: 'loopy.example', path: '/loop' }), NOW);
    const a = authorize(s.byKey.get('t/loopy')!, ctx, who);
    assert.equal(a.allowed, false);
    assert.equal(a.code, 'CONDITION_BUDGET', a.reason);
    assert.match(a.reason, /evaluation exceeded (100000 steps|5 ms)/);
    // The budget is per Check: the next Check starts afresh.
    const small = { ...who, claims: { g: ['a'] } };
    assert.equal(authorize(s.byKey.get('t/loopy')!, ctx, small).code, 'FORBIDDEN');
  });

  test('explainConditions names the operand that made each false condition false', () => {
    const ctx = parseCheckRequest(checkRequest({ host: 'main.example', path: '/v1/purpose?year=2024', headers: { 'x-purpose-of-use': 'statistics' } }), NOW);
    const policy = snapshot.byKey.get('t/main')!;
    const a = authorize(policy, ctx, principal('dept-revenue'));
    assert.equal(a.trace.find((t) => t.rule === 'purpose')!.reason, 'condition is false');
    explainConditions(policy, ctx, principal('dept-revenue'), a.trace);
    assert.equal(a.trace.find((t) => t.rule === 'purpose')!.reason, "condition is false: request.query['year'] == '2025' is false");
  });

  test('the trace explains every rule considered, in order', () => {
    const ctx = parseCheckRequest(checkRequest({ host: 'main.example', path: '/v1/items/1' }), NOW);
    const a = authorize(snapshot.byKey.get('t/main')!, ctx, principal('citizen-app'));
    assert.deepEqual(a.trace.slice(0, 3).map((t) => [t.rule, t.matched]), [['deny-blocked', false], ['deny-flagged', false], ['public', false]]);
    const first = a.trace.find((t) => t.rule === 'first-allow')!;
    assert.match(first.reason, /principal type consumer not in \[agency\]/);
  });
});
