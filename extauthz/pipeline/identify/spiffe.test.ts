import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compileSpiffePattern, matchSpiffe, parseSpiffeId, spiffeIdProblem, SPIFFE_LIMITS } from './spiffe.js';

describe('SPIFFE IDs per the specification', () => {
  const valid = ['spiffe://gov.example', 'spiffe://gov.example/ns/revenue/sa/reporting', 'spiffe://td_1-x.y/A.b-c_D', `spiffe://t/${'a'.repeat(SPIFFE_LIMITS.idBytes - 'spiffe://t/'.length)}`];
  for (const id of valid) test(`valid: ${id.slice(0, 60)}`, () => assert.equal(spiffeIdProblem(id), undefined));

  const invalid: [string, RegExp][] = [
    ['https://gov.example/ns/x', /scheme/],
    ['SPIFFE://gov.example/ns/x', /scheme/],
    ['spiffe:///ns/x', /empty trust domain/],
    ['spiffe://GOV.example/ns/x', /trust domain/],
    ['spiffe://gov.example:443/ns/x', /trust domain/],
    ['spiffe://user@gov.example/ns/x', /trust domain/],
    ['spiffe://gov.example/', /empty path segment or trailing slash/],
    ['spiffe://gov.example/ns//x', /empty path segment/],
    ['spiffe://gov.example/ns/x/', /trailing slash/],
    ['spiffe://gov.example/ns/./x', /dot segment/],
    ['spiffe://gov.example/ns/../x', /dot segment/],
    ['spiffe://gov.example/ns/x?y=1', /no query/],
    ['spiffe://gov.example/ns/x#frag', /fragment/],
    ['spiffe://gov.example/ns/%2e%2e/x', /percent-encoding/],
    ['spiffe://gov.example/ns/revenue\u00e9', /A-Z/],
    ['spiffe://gov.example/ns/\ufffd', /A-Z/],
    [`spiffe://t/${'a'.repeat(SPIFFE_LIMITS.idBytes)}`, /longer than 2048/],
    [`spiffe://${'a'.repeat(256)}/x`, /trust domain longer/],
  ];
  for (const [id, problem] of invalid) test(`invalid: ${id.slice(0, 60)}`, () => assert.match(spiffeIdProblem(id) ?? '(valid)', problem));
});

describe('SPIFFE patterns match whole segments', () => {
  const cases: [string, string, boolean][] = [
    ['spiffe://gov.example/ns/revenue/*', 'spiffe://gov.example/ns/revenue/sa/x', true],
    ['spiffe://gov.example/ns/revenue/*', 'spiffe://gov.example/ns/revenue/x', true],
    ['spiffe://gov.example/ns/revenue/*', 'spiffe://gov.example/ns/revenue', false],
    ['spiffe://gov.example/ns/revenue/*', 'spiffe://gov.example/ns/revenue-evil/sa/x', false],
    ['spiffe://gov.example/ns/revenue/*', 'spiffe://gov.example.evil/ns/revenue/sa/x', false],
    ['spiffe://gov.example/ns/*/sa/etl', 'spiffe://gov.example/ns/health/sa/etl', true],
    ['spiffe://gov.example/ns/*/sa/etl', 'spiffe://gov.example/ns/a/b/sa/etl', false],
    ['spiffe://gov.example/ns/x', 'spiffe://gov.example/ns/x', true],
    ['spiffe://gov.example/ns/x', 'spiffe://gov.example/ns/x/y', false],
    ['spiffe://gov.example/*', 'spiffe://gov.example', false],
  ];
  for (const [pattern, id, expected] of cases) {
    test(`${pattern} ${expected ? 'matches' : 'does not match'} ${id}`, () => assert.equal(matchSpiffe(compileSpiffePattern(pattern), parseSpiffeId(id)!), expected));
  }

  const refused = ['spiffe://gov.example/ns/rev*', 'spiffe://gov.example/ns/x/', 'spiffe://gov.example/ns/../x', 'spiffe://*/ns/x', 'spiffe://gov.example/ns/x?*', 'spiffe://gov.example/**'];
  for (const p of refused) test(`pattern refused: ${p}`, () => assert.throws(() => compileSpiffePattern(p), /spiffeIds/));
});

describe('property: a string that parses is a spec-conforming ID, and a pattern never admits another namespace', () => {
  const piece = fc.constantFrom('spiffe://', 'SPIFFE://', 'gov.example', 'GOV', '/', '//', '.', '..', '%2e', '%2F', '?', '#', '@', ':', 'ns', 'revenue', 'revenue-evil', 'sa', 'x', '\u00e9', ' ', '*');
  const SPEC = /^spiffe:\/\/[a-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/;
  test('parse ⇒ charset, no dot segments, bounded', () => {
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (parts) => {
        const s = parts.join('');
        const id = parseSpiffeId(s);
        if (!id) return;
        assert.match(s, SPEC);
        assert.ok(!id.segments.some((seg) => seg === '.' || seg === '..'), s);
        assert.ok(s.length <= SPIFFE_LIMITS.idBytes);
      }),
      { numRuns: 2000 },
    );
  });

  test('spiffe://gov.example/ns/revenue/* admits only IDs under that exact segment', () => {
    const pattern = compileSpiffePattern('spiffe://gov.example/ns/revenue/*');
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 12 }), (parts) => {
        const s = 'spiffe://gov.example/ns/revenue' + parts.join('');
        const id = parseSpiffeId(s);
        if (id && matchSpiffe(pattern, id)) assert.ok(s.startsWith('spiffe://gov.example/ns/revenue/') && SPEC.test(s), s);
      }),
      { numRuns: 2000 },
    );
  });
});
