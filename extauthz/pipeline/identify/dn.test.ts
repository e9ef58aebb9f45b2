import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { formatDn, globMatch, matchDn, parseDn, parseDnPattern } from './dn.js';

describe('parseDn: RFC 4514 / OpenSSL RFC 2253 text into RDNs', () => {
  const cases: [string, [string, string][][]][] = [
    ['CN=a,O=Health', [[['CN', 'a']], [['O', 'Health']]]],
    ['CN=etl \\"batch\\"\\, nightly,O=Health', [[['CN', 'etl "batch", nightly']], [['O', 'Health']]]],
    ['CN=x\\;URI=spiffe://a+OU=b,O=c', [[['CN', 'x;URI=spiffe://a'], ['OU', 'b']], [['O', 'c']]]],
    ['cn=a, o=b', [[['CN', 'a']], [['O', 'b']]]],
    ['2.5.4.3=a,0.9.2342.19200300.100.1.25=example', [[['CN', 'a']], [['DC', 'example']]]],
    ['CN=caf\\C3\\A9', [[['CN', 'café']]]],
    ['CN=\\ lead,O=trail\\ ', [[['CN', ' lead']], [['O', 'trail ']]]],
    ['CN=a\\\\,O=b', [[['CN', 'a\\']], [['O', 'b']]]],
  ];
  for (const [text, rdns] of cases) {
    test(text, () => assert.deepEqual(parseDn(text).map((r) => r.map((a) => [a.type, a.value])), rdns));
  }
  const bad = ['CN=a"b', 'CN=a;O=b', 'garbage', 'CN=a,', 'CN=\\', 'C N=a', 'CN=\\FF'];
  for (const text of bad) test(`refused: ${text}`, () => assert.throws(() => parseDn(text)));
});

describe('matchDn: RDN by RDN, * within one value', () => {
  const cases: [string, string, boolean][] = [
    ['CN=*,O=Health', 'CN=etl,O=Health', true],
    ['CN=*,O=Health', 'CN=x\\,O=Health', false],
    ['CN=*,O=Health', 'CN=x\\,O=Health,O=Evil', false],
    ['CN=*,O=Health', 'CN=a+OU=b,O=Health', false],
    ['CN=*,O=Health', 'CN=a,O=health', true],
    ['CN=etl-*,O=Health', 'CN=etl-batch,O=Health', true],
    ['CN=etl-*,O=Health', 'CN=etl,O=Health', false],
    ['CN=*-batch-*,O=Health', 'CN=x-batch-y,O=Health', true],
    ['CN=a\\*,O=Health', 'CN=ab,O=Health', false],
    ['CN=a\\*,O=Health', 'CN=a*,O=Health', true],
  ];
  for (const [pattern, dn, expected] of cases) test(`${pattern} vs ${dn}: ${expected}`, () => assert.equal(matchDn(parseDnPattern(pattern), parseDn(dn)), expected));

  test('glob with overlapping parts', () => {
    assert.equal(globMatch(['ab', 'ab'], 'ab'), false);
    assert.equal(globMatch(['ab', 'ab'], 'abab'), true);
    assert.equal(globMatch(['a', 'b', 'c'], 'axbxc'), true);
    assert.equal(globMatch(['a', 'b', 'c'], 'axcxb'), false);
  });
});

describe('property: formatDn escapes so that any value parses back to the same structure', () => {
  const ch = fc.constantFrom('a', 'Z', ' ', ',', '+', '"', '\\', ';', '<', '>', '#', '=', '*', '\n', 'é', '\u0000');
  const value = fc.array(ch, { maxLength: 10 }).map((a) => a.join(''));
  const attr = fc.record({ type: fc.constantFrom('CN', 'O', 'OU'), value });
  test('parseDn(formatDn(dn)) == dn', () => {
    fc.assert(
      fc.property(fc.array(fc.array(attr, { minLength: 1, maxLength: 2 }), { minLength: 1, maxLength: 4 }), (rdns) => {
        const dn = rdns.map((r) => r.map((a) => ({ type: a.type, value: a.value })).sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0)));
        assert.deepEqual(parseDn(formatDn(dn)), dn);
      }),
      { numRuns: 1000 },
    );
  });
});
