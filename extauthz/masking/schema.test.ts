import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compileYaml } from '../../test/helpers/policies.js';
import { MaskSet } from './engine.js';
import { parsePath, select, type PathStep } from './path.js';
import { checkPathAgainstSchema, SchemaPathError } from './schema.js';

const RECORDS = {
  type: 'object',
  properties: {
    id: { type: 'string' },
    records: { type: 'array', items: { $ref: '#/$defs/record' } },
    owner: { anyOf: [{ type: 'null' }, { type: 'object', properties: { name: { type: 'string' }, taxId: { type: 'string' } } }] },
    extra: { type: 'object', additionalProperties: { type: 'object', properties: { ssn: { type: 'string' } } } },
    free: { type: 'object' },
  },
  $defs: { record: { type: 'object', properties: { taxId: { type: 'string' }, year: { type: 'integer' } } } },
};

describe('mask paths against a responseSchema', () => {
  const ok = ['$.id', '$.records[*].taxId', '$.records[0].year', '$.owner.taxId', '$..taxId', '$.extra.anything.ssn', '$.extra[*].ssn', '$.free.whatever.below', '$.*'];
  for (const path of ok) test(`accepts ${path}`, () => checkPathAgainstSchema(parsePath(path), RECORDS));

  const bad: [string, RegExp][] = [
    ['$.records[*].taxID', /\$\.records\[\*\] has no member "taxID" \(did you mean "taxId"\?\)/],
    ['$.Records[*].taxId', /the document has no member "Records" \(did you mean "records"\?\)/],
    ['$.records.taxId', /\$\.records has no member "taxId"/],
    ['$.id.value', /\$\.id has no member "value"/],
    ['$.owner.ssn', /\$\.owner has no member "ssn"/],
    ['$.records[*]..ssnn', /has no member "ssnn" at any depth/],
    ['$.records[*].year[0]', /\$\.records\[\*\]\.year has no element \[0\]/],
  ];
  for (const [path, message] of bad) {
    test(`refuses ${path}`, () => {
      assert.throws(() => checkPathAgainstSchema(parsePath(path), RECORDS), (e: unknown) => e instanceof SchemaPathError && message.test(e.message));
    });
  }

  test('an unresolvable $ref is reported', () => {
    assert.throws(() => checkPathAgainstSchema(parsePath('$.a.b'), { type: 'object', properties: { a: { $ref: '#/nowhere' } } }), /does not resolve/);
  });

  test('through the compiler: POLICY_MASK_PATH on the mask, with the rule and field pointer', () => {
    const c = compileYaml(`apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: p, namespace: t }
spec:
  hosts: [a.example]
  rules:
    - name: read
      principals: { anonymous: true }
      responseSchema:
        inline: { type: object, properties: { records: { type: array, items: { type: object, properties: { taxId: { type: string } } } } } }
      mask: [{ field: "$.records[*].taxId", action: remove }, { field: "$.records[*].TaxId", action: remove }]
`);
    assert.equal(c.problems.length, 1, c.problems.map((p) => p.format()).join('\n'));
    const p = c.problems[0]!;
    assert.equal(p.code, 'POLICY_MASK_PATH');
    assert.equal(p.location.path, '/spec/rules/0/mask/1/field');
    assert.equal(p.location.rule, 'read');
    assert.match(p.message, /did you mean "taxId"/);
  });
});

// ---- property: a mask path the schema accepts removes (or redacts) every value at that path ----

type Gen = { schema: Record<string, unknown>; paths: PathStep[][] };
const NAMES = ['a', 'b', 'taxId', 'ssn', 'x_1'];

/** A random schema (objects, arrays, strings) with every path it allows, down to scalars. */
function schemaArb(depth: number): fc.Arbitrary<Gen> {
  const leaf = fc.constant<Gen>({ schema: { type: 'string' }, paths: [[]] });
  if (depth === 0) return leaf;
  const obj = fc.uniqueArray(fc.constantFrom(...NAMES), { minLength: 1, maxLength: 3 }).chain((names) =>
    fc.tuple(...names.map(() => schemaArb(depth - 1))).map((kids): Gen => ({
      schema: { type: 'object', properties: Object.fromEntries(names.map((n, i) => [n, kids[i]!.schema])), required: names, additionalProperties: false },
      paths: names.flatMap((n, i) => kids[i]!.paths.map((p) => [{ kind: 'key' as const, name: n }, ...p])),
    })),
  );
  const arr = schemaArb(depth - 1).map((k): Gen => ({ schema: { type: 'array', items: k.schema, minItems: 1 }, paths: k.paths.flatMap((p) => [[{ kind: 'wild' as const }, ...p], [{ kind: 'index' as const, index: 0 }, ...p]]) }));
  return fc.oneof(leaf, obj, arr);
}

/** A document the schema allows, with every property present and arrays non-empty. */
function docArb(schema: Record<string, unknown>): fc.Arbitrary<unknown> {
  if (schema.type === 'string') return fc.string({ minLength: 1, maxLength: 8 }).map((s) => `v-${s}`);
  if (schema.type === 'array') return fc.array(docArb(schema.items as Record<string, unknown>), { minLength: 1, maxLength: 3 });
  const props = Object.entries(schema.properties as Record<string, Record<string, unknown>>);
  return fc.tuple(...props.map(([, s]) => docArb(s))).map((vals) => Object.fromEntries(props.map(([k], i) => [k, vals[i]])));
}

const source = (steps: PathStep[]): string => '$' + steps.map((s) => (s.kind === 'key' ? `.${s.name}` : s.kind === 'wild' ? '[*]' : s.kind === 'index' ? `[${s.index}]` : `..${s.name}`)).join('');

const caseArb = fc.integer({ min: 1, max: 3 }).chain((d) => schemaArb(d)).filter((g) => g.paths.some((p) => p.length > 0)).chain((g) =>
  fc.record({ g: fc.constant(g), path: fc.constantFrom(...g.paths.filter((p) => p.length > 0)), doc: docArb(g.schema) }),
);

describe('property: a mask checked against a schema masks every value at its path', () => {
  test('redact: every value the path selects in a conforming document is replaced, and there is at least one', () => {
    fc.assert(
      fc.property(caseArb, ({ g, path, doc }) => {
        const field = source(path);
        checkPathAgainstSchema(parsePath(field), g.schema);
        const before = select(doc, parsePath(field)).length;
        const set = new MaskSet({ masks: [{ field, action: 'redact', replacement: '#MASKED#' }] });
        const r = set.applyWithReport(structuredClone(doc));
        const after = select(r.doc, parsePath(field)).map((l) => (l.parent as Record<string | number, unknown>)[l.key]);
        assert.ok(before > 0);
        assert.equal(after.length, before);
        assert.ok(after.every((v) => v === '#MASKED#'));
        assert.deepEqual(r.unmatched, []);
        assert.ok(!JSON.stringify(r.doc).includes('"v-') || select(r.doc, parsePath(field)).length === before);
      }),
      { numRuns: 300 },
    );
  });

  test('remove: no value is left at a path without index steps', () => {
    fc.assert(
      fc.property(caseArb.filter(({ path }) => path.every((s) => s.kind !== 'index')), ({ g, path, doc }) => {
        const field = source(path);
        checkPathAgainstSchema(parsePath(field), g.schema);
        const r = new MaskSet({ masks: [{ field, action: 'remove' }] }).applyWithReport(structuredClone(doc));
        assert.deepEqual(select(r.doc, parsePath(field)), []);
        assert.deepEqual(r.unmatched, []);
      }),
      { numRuns: 300 },
    );
  });

  test('a path the schema refuses never selects anything in a conforming document', () => {
    fc.assert(
      fc.property(caseArb, fc.constantFrom(...NAMES, 'TaxId', 'zz'), ({ g, path, doc }, extra) => {
        const field = `${source(path)}.${extra}`;
        let refused = false;
        try {
          checkPathAgainstSchema(parsePath(field), g.schema);
        } catch (e) {
          refused = e instanceof SchemaPathError;
        }
        if (refused) assert.deepEqual(select(doc, parsePath(field)), []);
      }),
      { numRuns: 300 },
    );
  });
});
