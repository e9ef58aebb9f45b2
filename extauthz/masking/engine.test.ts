import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { compileMaskSet, MaskCompileError, type MaskSpec } from './engine.js';
import { parsePath, MaskPathError } from './path.js';
import { pseudonym } from './actions.js';
import type { MaskDirective } from '../policy/model.js';

const hashKey = randomBytes(32);
const mask = (spec: MaskSpec, doc: unknown): unknown => compileMaskSet(spec, { hashKey }).apply(structuredClone(doc));
const one = (d: MaskDirective, doc: unknown): unknown => mask({ masks: [d] }, doc);

describe('path parser', () => {
  const ok: [string, string][] = [
    ['$.a.b', '[{"kind":"key","name":"a"},{"kind":"key","name":"b"}]'],
    ['$.items[*].x', '[{"kind":"key","name":"items"},{"kind":"wild"},{"kind":"key","name":"x"}]'],
    ['$..ssn', '[{"kind":"descend","name":"ssn"}]'],
    ["$['first name'][0]", '[{"kind":"key","name":"first name"},{"kind":"index","index":0}]'],
    ['$.*', '[{"kind":"wild"}]'],
    ["$..['Straße']", '[{"kind":"descend","name":"Straße"}]'],
  ];
  for (const [src, steps] of ok) test(`parses ${src}`, () => assert.equal(JSON.stringify(parsePath(src).steps), steps));
  for (const bad of ['', 'a.b', '$', '$.', '$..', '$[', '$[1', "$['x", '$.a[?(@.x)]', '$..[*]', '$ .a', '$.a..']) {
    test(`rejects ${JSON.stringify(bad)}`, () => assert.throws(() => parsePath(bad), MaskPathError));
  }
});

describe('actions on path forms (table)', () => {
  const doc = {
    name: 'Ada Lovelace',
    taxId: '123456789',
    born: '1815-12-10',
    income: 48250,
    postcode: '1010',
    nested: { ssn: '078-05-1120', deeper: [{ ssn: '219-09-9999' }, { other: 1 }] },
    records: [
      { taxId: 'AB12', year: 2024, tags: [['x', 'y'], ['z']] },
      { taxId: 'CD34567', year: 2025, tags: [] },
      { year: 2026 },
    ],
    unicode: '😀é日本語テキスト',
    nothing: null,
    flag: true,
  };
  const cases: [string, MaskDirective, (out: Record<string, unknown>) => unknown, unknown][] = [
    ['remove a member', { field: '$.taxId', action: 'remove' }, (o) => 'taxId' in o, false],
    ['remove in every array element', { field: '$.records[*].taxId', action: 'remove' }, (o) => (o.records as object[]).map((r) => 'taxId' in r), [false, false, false]],
    ['remove array elements compacts the array', { field: '$.records[*]', action: 'remove' }, (o) => o.records, []],
    ['remove one index', { field: '$.records[1]', action: 'remove' }, (o) => (o.records as { year: number }[]).map((r) => r.year), [2024, 2026]],
    ['redact with default', { field: '$.name', action: 'redact' }, (o) => o.name, '***'],
    ['redact with replacement', { field: '$.name', action: 'redact', replacement: '[withheld]' }, (o) => o.name, '[withheld]'],
    ['redact an object', { field: '$.nested', action: 'redact' }, (o) => o.nested, '***'],
    ['redact null and booleans', { field: '$.flag', action: 'redact' }, (o) => o.flag, '***'],
    ['partial keepLast', { field: '$.taxId', action: 'partial', keepLast: 4 }, (o) => o.taxId, '*****6789'],
    ['partial keepFirst+keepLast', { field: '$.taxId', action: 'partial', keepFirst: 2, keepLast: 2 }, (o) => o.taxId, '12*****89'],
    ['partial that would reveal all masks all', { field: '$.records[0].taxId', action: 'partial', keepLast: 4 }, (o) => (o.records as { taxId: string }[])[0]!.taxId, '****'],
    ['partial on a number', { field: '$.income', action: 'partial', keepLast: 2 }, (o) => o.income, '***50'],
    ['partial on a boolean redacts', { field: '$.flag', action: 'partial', keepLast: 2 }, (o) => o.flag, '***'],
    ['partial keeps whole code points', { field: '$.unicode', action: 'partial', keepFirst: 1, keepLast: 1 }, (o) => o.unicode, '😀*******ト'],
    ['hash is the keyed pseudonym', { field: '$.name', action: 'hash' }, (o) => o.name, pseudonym(hashKey, 'Ada Lovelace')],
    ['hash of a number', { field: '$.income', action: 'hash' }, (o) => o.income, pseudonym(hashKey, 48250)],
    ['generalize date to year', { field: '$.born', action: 'generalize', to: 'year' }, (o) => o.born, '1815'],
    ['generalize date to month', { field: '$.born', action: 'generalize', to: 'month' }, (o) => o.born, '1815-12'],
    ['generalize non-date redacts', { field: '$.name', action: 'generalize', to: 'year' }, (o) => o.name, '***'],
    ['generalize number to bucket', { field: '$.income', action: 'generalize', to: 'bucket', bucketSize: 10000 }, (o) => o.income, '[40000,50000)'],
    ['generalize numeric string to bucket', { field: '$.postcode', action: 'generalize', to: 'bucket', bucketSize: 100 }, (o) => o.postcode, '[1000,1100)'],
    ['generalize postcode to prefix', { field: '$.postcode', action: 'generalize', to: 'prefix', prefixLength: 2 }, (o) => o.postcode, '10'],
    ['prefix as long as the value redacts', { field: '$.postcode', action: 'generalize', to: 'prefix', prefixLength: 4 }, (o) => o.postcode, '***'],
    ['recursive descent reaches every depth', { field: '$..ssn', action: 'redact' }, (o) => JSON.stringify(o.nested), '{"ssn":"***","deeper":[{"ssn":"***"},{"other":1}]}'],
    ['nested arrays', { field: '$.records[*].tags[*][*]', action: 'redact', replacement: '-' }, (o) => (o.records as { tags?: unknown }[]).map((r) => r.tags), [[['-', '-'], ['-']], [], undefined]],
    ['missing fields are no-ops', { field: '$.nope.deeper[*].x', action: 'remove' }, (o) => JSON.stringify(o) === JSON.stringify(doc), true],
    ['index out of range is a no-op', { field: '$.records[9]', action: 'remove' }, (o) => (o.records as unknown[]).length, 3],
    ['wildcard over object members', { field: '$.nested.*', action: 'redact' }, (o) => o.nested, { ssn: '***', deeper: '***' }],
    ['null stays masked', { field: '$.nothing', action: 'redact' }, (o) => o.nothing, '***'],
    ['quoted Unicode member names', { field: "$['unicode']", action: 'remove' }, (o) => 'unicode' in o, false],
  ];
  for (const [name, d, pick, expected] of cases) {
    test(name, () => assert.deepEqual(pick(one(d, doc) as Record<string, unknown>), expected));
  }

  test('masks apply in order; a later mask sees the earlier result', () => {
    const out = mask({ masks: [{ field: '$.taxId', action: 'partial', keepLast: 4 }, { field: '$.taxId', action: 'remove' }] }, doc) as Record<string, unknown>;
    assert.equal('taxId' in out, false);
  });

  test('a scalar or array document is masked too', () => {
    assert.deepEqual(mask({ masks: [{ field: '$[*].ssn', action: 'remove' }] }, [{ ssn: 1, a: 2 }, { ssn: 3 }]), [{ a: 2 }, {}]);
    assert.equal(mask({ masks: [{ field: '$.a', action: 'remove' }] }, 'plain'), 'plain');
  });

  test('hash without a configured key fails instead of passing the value through', () => {
    assert.throws(() => compileMaskSet({ masks: [{ field: '$.a', action: 'hash' }] }).apply({ a: 'x' }), /hash action needs a key/);
  });
});

describe('allowFields (minimisation)', () => {
  const doc = { id: 7, name: 'Ada', address: { city: 'Wien', street: 'Ring 1' }, records: [{ year: 2024, taxId: 'A', amount: 1 }, { year: 2025, taxId: 'B' }], ['__proto__']: { polluted: true } };
  const cases: [string, string[], unknown][] = [
    ['keeps only listed members', ['$.id', '$.address.city'], { id: 7, address: { city: 'Wien' } }],
    ['through arrays', ['$.records[*].year'], { records: [{ year: 2024 }, { year: 2025 }] }],
    ['a listed subtree is kept whole', ['$.address'], { address: { city: 'Wien', street: 'Ring 1' } }],
    ['nothing listed that exists gives an empty document', ['$.missing'], {}],
    ['recursive descent', ['$..year'], { records: [{ year: 2024 }, { year: 2025 }] }],
  ];
  for (const [name, allow, expected] of cases) test(name, () => assert.deepEqual(JSON.parse(JSON.stringify(mask({ masks: [], allowFields: allow }, doc))), expected));

  test('allow-list then masks', () => {
    const out = mask({ masks: [{ field: '$.records[*].taxId', action: 'partial', keepLast: 0, keepFirst: 0 }], allowFields: ['$.records[*].taxId'] }, doc);
    assert.deepEqual(out, { records: [{ taxId: '*' }, { taxId: '*' }] });
  });

  test('a __proto__ member is copied as data, never as a prototype', () => {
    const parsed = JSON.parse('{"__proto__":{"polluted":true},"x":1}');
    const out = compileMaskSet({ masks: [], allowFields: ['$.__proto__'] }).apply(parsed) as Record<string, unknown>;
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal(Object.getPrototypeOf(out), Object.prototype);
    assert.deepEqual(JSON.parse(JSON.stringify(out)), { ['__proto__']: { polluted: true } });
  });
});

describe('compile errors name the directive', () => {
  const cases: [MaskSpec, string][] = [
    [{ masks: [{ field: '$.ok', action: 'remove' }, { field: 'bad', action: 'remove' }] }, 'mask/1/field'],
    [{ masks: [{ field: '$.a', action: 'partial' }] }, 'mask/0/action'],
    [{ masks: [{ field: '$.a', action: 'generalize' }] }, 'mask/0/action'],
    [{ masks: [{ field: '$.a', action: 'generalize', to: 'bucket' }] }, 'mask/0/action'],
    [{ masks: [], allowFields: ['$.a', '$[x]'] }, 'allowFields/1'],
  ];
  for (const [spec, pointer] of cases) {
    test(pointer, () => assert.throws(() => compileMaskSet(spec), (e: unknown) => e instanceof MaskCompileError && e.pointer === pointer));
  }
});

describe('property: a masked document never contains a masked field\'s original value', () => {
  // Secrets carry a marker no action output contains (hex, '*', digits, brackets).
  const secret = fc.string({ minLength: 4, maxLength: 24, unit: 'grapheme' }).map((s) => `SECRET-${s}`);
  const action: fc.Arbitrary<MaskDirective> = fc.oneof(
    fc.constant<MaskDirective>({ field: '', action: 'remove' }),
    fc.constant<MaskDirective>({ field: '', action: 'redact' }),
    fc.constant<MaskDirective>({ field: '', action: 'hash' }),
    fc.record({ keepFirst: fc.integer({ min: 0, max: 6 }), keepLast: fc.integer({ min: 0, max: 6 }) }).map((k) => ({ field: '', action: 'partial' as const, ...k })),
    fc.integer({ min: 0, max: 6 }).map((n) => ({ field: '', action: 'generalize' as const, to: 'prefix' as const, prefixLength: n })),
    fc.constant<MaskDirective>({ field: '', action: 'generalize', to: 'year' }),
  );
  const record = fc.record({ ssn: secret, note: fc.string(), items: fc.array(fc.record({ ssn: secret, n: fc.integer() }), { maxLength: 5 }) });
  const doc = fc.record({ people: fc.array(record, { maxLength: 6 }), ssn: secret, meta: fc.dictionary(fc.string({ maxLength: 5 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }) });

  test('$..ssn under every action', () => {
    fc.assert(
      fc.property(doc, action, (d, a) => {
        const originals: string[] = [d.ssn, ...d.people.flatMap((p) => [p.ssn, ...p.items.map((i) => i.ssn)])];
        const text = JSON.stringify(mask({ masks: [{ ...a, field: '$..ssn' }] }, d));
        for (const o of originals) {
          // The marker itself may survive a prefix/partial, the value must not.
          if (text.includes(JSON.stringify(o).slice(1, -1))) return false;
        }
        return true;
      }),
      { numRuns: 300 },
    );
  });

  test('$.people[*].items[*].ssn, other fields untouched', () => {
    fc.assert(
      fc.property(doc, action, (d, a) => {
        const out = mask({ masks: [{ ...a, field: '$.people[*].items[*].ssn' }] }, d) as typeof d;
        const text = JSON.stringify(out.people.map((p) => p.items));
        const leaked = d.people.some((p) => p.items.some((i) => text.includes(JSON.stringify(i.ssn).slice(1, -1))));
        return !leaked && out.ssn === d.ssn && out.people.every((p, i) => p.ssn === d.people[i]!.ssn);
      }),
      { numRuns: 300 },
    );
  });
});
