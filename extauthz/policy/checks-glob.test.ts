/** The identity-overlap glob: exact for star-only globs, and never a backtracking RegExp. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { globMatch } from './checks.js';

void describe('globMatch', () => {
  const cases: [string, string, boolean][] = [
    ['CN=revenue', 'CN=revenue', true],
    ['CN=revenue', 'CN=revenue2', false],
    ['CN=*', 'CN=anything, O=x', true],
    ['*.gov.example', 'api.gov.example', true],
    ['*.gov.example', 'gov.example', false],
    ['a*b*c', 'abc', true],
    ['a*b*c', 'aXbYc', true],
    ['a*b*c', 'acb', false],
    ['ab*ba', 'aba', false],
    ['*', '', true],
    ['a.b', 'aXb', false],
    ['(x)+', '(x)+', true],
    ['x*x', 'x', false],
  ];
  for (const [glob, text, want] of cases) test(`${glob} ~ ${text} → ${want}`, () => assert.equal(globMatch(glob, text), want));

  test('a glob that is exponential for a backtracking engine is decided at once', () => {
    const glob = `${'a*'.repeat(40)}b`;
    const text = 'a'.repeat(5000);
    const started = process.hrtime.bigint();
    assert.equal(globMatch(glob, text), false);
    // Not a timing target: a RegExp of this glob does not return at all in practice.
    assert.ok(Number(process.hrtime.bigint() - started) < 5e9);
  });
});
