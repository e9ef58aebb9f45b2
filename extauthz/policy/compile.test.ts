import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileValid, compileYaml } from '../../test/helpers/policies.js';
import { POLICY_CONTEXT_KEY } from './snapshot.js';
import { cachedRules, MAX_CACHED_RULES } from './compile.js';

const policy = (name: string, body: string, meta = ''): string => `apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: ${name}, namespace: t${meta} }
spec:
${body}`;

const rulesOn = (host: string, rules: string): string => `  hosts: [${host}]\n  rules:\n${rules}`;

const TENANT = `apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: known, namespace: t }
spec:
  type: agency
  identity: { mtls: { spiffeIds: ["spiffe://td/ns/a/*"] } }
---
`;

describe('compiler: problems name the policy, rule, field and position', () => {
  const cases: [name: string, rules: string, code: string, path: string, message: RegExp, line?: number, column?: number][] = [
    ['CEL syntax error', '    - name: broken-cel\n      when: "principal.subject =="\n', 'POLICY_CEL', '/spec/rules/0/when', /./, 1],
    ['CEL error on line 2 of a block', '    - name: multi\n      paths: ["/v1/{id}"]\n      when: |\n        principal.subject == params.id &&\n        nosuchvar == 1\n', 'POLICY_CEL', '/spec/rules/0/when', /./, 2],
    ['CEL not bool', '    - name: not-bool\n      when: "params.id"\n', 'POLICY_CEL', '/spec/rules/0/when', /must return bool/, 1, 1],
    ['non-literal matches', '    - name: dyn-re\n      when: "request.path.matches(request.headers[\'x\'])"\n', 'POLICY_CEL', '/spec/rules/0/when', /string literal pattern/, 1, 22],
    ['typo in a principal field', '    - name: typo\n      when: "principal.subjet == \'u\'"\n', 'POLICY_CEL', '/spec/rules/0/when', /principal has no field "subjet"; did you mean "subject"\?/, 1, 11],
    ['typo in a request field', '    - name: typo\n      when: "request.heders[\'x\'] == \'u\'"\n', 'POLICY_CEL', '/spec/rules/0/when', /request has no field "heders"; did you mean "headers"\?/, 1, 9],
    ['typo in a tenant field', '    - name: typo\n      when: "tenant.atributes.x == \'u\'"\n', 'POLICY_CEL', '/spec/rules/0/when', /tenant has no field "atributes"; did you mean "attributes"\?/, 1, 8],
    ['has() of an unknown field', '    - name: has-typo\n      when: "has(principal.claim)"\n', 'POLICY_CEL', '/spec/rules/0/when', /principal has no field "claim"; did you mean "claims"\?/, 1, 15],
    ['param the path does not capture', '    - name: param\n      paths: ["/v1/citizens/{id}"]\n      when: "principal.subject == params.ID"\n', 'POLICY_CEL', '/spec/rules/0/when', /params.ID: \{ID\} is not captured by every path of this rule \(paths \/v1\/citizens\/\{id\}\); did you mean "id"\?/, 1, 29],
    ['param only one path captures', '    - name: param\n      paths: ["/v1/{id}", "/v2/all"]\n      when: "params.id == \'u\'"\n', 'POLICY_CEL', '/spec/rules/0/when', /not every path captures it/, 1, 8],
    ['param on a rule without paths', '    - name: param\n      when: "params.id == \'u\'"\n', 'POLICY_CEL', '/spec/rules/0/when', /no paths/, 1, 8],
    ['quota key with a field typo', '    - name: qkey\n      quotas: [{ name: q, limit: 5, per: 1s, key: "principal.subjct" }]\n', 'POLICY_CEL', '/spec/rules/0/quotas/0/key', /key: principal has no field "subjct"/, 1, 11],
    ['quota cost with an uncaptured param', '    - name: qcost\n      paths: ["/v1/{id}"]\n      quotas: [{ name: q, limit: 5, per: 1s, cost: "size(params.page)" }]\n', 'POLICY_CEL', '/spec/rules/0/quotas/0/cost', /params.page/, 1, 13],
    ['helper function the compiler adds', '    - name: helper\n      when: "request.path.portcullisRe2Matches(\'a\')"\n', 'POLICY_CEL', '/spec/rules/0/when', /no matching overload/, 1],
    ['1e9-step condition', `    - name: runaway\n      when: "cel.bind(l, [${Array(1000).fill(0).join(',')}], l.all(a, l.all(b, l.all(c, a + b + c >= 0))))"\n`, 'POLICY_CEL_COST', '/spec/rules/0/when', /when: estimated cost \d{10,} exceeds the limit of 50000/],
    ['runaway quota cost', '    - name: qrun\n      quotas: [{ name: q, limit: 5, per: 1s, cost: "request.headers.all(k, request.headers.all(j, true)) ? 1 : 2" }]\n', 'POLICY_CEL_COST', '/spec/rules/0/quotas/0/cost', /cost: estimated cost \d+ exceeds the limit/],
    ['bad path template', '    - name: bad-path\n      paths: ["/v1/**/x"]\n', 'POLICY_INVALID', '/spec/rules/0/paths', /\*\*/],
    ['unknown tenant', '    - name: who\n      principals: { tenants: [nobody] }\n', 'POLICY_INVALID', '/spec/rules/0/principals/tenants', /unknown tenant "nobody"/],
  ];
  for (const [name, rules, code, path, message, line, column] of cases) {
    test(name, () => {
      const c = compileYaml({ 'p.yaml': TENANT + policy('p', rulesOn('api.example', '    - name: fine\n' + rules)) });
      assert.equal(c.problems.length, 1, c.problems.map((p) => p.format()).join('\n'));
      const p = c.problems[0]!;
      assert.equal(p.code, code);
      assert.match(p.message, message);
      assert.equal(p.location.path, path.replace('/0/', '/1/'));
      assert.equal(p.location.rule, rules.match(/name: ([a-z-]+)/)![1]);
      assert.equal(p.location.file, 'p.yaml');
      assert.equal(p.location.document, 2);
      assert.equal(p.location.object, 'ApiPolicy t/p');
      if (line !== undefined) assert.equal(p.location.line, line);
      if (column !== undefined) assert.equal(p.location.column, column);
      // A broken policy is left out of the snapshot; nothing half-loaded.
      assert.equal(c.snapshot.byKey.has('t/p'), false);
      assert.deepEqual([...c.policyProblems.keys()], ['t/p']);
    });
  }
});

describe('compiler: the CEL expressions of one policy together are bounded', () => {
  test('many rules each under the per-expression limit, together over the policy limit, are refused', () => {
    const rule = (i: number): string => `    - name: r${i}\n      when: "principal.claims.scopes.exists(s, s == 'x${i}')"\n`;
    const c = compileYaml({ 'p.yaml': policy('p', rulesOn('api.example', Array.from({ length: 20 }, (_, i) => rule(i)).join(''))) });
    assert.equal(c.problems.length, 1, c.problems.map((p) => p.format()).join('\n'));
    const p = c.problems[0]!;
    assert.equal(p.code, 'POLICY_CEL_COST');
    assert.match(p.message, /together have an estimated cost of \d+, more than the limit of 500000 \(largest: r\d+ \d+/);
    assert.equal(c.snapshot.byKey.has('t/p'), false);
  });

  test('a few such rules load', () => {
    const rule = (i: number): string => `    - name: r${i}\n      when: "principal.claims.scopes.exists(s, s == 'x${i}')"\n`;
    const c = compileYaml({ 'p.yaml': policy('p', rulesOn('api.example', Array.from({ length: 3 }, (_, i) => rule(i)).join(''))) });
    assert.deepEqual(c.problems, []);
  });
});

describe('compiler: tenant problems', () => {
  const tenant = (identity: string, extra = ''): string => `apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: x, namespace: t }
spec:
  type: partner
  identity:
${identity}
${extra}`;
  const cases: [string, string, RegExp][] = [
    ['a raw API key in the Secret is refused (only hashes)', tenant('    apiKeys: { secretRef: { name: keys } }', '---\napiVersion: v1\nkind: Secret\nmetadata: { name: keys, namespace: t }\nstringData: { k1: my-raw-api-key }\n'), /hex SHA-256 digest, not a raw key/],
    ['a missing Secret', tenant('    apiKeys: { secretRef: { name: nope } }'), /Secret t\/nope not found/],
    ['a private key in inline jwks', tenant('    jwt: { issuer: https://i, audiences: [a], jwks: { keys: [{ kty: EC, crv: P-256, x: a, y: b, d: secret }] } }'), /public asymmetric keys only/],
    ['a symmetric key in inline jwks', tenant('    jwt: { issuer: https://i, audiences: [a], jwks: { keys: [{ kty: oct, k: c2VjcmV0 }] } }'), /public asymmetric keys only/],
    ['plain http jwksUri off loopback', tenant('    jwt: { issuer: https://i, audiences: [a], jwksUri: "http://idp.example/jwks" }'), /must use https/],
  ];
  for (const [name, yaml, message] of cases) {
    test(name, () => {
      const c = compileYaml(yaml);
      assert.equal(c.problems.length, 1, c.problems.map((p) => p.format()).join('\n'));
      assert.equal(c.problems[0]!.code, 'POLICY_INVALID');
      assert.match(c.problems[0]!.message, message);
      assert.equal(c.problems[0]!.location.object, 'Tenant t/x');
      assert.equal(c.snapshot.tenants.get('t')?.byName.has('x') ?? false, false);
    });
  }

  test('two tenants accepting the same issuer and audience clash', () => {
    const t = (name: string): string => tenant('    jwt: { issuer: https://i, audiences: [a], jwksUri: "https://i/jwks" }').replace('name: x', `name: ${name}`);
    const c = compileYaml(`${t('one')}---\n${t('two')}`);
    assert.equal(c.problems.length, 1);
    assert.equal(c.problems[0]!.code, 'POLICY_CONFLICT');
    assert.match(c.problems[0]!.message, /tenants one and two both accept JWT issuer https:\/\/i with audience a/);
  });
});

describe('snapshot: routing and conflicts', () => {
  const older = policy('older', rulesOn('api.example', '    - name: a\n      paths: ["/v1/{id}"]\n'), ', creationTimestamp: "2025-01-01T00:00:00Z"');
  const newer = policy('newer', rulesOn('api.example', '    - name: b\n      paths: ["/v1/{name}"]\n    - name: c\n      paths: ["/v2/**"]\n'), ', creationTimestamp: "2026-01-01T00:00:00Z"');

  test('two policies on the same host and path: the newer is refused with an error naming the older', () => {
    // File order is the reverse of age, so the result cannot come from load order.
    const c = compileYaml({ '1.yaml': newer, '2.yaml': older });
    assert.equal(c.snapshot.conflicts.length, 1);
    const conflict = c.problems[0]!;
    assert.equal(c.problems.length, 1);
    assert.equal(conflict.code, 'POLICY_CONFLICT');
    assert.equal(conflict.location.object, 'ApiPolicy t/newer');
    assert.match(conflict.message, /host api.example path \/v1\/\* is already claimed by the older policy t\/older/);
    assert.deepEqual([...c.policyProblems.keys()], ['t/newer']);
    assert.equal(c.snapshot.route('api.example', ['v1', 'x'], {})?.key, 't/older');
    // Refused means refused: the newer policy does not serve its other paths either.
    assert.equal(c.snapshot.byKey.has('t/newer'), false);
    assert.equal(c.snapshot.route('api.example', ['v2', 'x'], {})?.key, 't/older');
  });

  test('two policies on one host with disjoint paths both serve', () => {
    const other = policy('other', rulesOn('api.example', '    - name: b\n      paths: ["/v2/**"]\n'), ', creationTimestamp: "2026-01-01T00:00:00Z"');
    const c = compileValid({ '1.yaml': other, '2.yaml': older });
    assert.equal(c.snapshot.route('api.example', ['v1', 'x'], {})?.key, 't/older');
    assert.equal(c.snapshot.route('api.example', ['v2', 'x'], {})?.key, 't/other');
  });

  test('the portcullis.io/policy context extension selects a policy directly', () => {
    const other = policy('newer', rulesOn('api.example', '    - name: b\n      paths: ["/v2/**"]\n'), ', creationTimestamp: "2026-01-01T00:00:00Z"');
    const c = compileValid({ '1.yaml': other, '2.yaml': older });
    assert.equal(c.snapshot.route('api.example', ['v1', 'x'], { [POLICY_CONTEXT_KEY]: 't/newer' })?.key, 't/newer');
    assert.equal(c.snapshot.route('api.example', ['v1', 'x'], { [POLICY_CONTEXT_KEY]: 't/missing' }), undefined);
    assert.equal(c.snapshot.route('other.example', [], { [POLICY_CONTEXT_KEY]: 't/older' })?.key, 't/older');
  });

  test('hosts: exact before wildcard, no match is undefined', () => {
    const exact = policy('exact', rulesOn('a.wild.example', '    - name: r\n'));
    const wild = policy('wild', rulesOn('"*.wild.example"', '    - name: r\n'));
    const c = compileValid({ 'p.yaml': `${exact}---\n${wild}` });
    assert.equal(c.snapshot.route('a.wild.example', [], {})?.key, 't/exact');
    assert.equal(c.snapshot.route('b.wild.example', [], {})?.key, 't/wild');
    assert.equal(c.snapshot.route('wild.example', [], {}), undefined);
  });

  test('snapshot versions increase', () => {
    const a = compileValid(older).snapshot.version;
    const b = compileValid(older).snapshot.version;
    assert.ok(b > a);
  });
});

describe('compiler: rules compiled once per content', () => {
  const rules = (when: string): string => `    - name: a\n      paths: ["/v1/{id}"]\n      when: "${when}"\n    - name: b\n      methods: [GET]\n`;
  const twin = (name: string, host: string, when: string, extra = ''): string => policy(name, `${extra}${rulesOn(host, rules(when))}`);

  test('policies stamped from one template share their compiled rules; one differing rule compiles alone', () => {
    const c = compileValid({ 'p.yaml': [twin('one', 'one.example', 'params.id == \'x\''), twin('two', 'two.example', 'params.id == \'x\''), twin('three', 'three.example', 'params.id == \'y\'')].join('---\n') });
    const [one, two, three] = ['t/one', 't/two', 't/three'].map((k) => c.snapshot.byKey.get(k)!);
    assert.equal(two!.rules[0], one!.rules[0]);
    assert.equal(two!.rules[1], one!.rules[1]);
    assert.notEqual(three!.rules[0], one!.rules[0]);
    assert.equal(three!.rules[0]!.when?.source, "params.id == 'y'");
    assert.equal(three!.rules[1], one!.rules[1], 'the unchanged rule is shared');
    assert.deepEqual([one!.key, two!.key, three!.key], ['t/one', 't/two', 't/three'], 'each policy stays its own object');
  });

  test('a shared rule does not hide what is wrong with the policy around it', () => {
    const good = twin('good', 'good.example', 'true');
    const badMask = twin('bad-mask', 'bad.example', 'true', '  defaultMask: [{ field: "$.[", action: remove }]\n');
    const c = compileYaml({ 'p.yaml': `${good}---\n${badMask}` });
    assert.equal(c.policyProblems.has('t/good'), false);
    assert.match(c.policyProblems.get('t/bad-mask')?.[0]?.location.path ?? '', /^\/spec\/defaultMask/);
    const again = compileYaml({ 'p.yaml': `${good}---\n${twin('bad-cel', 'cel.example', 'principal.subjet == 1')}` });
    assert.equal(again.policyProblems.get('t/bad-cel')?.[0]?.code, 'POLICY_CEL', 'a rule that does not compile is never served from the cache');
  });

  test('the cache stays bounded', () => {
    const docs = Array.from({ length: MAX_CACHED_RULES + 20 }, (_, i) => twin(`p${i}`, `p${i}.example`, `params.id == '${i}'`));
    const files: Record<string, string> = {};
    for (let i = 0; i < docs.length; i += 400) files[`p${i}.yaml`] = docs.slice(i, i + 400).join('---\n');
    compileValid(files);
    assert.ok(cachedRules() <= MAX_CACHED_RULES, String(cachedRules()));
  });
});
