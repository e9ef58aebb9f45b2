import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePathTemplate, matchPath, PathTemplateError } from './paths.js';

function segs(path: string): string[] {
  return path === '/' ? [] : path.slice(1).split('/');
}

describe('path templates: matching', () => {
  const cases: [template: string, path: string, expected: Record<string, string> | undefined][] = [
    ['/', '/', {}],
    ['/', '/a', undefined],
    ['/v1/stats', '/v1/stats', {}],
    ['/v1/stats', '/v1/other', undefined],
    ['/v1/stats', '/v1/stats/x', undefined],
    ['/v1/citizens/{id}/records', '/v1/citizens/1984/records', { id: '1984' }],
    ['/v1/citizens/{id}/records', '/v1/citizens/1984', undefined],
    ['/v1/{a}/{b}', '/v1/x/y', { a: 'x', b: 'y' }],
    ['/v1/*/records', '/v1/anything/records', {}],
    ['/v1/*/records', '/v1/records', undefined],
    ['/v1/stats/**', '/v1/stats', {}],
    ['/v1/stats/**', '/v1/stats/income/2025', {}],
    ['/v1/stats/**', '/v1/statsx', undefined],
    ['/**', '/', {}],
    ['/**', '/any/thing/at/all', {}],
    ['/v1/{id}/**', '/v1/7/a/b', { id: '7' }],
    ['/V1/Stats', '/v1/stats', undefined], // literals are case-sensitive
  ];
  for (const [template, path, expected] of cases) {
    test(`${template} vs ${path}`, () => {
      assert.deepEqual(matchPath(compilePathTemplate(template), segs(path)), expected);
    });
  }
});

describe('path templates: shapes for overlap detection', () => {
  const cases: [string, string][] = [
    ['/v1/{id}/records', '/v1/*/records'],
    ['/v1/*/records', '/v1/*/records'],
    ['/v1/stats/**', '/v1/stats/**'],
    ['/', '/'],
  ];
  for (const [template, shape] of cases) test(template, () => assert.equal(compilePathTemplate(template).shape, shape));
});

describe('path templates: errors', () => {
  const cases: [string, RegExp][] = [
    ['v1/stats', /starts with \//],
    ['/v1//stats', /empty path segment/],
    ['/v1/**/stats', /\*\* is allowed only as the last segment/],
    ['/v1/{id}/{id}', /appears twice/],
    ['/v1/{id', /invalid segment/],
    ['/v1/a*b', /invalid segment/],
    ['/v1/{1abc}', /invalid segment/],
    ['/v1/pre{id}', /invalid segment/],
  ];
  for (const [template, message] of cases) {
    test(template, () => {
      assert.throws(() => compilePathTemplate(template), (err: unknown) => err instanceof PathTemplateError && message.test(err.message));
    });
  }
});
