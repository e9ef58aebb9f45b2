import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileLifecycle, lifecycleState, LifecycleSpecError, parseRfc3339 } from './lifecycle.js';

describe('RFC 3339 dates, parsed once at load', () => {
  const cases: [string, string | undefined][] = [
    ['2026-06-01T00:00:00Z', '2026-06-01T00:00:00.000Z'],
    ['2026-06-01t00:00:00z', '2026-06-01T00:00:00.000Z'],
    ['2026-06-01T02:30:00+02:30', '2026-06-01T00:00:00.000Z'],
    ['2026-05-31T23:00:00-01:00', '2026-06-01T00:00:00.000Z'],
    ['2026-06-01T00:00:00.123456789Z', '2026-06-01T00:00:00.123Z'],
    ['2028-02-29T12:00:00Z', '2028-02-29T12:00:00.000Z'],
    ['2027-02-29T12:00:00Z', undefined],
    ['2026-04-31T00:00:00Z', undefined],
    ['2026-06-01T24:00:00Z', undefined],
    ['2026-06-01T00:60:00Z', undefined],
    ['2026-06-01T00:00:00', undefined],
    ['2026-06-01', undefined],
    ['2026-06-01T00:00:00+25:00', undefined],
    ['Mon, 01 Jun 2026 00:00:00 GMT', undefined],
    ['1780272000', undefined],
  ];
  for (const [input, want] of cases) {
    test(input, () => {
      const t = parseRfc3339(input);
      assert.equal(t === undefined ? undefined : new Date(t).toISOString(), want);
    });
  }
});

describe('deprecation compiled at load', () => {
  test('the header values are built once: RFC 9745 Deprecation, RFC 8594 Sunset, Link rel=deprecation', () => {
    const l = compileLifecycle({ since: '2026-06-01T00:00:00Z', sunset: '2026-12-31T23:59:59Z', link: 'https://developer.c2g.example/deprecations/v1' });
    assert.deepEqual(l.headers, {
      deprecation: '@1780272000',
      sunset: 'Thu, 31 Dec 2026 23:59:59 GMT',
      link: '<https://developer.c2g.example/deprecations/v1>; rel="deprecation"',
    });
    assert.equal(l.afterSunset, 'deny');
  });

  const refused: [string, Parameters<typeof compileLifecycle>[0], string][] = [
    ['an invalid since', { since: '2026-02-30T00:00:00Z' }, 'since'],
    ['an invalid sunset', { since: '2026-01-01T00:00:00Z', sunset: 'next year' }, 'sunset'],
    ['sunset before since', { since: '2026-06-01T00:00:00Z', sunset: '2026-05-31T23:59:59Z' }, 'sunset'],
    ['a link that would break the header', { since: '2026-06-01T00:00:00Z', link: 'https://x.example/a>; rel="x' }, 'link'],
    ['a non-ASCII link', { since: '2026-06-01T00:00:00Z', link: 'https://x.example/é' }, 'link'],
  ];
  for (const [name, spec, field] of refused) {
    test(`refused: ${name}`, () => assert.throws(() => compileLifecycle(spec), (e: unknown) => e instanceof LifecycleSpecError && e.field === field));
  }

  test('sunset equal to since is allowed (deprecated and gone at once)', () => {
    assert.doesNotThrow(() => compileLifecycle({ since: '2026-06-01T00:00:00Z', sunset: '2026-06-01T00:00:00Z' }));
  });
});

describe('lifecycle state around the boundaries (injected time)', () => {
  const l = compileLifecycle({ since: '2026-06-01T00:00:00Z', sunset: '2026-12-01T00:00:00Z' });
  const since = Date.parse('2026-06-01T00:00:00Z');
  const sunset = Date.parse('2026-12-01T00:00:00Z');
  const cases: [string, number, string][] = [
    ['long before since', since - 86_400_000, 'announced'],
    ['1 ms before since', since - 1, 'announced'],
    ['at since', since, 'deprecated'],
    ['1 ms before the sunset', sunset - 1, 'deprecated'],
    ['at the sunset', sunset, 'sunset'],
    ['after the sunset', sunset + 1, 'sunset'],
  ];
  for (const [name, now, want] of cases) test(name, () => assert.equal(lifecycleState(l, now), want));

  test('without a sunset a route stays deprecated', () => {
    assert.equal(lifecycleState(compileLifecycle({ since: '2026-06-01T00:00:00Z' }), Date.parse('2099-01-01T00:00:00Z')), 'deprecated');
  });
});
