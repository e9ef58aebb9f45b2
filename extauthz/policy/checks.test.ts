import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileYaml } from '../../test/helpers/policies.js';
import { spiffePatternsOverlap, subjectPatternsOverlap, templateCovers } from './checks.js';
import { compilePathTemplate } from './paths.js';

const tenant = (name: string, identity: string, extra = '', created = '2025-01-01T00:00:00Z'): string => `apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: ${name}, namespace: t, creationTimestamp: "${created}" }
spec:
  type: agency
  identity: ${identity}
${extra}---
`;

const policy = (name: string, hosts: string, rules: string, created = '2025-06-01T00:00:00Z'): string => `apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: ${name}, namespace: t, creationTimestamp: "${created}" }
spec:
  hosts: [${hosts}]
  rules:
${rules}---
`;

const AGENCY = tenant('agency-a', '{ mtls: { spiffeIds: ["spiffe://td/ns/a/*"] } }', '  quotas: [{ name: daily, limit: 10, per: 24h }]\n');

describe('cross-object checks: one case per mistake, each an error or warning a user can act on', () => {
  const cases: [name: string, yaml: string, expect: { code: string; severity: 'error' | 'warning'; object: string; message: RegExp; path?: string; rule?: string }][] = [
    ['two tenants with the same issuer and audience',
      tenant('one', '{ jwt: { issuer: "https://idp", audiences: [api, web], jwksUri: "https://idp/jwks" } }') + tenant('two', '{ jwt: { issuer: "https://idp", audiences: [web], jwksUri: "https://idp/jwks" } }', '', '2026-01-01T00:00:00Z'),
      { code: 'POLICY_CONFLICT', severity: 'error', object: 'Tenant t/two', message: /tenants one and two both accept JWT issuer https:\/\/idp with audience web.*the newer tenant two is refused/, path: '/spec/identity' }],
    ['overlapping SPIFFE patterns (prefix and a longer prefix)',
      tenant('wide', '{ mtls: { spiffeIds: ["spiffe://td/ns/*"] } }') + tenant('narrow', '{ mtls: { spiffeIds: ["spiffe://td/ns/a/*"] } }', '', '2026-01-01T00:00:00Z'),
      { code: 'POLICY_CONFLICT', severity: 'error', object: 'Tenant t/narrow', message: /tenants wide and narrow SPIFFE ID patterns spiffe:\/\/td\/ns\/\* and spiffe:\/\/td\/ns\/a\/\* overlap/ }],
    ['a SPIFFE pattern covering another tenant\'s exact ID',
      tenant('wide', '{ mtls: { spiffeIds: ["spiffe://td/ns/a/*"] } }') + tenant('exact', '{ mtls: { spiffeIds: ["spiffe://td/ns/a/sa/x"] } }', '', '2026-01-01T00:00:00Z'),
      { code: 'POLICY_CONFLICT', severity: 'error', object: 'Tenant t/exact', message: /wide and exact SPIFFE ID patterns spiffe:\/\/td\/ns\/a\/\* and spiffe:\/\/td\/ns\/a\/sa\/x overlap/ }],
    ['overlapping subject patterns',
      tenant('s1', '{ mtls: { subjects: ["CN=*,O=Revenue"] } }') + tenant('s2', '{ mtls: { subjects: ["cn=billing,o=revenue"] } }', '', '2026-01-01T00:00:00Z'),
      { code: 'POLICY_CONFLICT', severity: 'error', object: 'Tenant t/s2', message: /subject patterns CN=\*,O=Revenue and cn=billing,o=revenue overlap/ }],
    ['a rule naming a quota no tenant defines',
      AGENCY + policy('p', 'a.example', '    - name: r\n      quotas: [{ name: dialy }]\n'),
      { code: 'POLICY_REFERENCE', severity: 'error', object: 'ApiPolicy t/p', message: /quota "dialy" is not defined by any tenant the rule applies to \(none of agency-a defines it\)/, path: '/spec/rules/0/quotas/0/name', rule: 'r' }],
    ['a quota for principal types no tenant has',
      AGENCY + policy('p', 'a.example', '    - name: r\n      principals: { types: [partner] }\n      quotas: [{ name: daily }]\n'),
      { code: 'POLICY_REFERENCE', severity: 'error', object: 'ApiPolicy t/p', message: /no tenant in the namespace matches the rule's principals/ }],
    ['a quota some tenants of the rule lack',
      AGENCY + tenant('agency-b', '{ mtls: { spiffeIds: ["spiffe://td/ns/b/*"] } }') + policy('p', 'a.example', '    - name: r\n      quotas: [{ name: daily }]\n'),
      { code: 'POLICY_REFERENCE', severity: 'warning', object: 'ApiPolicy t/p', message: /not defined by tenant\(s\) agency-b/ }],
    ['a rule shadowed by an earlier unconditional rule',
      AGENCY + policy('p', 'a.example', '    - name: all-reads\n      methods: [GET]\n    - name: one-read\n      methods: [GET]\n      paths: ["/v1/{id}"]\n      when: "params.id != \'\'"\n'),
      { code: 'POLICY_UNREACHABLE', severity: 'warning', object: 'ApiPolicy t/p', message: /rule one-read can never allow a request: the earlier rule all-reads matches every request it matches/, path: '/spec/rules/1', rule: 'one-read' }],
    ['a rule shadowed by a deny rule',
      AGENCY + policy('p', 'a.example', '    - name: reads\n      paths: ["/admin/{x}"]\n      principals: { types: [agency] }\n    - name: no-admin\n      effect: deny\n      paths: ["/admin/**"]\n'),
      { code: 'POLICY_UNREACHABLE', severity: 'warning', object: 'ApiPolicy t/p', message: /rule reads can never allow a request: the deny rule no-admin matches every request it matches/, rule: 'reads' }],
    ['a host and path claimed by two policies',
      AGENCY + policy('first', 'a.example', '    - name: r\n      paths: ["/v1/**"]\n') + policy('second', 'a.example', '    - name: r\n      paths: ["/v1/**"]\n', '2026-01-01T00:00:00Z'),
      { code: 'POLICY_CONFLICT', severity: 'error', object: 'ApiPolicy t/second', message: /host a.example path \/v1\/\*\* is already claimed by the older policy t\/first/, path: '/spec/hosts' }],
  ];
  for (const [name, yaml, e] of cases) {
    test(name, () => {
      const c = compileYaml({ 'p.yaml': yaml });
      const found = e.severity === 'error' ? c.problems : c.warnings;
      const other = e.severity === 'error' ? c.warnings : c.problems;
      assert.equal(found.length, 1, found.map((p) => p.format()).join('\n'));
      assert.equal(other.length, 0, other.map((p) => p.format()).join('\n'));
      const p = found[0]!;
      assert.equal(p.code, e.code);
      assert.equal(p.severity, e.severity);
      assert.equal(p.location.object, e.object);
      assert.match(p.message, e.message);
      if (e.path) assert.equal(p.location.path, e.path);
      if (e.rule) assert.equal(p.location.rule, e.rule);
      const [kind, key] = e.object.split(' ') as [string, string];
      // Errors refuse the object; warnings leave it serving.
      const serving = kind === 'Tenant' ? c.snapshot.tenants.get('t')?.byName.has(key.split('/')[1]!) : c.snapshot.byKey.has(key);
      assert.equal(serving, e.severity === 'warning');
      assert.equal(c.reports.get(e.object)?.serving, e.severity === 'warning' ? 'current' : 'none');
    });
  }

  test('rules that look alike but differ are not reported', () => {
    const c = compileYaml({
      'p.yaml': AGENCY + policy('p', 'a.example', [
        '    - name: mfa-first\n      methods: [GET]\n      requireMfa: true\n',
        '    - name: without-mfa\n      methods: [GET]\n',
        '    - name: cond\n      methods: [POST]\n      when: "true"\n',
        '    - name: after-cond\n      methods: [POST]\n',
        '    - name: narrow\n      paths: ["/v1/{id}"]\n      methods: [PUT]\n',
        '    - name: wider\n      paths: ["/v1/**"]\n      methods: [PUT]\n',
        '    - name: scoped-deny\n      effect: deny\n      paths: ["/x/**"]\n      principals: { types: [consumer] }\n',
        '    - name: x-for-agencies\n      paths: ["/x/y"]\n      principals: { types: [agency] }\n',
      ].join('')),
    });
    assert.deepEqual(c.problems.map((p) => p.format()), []);
    assert.deepEqual(c.warnings.map((p) => p.format()), []);
  });
});

describe('overlap predicates', () => {
  const spiffe: [string, string, boolean][] = [
    ['spiffe://td/ns/a/*', 'spiffe://td/ns/a/*', true],
    ['spiffe://td/ns/a/*', 'spiffe://td/ns/b/*', false],
    ['spiffe://td/ns/a/*', 'spiffe://td/ns/a', false],
    ['spiffe://td/ns/a/*', 'spiffe://td/ns/a/x/y', true],
    ['spiffe://td/ns/*/sa', 'spiffe://td/ns/a/sa', true],
    ['spiffe://td/ns/*/sa', 'spiffe://td/ns/a/other', false],
    ['spiffe://td/ns/a', 'spiffe://other/ns/a', false],
    ['spiffe://td/ns/rev*', 'spiffe://td/ns/*nue', true],
    ['spiffe://td/ns/rev*', 'spiffe://td/ns/tax*', false],
  ];
  for (const [a, b, want] of spiffe) {
    test(`SPIFFE ${a} ~ ${b}: ${want}`, () => {
      assert.equal(spiffePatternsOverlap(a, b), want);
      assert.equal(spiffePatternsOverlap(b, a), want);
    });
  }
  test('subjects compare case-insensitively', () => {
    assert.equal(subjectPatternsOverlap('CN=a,O=X', 'cn=A,o=x'), true);
    assert.equal(subjectPatternsOverlap('CN=a,O=X', 'CN=b,O=X'), false);
  });
  const paths: [string, string, boolean][] = [
    ['/v1/**', '/v1/{id}', true],
    ['/v1/{id}', '/v1/**', false],
    ['/v1/*', '/v1/x', true],
    ['/v1/x', '/v1/*', false],
    ['/**', '/', true],
    ['/v1/{a}/x', '/v1/{b}/x', true],
    ['/v1/{a}', '/v1/{a}/x', false],
    ['/v1/**', '/v1/**', true],
  ];
  for (const [a, b, want] of paths) {
    test(`path ${a} covers ${b}: ${want}`, () => assert.equal(templateCovers(compilePathTemplate(a), compilePathTemplate(b)), want));
  }
});
