import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { PolicyError } from '../errors.js';
import { loadYaml, sharedValidator, tempPolicyDir } from '../../test/helpers/policies.js';
import { billionLaughs, deepBlock, deepFlow } from '../../test/helpers/hostile-yaml.js';
import { loadPolicyDir, YAML_LIMITS } from './load.js';
import { tenantsYaml } from '../../test/helpers/fixtures.js';

const POLICY = (rules: string, extra = ''): string => `# a comment line
apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: p, namespace: t }
spec:
  hosts: [api.example]${extra}
  rules:
${rules}`;

const TENANT = (identity: string): string => `apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: x, namespace: t }
spec:
  type: partner
  identity:
${identity}`;

interface Expect {
  code: PolicyError['code'];
  message: RegExp;
  document?: number;
  path?: string;
  line?: number;
}

function only(text: string, file = 'f.yaml'): PolicyError {
  const { problems } = loadYaml({ [file]: text });
  assert.equal(problems.length, 1, problems.map((p) => p.format()).join('\n'));
  return problems[0]!;
}

describe('loading: schema and YAML problems name file, document, path and line', () => {
  const cases: [string, string, Expect][] = [
    ['unknown field', POLICY('    - name: r\n      colour: blue\n'), { code: 'POLICY_SCHEMA', message: /unknown field "colour"/, path: '/spec/rules/0', line: 8 }],
    ['bad enum', POLICY('    - name: r\n      methods: [FETCH]\n'), { code: 'POLICY_SCHEMA', message: /one of GET/, path: '/spec/rules/0/methods/0', line: 9 }],
    ['missing required', POLICY('    - effect: allow\n'), { code: 'POLICY_SCHEMA', message: /name/, path: '/spec/rules/0', line: 8 }],
    ['bad host pattern', POLICY('    - name: r\n').replace('api.example', 'API..example'), { code: 'POLICY_SCHEMA', message: /pattern/, path: '/spec/hosts/0', line: 6 }],
    ['CRD CEL rule on a rule', POLICY('    - name: r\n      effect: deny\n      requireMfa: true\n'), { code: 'POLICY_SCHEMA', message: /deny rules cannot carry/, path: '/spec/rules/0', line: 8 }],
    [
      'CRD CEL rule: jwks and jwksUri both set',
      TENANT('    jwt:\n      issuer: https://i\n      audiences: [a]\n      jwksUri: https://i/jwks\n      jwks: { keys: [{ kty: EC }] }\n'),
      { code: 'POLICY_SCHEMA', message: /exactly one of jwksUri, jwks or issuerUrl/, path: '/spec/identity/jwt', line: 8 },
    ],
    ['CRD CEL rule: identity empty', TENANT('    {}\n'), { code: 'POLICY_SCHEMA', message: /at least one of jwt, mtls, apiKeys or introspection/, path: '/spec/identity' }],
    ['not YAML', 'apiVersion: [unclosed\n', { code: 'POLICY_YAML', message: /./, document: 1, line: 2 }],
    ['duplicate key', 'a: 1\na: 2\n', { code: 'POLICY_YAML', message: /./, line: 2 }],
    ['bad metadata name', POLICY('    - name: r\n').replace('name: p,', 'name: Bad_Name,'), { code: 'POLICY_SCHEMA', message: /DNS subdomain/, path: '/metadata' }],
    ['unknown portcullis kind', 'apiVersion: portcullis.io/v1alpha1\nkind: Gate\nmetadata: { name: g }\n', { code: 'POLICY_SCHEMA', message: /unknown kind/ }],
    ['a scalar document', '--- just a string\n', { code: 'POLICY_SCHEMA', message: /must be a Kubernetes object/ }],
  ];
  for (const [name, text, want] of cases) {
    test(name, () => {
      const p = only(text);
      assert.equal(p.code, want.code, p.format());
      assert.match(p.message, want.message);
      assert.equal(p.location.file, 'f.yaml');
      assert.equal(p.location.document, want.document ?? 1);
      if (want.path !== undefined) assert.equal(p.location.path, want.path, p.format());
      if (want.line !== undefined) assert.equal(p.location.line, want.line, p.format());
      assert.match(p.format(), /^f\.yaml#1[ :]/);
    });
  }

  test('the document number counts from 1 in multi-document files', () => {
    const p = only(`${POLICY('    - name: ok\n')}---\n${POLICY('    - name: r\n      colour: blue\n')}`);
    assert.equal(p.location.document, 2);
    assert.equal(p.location.object, 'ApiPolicy t/p');
  });

  test('every problem of a file is reported, not just the first', () => {
    const { problems } = loadYaml({ 'f.yaml': POLICY('    - name: r\n      colour: blue\n      methods: [FETCH]\n') });
    assert.ok(problems.length >= 2, problems.map((p) => p.format()).join('\n'));
  });

  test('defaults from the CRD are applied', () => {
    const { sources, problems } = loadYaml({ 'f.yaml': POLICY('    - name: r\n') });
    assert.deepEqual(problems, []);
    const spec = sources.policies[0]!.spec;
    assert.equal(spec.defaultAction, 'deny');
    assert.equal(spec.rules[0]!.effect, 'allow');
  });

  test('non-Portcullis objects are skipped; Secrets are read (stringData over data)', () => {
    const text = `apiVersion: v1\nkind: Namespace\nmetadata: { name: t }\n---\napiVersion: v1\nkind: Secret\nmetadata: { name: s, namespace: t }\ndata: { a: ${Buffer.from('from-data').toString('base64')}, b: ${Buffer.from('x').toString('base64')} }\nstringData: { b: from-string }\n`;
    const r = loadYaml({ 'f.yaml': text });
    assert.deepEqual(r.problems, []);
    assert.equal(r.skipped.length, 1);
    assert.deepEqual(r.sources.secrets[0]!.values, { a: 'from-data', b: 'from-string' });
  });

  test('the standard fixture tenants load cleanly', () => {
    const r = loadYaml({ 't.yaml': tenantsYaml('https://idp.example/jwks') });
    assert.deepEqual(r.problems.map((p) => p.format()), []);
    assert.equal(r.sources.tenants.length, 4);
  });
});

describe('hostile YAML from a semi-trusted author: bounded, and reported as POLICY_YAML with file and document', () => {
  const valid = TENANT('    apiKeys: { secretRef: { name: k } }\n');
  // [name, document text, message, whether the file's other documents still load (false: refused before parsing)]
  const cases: [string, string, RegExp, boolean][] = [
    ['billion laughs (aliases)', billionLaughs(), /more aliases than the limit of 100/, true],
    ['flow nesting', deepFlow(YAML_LIMITS.depth + 1), /flow nesting deeper than 64/, false],
    ['flow nesting 200 000 deep is refused before parsing', deepFlow(200_000), /flow nesting deeper than 64/, false],
    ['block nesting', deepBlock(YAML_LIMITS.depth + 1), /nesting deeper than 64/, true],
    ['a document over the size limit', `apiVersion: v1\nkind: ConfigMap\ndata: { x: "${'a'.repeat(YAML_LIMITS.documentBytes)}" }\n`, /document larger than/, true],
  ];
  for (const [name, hostile, message, othersLoad] of cases) {
    test(name, () => {
      const { problems, sources } = loadYaml({ 'bad.yaml': `${valid}---\n${hostile}` });
      assert.equal(problems.length, 1, problems.map((p) => p.format()).join('\n'));
      const p = problems[0]!;
      assert.equal(p.code, 'POLICY_YAML');
      assert.match(p.message, message);
      assert.deepEqual([p.location.file, p.location.document], ['bad.yaml', 2]);
      assert.equal(sources.tenants.length, othersLoad ? 1 : 0);
    });
  }

  test('too many documents in one file', () => {
    const p = only(Array.from({ length: YAML_LIMITS.documentsPerFile + 1 }, () => 'a: 1\n').join('---\n'), 'many.yaml');
    assert.equal(p.code, 'POLICY_YAML');
    assert.match(p.message, /more than 500 documents/);
    assert.equal(p.location.document, YAML_LIMITS.documentsPerFile + 1);
  });

  test('a file over the size limit is not read', () => {
    const dir = tempPolicyDir({ 'big.yaml': `# ${'x'.repeat(YAML_LIMITS.fileBytes)}\n`, 'ok.yaml': valid });
    try {
      const r = loadPolicyDir(dir.dir, sharedValidator());
      assert.equal(r.problems.length, 1);
      assert.equal(r.problems[0]!.code, 'POLICY_YAML');
      assert.match(r.problems[0]!.format(), /big\.yaml: POLICY_YAML: cannot read file: larger than 1048576 bytes/);
      assert.equal(r.sources.tenants.length, 1);
    } finally {
      dir.remove();
    }
  });
});
