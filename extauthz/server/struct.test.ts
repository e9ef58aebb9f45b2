import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fromStruct, toStruct, toValue } from './struct.js';

describe('google.protobuf.Struct conversion', () => {
  const cases: [string, Record<string, unknown>][] = [
    ['scalars', { s: 'x', n: 1.5, b: true, z: null }],
    ['nested', { a: { b: { c: ['x', 2, false, { d: 'e' }] } } }],
    ['empty', {}],
  ];
  for (const [name, value] of cases) test(`round trip: ${name}`, () => assert.deepEqual(fromStruct(toStruct(value)), value));

  const values: [string, unknown, unknown][] = [
    ['undefined becomes null', undefined, { nullValue: 'NULL_VALUE' }],
    ['bigint becomes a number', 5n, { numberValue: 5 }],
    ['a Date becomes its ISO string', new Date('2026-01-01T00:00:00Z'), { stringValue: '2026-01-01T00:00:00.000Z' }],
  ];
  for (const [name, input, expected] of values) test(name, () => assert.deepEqual(toValue(input), expected));
});
