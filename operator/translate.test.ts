import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { childName, istioPath, translate, type OutputConfig, type TranslateInput } from './translate.js';

// Golden files live beside the sources: operator/testdata/translate/<case>/{input,output}.yaml.
// Regenerate with UPDATE_GOLDEN=1 and review the diff.
const DIR = fileURLToPath(new URL('../../operator/testdata/translate/', import.meta.url));
const UPDATE = process.env.UPDATE_GOLDEN === '1';

const CONFIG: OutputConfig = {
  istio: true,
  envoyGateway: true,
  istioProvider: 'portcullis',
  service: { name: 'portcullis-extauthz', namespace: 'portcullis-system', authzPort: 9001, extProcPort: 9002 },
  timeout: '500ms',
};

interface GoldenInput {
  policy: TranslateInput['policy'];
  services: Record<string, Record<string, string> | null>;
  agencyReachable: boolean;
  outputs?: Partial<OutputConfig>;
}

describe('translate (golden files)', () => {
  for (const name of readdirSync(DIR).sort()) {
    test(name, () => {
      const input = parse(readFileSync(`${DIR}${name}/input.yaml`, 'utf8')) as GoldenInput;
      const services = new Map(Object.entries(input.services).map(([k, v]) => [k, v ?? undefined]));
      const out = translate({ policy: input.policy, serviceSelectors: services, agencyReachable: input.agencyReachable }, { ...CONFIG, ...(input.outputs ?? {}) });
      const actual = stringify(out, { sortMapEntries: false, aliasDuplicateObjects: false });
      const file = `${DIR}${name}/output.yaml`;
      if (UPDATE) writeFileSync(file, actual);
      assert.equal(actual, readFileSync(file, 'utf8'), `golden ${name} differs; rerun with UPDATE_GOLDEN=1 and review`);
    });
  }
});

describe('translate helpers', () => {
  const cases: [string, string][] = [
    ['/v1/citizens/{id}/records', '/v1/citizens/{*}/records'],
    ['/v1/stats/**', '/v1/stats/{**}'],
    ['/a/*/b', '/a/{*}/b'],
    ['/plain', '/plain'],
  ];
  for (const [template, expected] of cases) {
    test(`istioPath ${template}`, () => assert.equal(istioPath(template), expected));
  }
  test('childName stays within 63 characters and unique', () => {
    const long = 'x'.repeat(80);
    const a = childName(long);
    const b = childName(long + 'y');
    assert.ok(a.length <= 63 && b.length <= 63);
    assert.notEqual(a, b);
    assert.equal(childName('short'), 'portcullis-short');
  });
  test('the translation is pure: same input, same output', () => {
    const input: TranslateInput = {
      policy: { apiVersion: 'portcullis.io/v1alpha1', kind: 'ApiPolicy', metadata: { name: 'p', namespace: 'n', uid: 'u' }, spec: { hosts: ['a.example'], rules: [{ name: 'r' }], targetRefs: [{ kind: 'Service', name: 's' }] } },
      serviceSelectors: new Map([['s', { app: 's' }]]),
      agencyReachable: false,
    };
    assert.deepEqual(translate(input, CONFIG), translate(input, CONFIG));
  });
});
