import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CelCompileError, CelEvalError, compileCel, MAX_REGEX_INPUT, type ParamScope } from './cel.js';

const ID: ParamScope = { all: ['id'], some: ['id'], paths: ['/v1/citizens/{id}'] };

const activation = (headers: Record<string, string> = {}, extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  request: { method: 'GET', path: '/x', host: 'h', headers, query: {} },
  principal: { type: 'consumer', subject: 'u1', claims: { amr: ['mfa'] } },
  tenant: { name: 't', purposes: ['statistics'] },
  params: { id: 'u1' },
  now: new Date('2026-01-01T00:00:00Z'),
  ...extra,
});

describe('compileCel: valid conditions evaluate', () => {
  const cases: [string, Record<string, unknown>, boolean][] = [
    ['principal.subject == params.id', activation(), true],
    ["'mfa' in principal.claims.amr", activation(), true],
    ["request.headers['x-purpose-of-use'] in tenant.purposes", activation({ 'x-purpose-of-use': 'statistics' }), true],
    ["request.headers['x-purpose-of-use'] in tenant.purposes", activation({ 'x-purpose-of-use': 'marketing' }), false],
    ["request.headers['x-id'].matches('^[0-9]+$')", activation({ 'x-id': '1984' }), true],
    ["request.headers['x-id'].matches('^[0-9]+$')", activation({ 'x-id': '19a84' }), false],
    ["request.headers['x-a'].matches('^a') && request.headers['x-b'].matches('b$')", activation({ 'x-a': 'ax', 'x-b': 'xb' }), true],
    ['now > timestamp("2025-01-01T00:00:00Z")', activation(), true],
  ];
  for (const [source, act, expected] of cases) {
    test(source, () => assert.equal(compileCel(source, { expect: 'bool', params: ID }).evaluate(act), expected));
  }
});

describe('compileCel: regexes run on RE2', () => {
  test('a catastrophic pattern on a 40-character input returns its answer', () => {
    const p = compileCel("request.headers['x-a'].matches('^(a+)+$')");
    assert.equal(p.evaluate(activation({ 'x-a': 'a'.repeat(40) + '!' })), false);
    assert.equal(p.evaluate(activation({ 'x-a': 'a'.repeat(40) })), true);
  });

  test('input longer than the bound is an evaluation error, not a scan', () => {
    const p = compileCel("request.headers['x-a'].matches('a')");
    assert.throws(() => p.evaluate(activation({ 'x-a': 'a'.repeat(MAX_REGEX_INPUT + 1) })), CelEvalError);
  });

  test('the source is kept as written (matches, not the rewrite)', () => {
    const source = "request.headers['x-a'].matches('^a$')";
    assert.equal(compileCel(source).source, source);
  });
});

describe('compileCel: errors carry line and column', () => {
  const cases: [name: string, source: string, message: RegExp, line: number, column?: number][] = [
    ['syntax error', 'principal.subject ==', /./, 1],
    ['syntax error on line 2', "principal.subject == 'a' &&\n  (", /./, 2],
    ['unknown variable', 'user.name == "x"', /./, 1],
    ['not a bool', 'params.id', /must return bool/, 1],
    ['non-literal matches pattern', "request.path.matches(request.headers['x-re'])", /string literal pattern/, 1, 22],
    ['invalid RE2 pattern', "request.path.matches('(a')", /invalid RE2 pattern/, 1, 22],
    ['backreferences are not RE2', "request.path.matches('(a)\\\\1')", /invalid RE2 pattern/, 1],
  ];
  for (const [name, source, message, line, column] of cases) {
    test(name, () => {
      assert.throws(
        () => compileCel(source),
        (err: unknown) => {
          assert.ok(err instanceof CelCompileError, `expected CelCompileError, got ${String(err)}`);
          assert.match(err.message, message);
          assert.equal(err.line, line);
          if (column !== undefined) assert.equal(err.column, column);
          assert.ok(err.column >= 1);
          return true;
        },
      );
    });
  }
});

describe('compileCel: evaluation errors', () => {
  test('a missing map key is a CelEvalError without the activation in it', () => {
    const p = compileCel("request.headers['x-missing'] == 'a'");
    assert.throws(
      () => p.evaluate(activation({ authorization: 'Bearer secret-token' })),
      (err: unknown) => err instanceof CelEvalError && !err.message.includes('secret-token'),
    );
  });
});
