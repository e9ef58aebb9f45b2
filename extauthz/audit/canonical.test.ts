import assert from 'node:assert/strict';
import { test } from 'node:test';
import canonicalizeModule from 'canonicalize';
import { canonicalJson } from './canonical.js';
import { Pseudonymizer } from './pseudonym.js';

const reference = canonicalizeModule as unknown as (input: unknown) => string | undefined;

test('canonicalJson gives the canonicalize package output (RFC 8785)', () => {
  const cases: unknown[] = [
    null, true, false, 0, -0, 1e21, 1e-7, 123.456, -1.5, 'x', '', 'é\u2028\u0000"\\', '\ud800',
    [], [1, 'a', null, undefined, [{}]], {}, { b: 1, a: 2, A: 3, é: 4, '€': 5, '\ud83d\ude00': 6, aa: 7 },
    { u: undefined, s: Symbol('x'), n: null, nested: { z: [1, { y: 2, x: 1 }], d: new Date(0) } },
    { v: 1, type: 'decision', chain: 'i/2026-01-01T00:00:00.000Z/abcdef', seq: 12, prev: 'ff'.repeat(32), quota: { quotas: [{ name: 'q', allowed: true, remaining: 9 }] }, masks: [], latencyMs: 0.123 },
  ];
  for (const c of cases) assert.equal(canonicalJson(c), reference(c), JSON.stringify(c));
  for (const bad of [NaN, Infinity, { x: -Infinity }, [NaN]]) {
    assert.throws(() => canonicalJson(bad));
    assert.throws(() => reference(bad));
  }
  assert.throws(() => canonicalJson(undefined), TypeError);
});

test('pseudonyms are stable across the cache', () => {
  const p = new Pseudonymizer(Buffer.alloc(32, 7), 2);
  const first = ['a', 'b', 'c', 'a'].map((s) => p.subject(s));
  const fresh = new Pseudonymizer(Buffer.alloc(32, 7));
  assert.deepEqual(first, ['a', 'b', 'c', 'a'].map((s) => fresh.subject(s)));
  assert.equal(first[0], first[3]);
  assert.equal(p.subject(''), null);
});
