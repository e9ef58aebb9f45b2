/**
 * The typed environment, the RE2 guarantee on the AST, the cost bound and the runtime meter:
 * one case per mistake a policy author (or a hostile one) can make, each with the message the
 * author gets.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cachedPrograms, CelBudgetExceededError, CelCompileError, CelCostError, compileCel, MAX_CACHED_PROGRAMS, MAX_EXPRESSION_COST, type ParamScope } from './cel.js';
import { CEL_SCHEMA } from './cel-env.js';
import { CelBudget, CelBudgetError, instrument, metered, sharedBudget } from './cel-meter.js';
import { environments } from './cel-env.js';
import { allNodes, type CelNode } from './cel-ast.js';
import { celActivation } from '../pipeline/authorize.js';
import { parseCheckRequest } from '../pipeline/context.js';

const SCOPE: ParamScope = { all: ['id'], some: ['id', 'doc'], paths: ['/v1/citizens/{id}', '/v1/citizens/{id}/docs/{doc}'] };

function compileError(source: string, params: ParamScope = SCOPE): CelCompileError {
  try {
    compileCel(source, { expect: 'bool', params });
  } catch (err) {
    assert.ok(err instanceof CelCompileError, `expected CelCompileError, got ${String(err)}`);
    return err;
  }
  assert.fail(`${source} compiled`);
}

const list1000 = `[${Array.from({ length: 1000 }, (_, i) => i).join(',')}]`;

describe('typed environment: an unknown field or parameter is a compile error at its position', () => {
  const cases: [name: string, source: string, message: RegExp, line: number, column: number][] = [
    ['typo in a principal field', "principal.subjet == 'u1'", /principal has no field "subjet"; did you mean "subject"\?/, 1, 11],
    ['typo in a request field', "request.heders['x'] == 'a'", /request has no field "heders"; did you mean "headers"\?/, 1, 9],
    ['typo in a tenant field', "'x' in tenant.purpose", /tenant has no field "purpose"; did you mean "purposes"\?/, 1, 15],
    ['field by literal index', "principal['subjet'] == 'u1'", /principal has no field "subjet"/, 1, 1],
    ['on a later line', "principal.subject == 'u1' &&\n  principal.tennant == 't'", /principal has no field "tennant"; did you mean "tenant"\?/, 2, 13],
    ['inside a macro', "principal.claims.amr.exists(a, a == principal.subjct)", /principal has no field "subjct"; did you mean "subject"\?/, 1, 47],
    ['has() on an unknown field', 'has(principal.subjet)', /principal has no field "subjet"/, 1, 15],
    ['type mismatch on a declared field', "principal.mfa == 'yes'", /no such overload: bool == string/, 1, 1],
    ['param no path captures', "params.idd == 'u1'", /params.idd: \{idd\} is not captured by every path .*did you mean "id"\?/, 1, 8],
    ['param only some paths capture', "params.doc == 'd1'", /\{doc\} is not captured by every path.*test has\(params.doc\) first/, 1, 8],
    ['param by literal index', "params['doc'] == 'd1'", /\{doc\} is not captured by every path/, 1, 1],
    ['has() of a param no path captures', 'has(params.docs)', /has\(params.docs\): no path of this rule captures \{docs\}.*did you mean "doc"\?/, 1, 12],
    ['param inside a macro', "['a'].exists(v, v == params.nope)", /params.nope/, 1, 29],
  ];
  for (const [name, source, message, line, column] of cases) {
    test(name, () => {
      const err = compileError(source);
      assert.match(err.message, message);
      assert.deepEqual([err.line, err.column], [line, column]);
    });
  }

  test('a rule without paths has no params', () => {
    assert.match(compileError("params.id == 'a'", { all: [], some: [], paths: [] }).message, /no paths/);
  });

  test('declared fields, maps and shadowing still compile', () => {
    for (const source of [
      "principal.claims.anything.deep == 'x'",
      "request.headers['x-a'] == 'b' && request.query['q'] == 'c'",
      "tenant.attributes.jurisdiction == 'EU' && 'tax' in tenant.purposes",
      'has(params.doc) && params.id != ""',
      "['a'].exists(params, params == 'a')",
      'request.time < now && principal.mfa',
      "cel.bind(principal, 'x', principal == 'x')",
    ]) {
      assert.ok(compileCel(source, { expect: 'bool', params: SCOPE }), source);
    }
  });

  test('the declared fields are exactly what the request activation holds', () => {
    const ctx = parseCheckRequest({ attributes: { request: { http: { method: 'GET', path: '/x', host: 'h', headers: {} } } } }, new Date());
    const act = celActivation(ctx, undefined, {});
    for (const name of ['request', 'principal', 'tenant'] as const) {
      assert.deepEqual(Object.keys(act[name] as object).sort(), Object.keys(CEL_SCHEMA[name].fields).sort(), name);
    }
    assert.deepEqual(Object.keys(act).sort(), ['now', 'params', 'principal', 'request', 'tenant']);
  });
});

describe('matches() is RE2, decided on the AST', () => {
  const act = (v: string): Record<string, unknown> => ({ request: { path: v, headers: { 'x-a': v } }, principal: { claims: { s: v } }, tenant: {}, params: {}, now: new Date() });
  const evil = 'a'.repeat(40) + '!';
  const forms = [
    "request.path.matches('^(a+)+$')",
    "request.path // matches() in a comment\n  .matches('^(a+)+$')",
    "request.path\n.\nmatches(\n'^(a+)+$'\n)",
    "cel.bind(p, request.path, p.matches('^(a+)+$'))",
    "[request.path].exists(p, p.matches('^(a+)+$'))",
    "[request.path].map(p, p.matches('^(a+)+$'))[0]",
    "principal.claims.s.matches('^(a+)+$')",
    "(request.headers['x-a']).matches('^(a+)+$') || false",
    "request.path.matches(r'^(a+)+$')",
  ];
  for (const source of forms) {
    test(`linear: ${JSON.stringify(source)}`, () => {
      const p = compileCel(source, { expect: 'bool' });
      const started = performance.now();
      assert.equal(p.evaluate(act(evil)), false);
      // A backtracking engine takes seconds on 40 characters; RE2 well under one.
      assert.ok(performance.now() - started < 1000);
    });
  }

  const refused: [string, string, RegExp][] = [
    ['pattern from the request', "request.path.matches(request.headers['x-a'])", /string literal pattern/],
    ['pattern built by concatenation', "request.path.matches('^(a+)' + '+$')", /string literal pattern/],
    ['pattern through cel.bind', "cel.bind(p, '^(a+)+$', request.path.matches(p))", /string literal pattern/],
    ['function form', "matches(request.path, '^a$')", /no matching overload|method/],
    ['the compiler\'s RE2 method', "request.path.portcullisRe2Matches('a')", /no matching overload/],
    ['back-reference', "request.path.matches('(a)\\\\1')", /invalid RE2 pattern/],
    ['huge program', "request.path.matches('(a?){500}a{500}')", /instructions, more than/],
  ];
  for (const [name, source, message] of refused) {
    test(`refused: ${name}`, () => assert.match(compileError(source, { all: [], some: [], paths: [] }).message, message));
  }

  test('compiled programs (and their patterns) are cached with a bound', () => {
    const a = compileCel("request.path.matches('^a$')", { expect: 'bool' });
    assert.equal(compileCel("request.path.matches('^a$')", { expect: 'bool' }), a);
    assert.equal(a.evaluate(act('a')), true);
    for (let i = 0; i <= MAX_CACHED_PROGRAMS; i++) compileCel(`request.path == '${i}'`, { expect: 'bool' });
    assert.ok(cachedPrograms() <= MAX_CACHED_PROGRAMS);
    assert.notEqual(compileCel("request.path.matches('^a$')", { expect: 'bool' }), a);
  });
});

describe('cost bound at compile time', () => {
  test('a 1e9-step expression is refused with its estimate', () => {
    const source = `cel.bind(l, ${list1000}, l.all(a, l.all(b, l.all(c, a + b + c >= 0))))`;
    assert.throws(
      () => compileCel(source, { expect: 'bool' }),
      (err: unknown) => err instanceof CelCostError && err.estimate >= 1e9 && /estimated cost \d+ exceeds the limit of 50000/.test(err.message),
    );
  });

  const over: [string, string][] = [
    ['nested comprehensions over request data', "request.headers.all(k, request.headers.all(j, k != j || true))"],
    ['quadratic over claims', 'principal.claims.groups.exists(g, principal.claims.groups.exists(h, g == h))'],
    ['map of a map', `cel.bind(l, ${list1000}, l.map(x, l.map(y, y)).size() > 0)`],
    ['split then iterate', "request.path.split('').exists(a, request.path.split('').exists(b, a == b))"],
  ];
  for (const [name, source] of over) {
    test(`refused: ${name}`, () => {
      const err = compileError(source, { all: [], some: [], paths: [] });
      assert.ok(err instanceof CelCostError && err.estimate > MAX_EXPRESSION_COST, err.message);
    });
  }

  const under: [string, number][] = [
    ["principal.subject == 'u1'", 10],
    ["'mfa' in principal.claims.amr", 10_000],
    ["principal.claims.scopes.exists(s, s == 'datasets:read')", MAX_EXPRESSION_COST],
    ["request.path.matches('^/v1/datasets/[a-z0-9-]+$')", MAX_EXPRESSION_COST],
    [`${list1000}.exists(x, x == 7)`, 10_000],
  ];
  for (const [source, atMost] of under) {
    test(`accepted with a bounded estimate: ${source.slice(0, 60)}`, () => {
      const p = compileCel(source, { expect: 'bool' });
      assert.ok(p.cost > 0 && p.cost <= atMost, `cost ${p.cost}`);
    });
  }

  test('nesting multiplies: two levels cost about the square of one', () => {
    const one = compileCel("[1,2,3,4,5,6,7,8,9,10].all(a, a > 0)", { expect: 'bool' }).cost;
    const two = compileCel("[1,2,3,4,5,6,7,8,9,10].all(a, [1,2,3,4,5,6,7,8,9,10].all(b, a + b > 0))", { expect: 'bool' }).cost;
    assert.ok(two > one * 8, `${one} → ${two}`);
  });
});

describe('runtime meter', () => {
  test('past the step limit the evaluation stops with CelBudgetError', () => {
    const p = environments().evaluation.parse(`${list1000}.all(x, x >= 0)`);
    instrument(allNodes(p.ast as unknown as CelNode));
    assert.equal(metered(() => p({}), { steps: 2000, ms: 1e9 }), true);
    assert.throws(() => metered(() => p({}), { steps: 500, ms: 1e9 }), CelBudgetError);
  });

  test('error absorption (|| true) does not hide an exceeded budget', () => {
    const p = environments().evaluation.parse(`${list1000}.all(x, x >= 0) || true`);
    instrument(allNodes(p.ast as unknown as CelNode));
    assert.throws(() => metered(() => p({}), { steps: 10, ms: 1e9 }), CelBudgetError);
  });

  test('past the time limit (an injected clock) the evaluation stops', () => {
    const p = environments().evaluation.parse(`${list1000}.all(x, x >= 0)`);
    instrument(allNodes(p.ast as unknown as CelNode));
    let now = 0;
    const clock = (): number => (now += 1);
    assert.throws(() => metered(() => p({}), { steps: 1e9, ms: 5 }, clock), /exceeded 5 ms/);
  });

  test('rules of one Check share one budget', () => {
    const p = environments().evaluation.parse(`${list1000}.all(x, x >= 0)`);
    instrument(allNodes(p.ast as unknown as CelNode));
    const limits = { steps: 1500, ms: 1e9 };
    assert.doesNotThrow(() => sharedBudget(() => metered(() => p({})), new CelBudget(limits)));
    assert.throws(() => sharedBudget(() => [1, 2].map(() => metered(() => p({}))), new CelBudget(limits)), CelBudgetError);
  });

  test('one budget across the sections of a Check: steps and milliseconds add up', () => {
    const p = environments().evaluation.parse(`[${Array.from({ length: 200 }, (_, i) => i).join(',')}].all(x, x >= 0)`);
    instrument(allNodes(p.ast as unknown as CelNode));
    let now = 0;
    // Every clock read is one millisecond later: a 200-step section reads it about 5 times.
    const clock = (): number => (now += 1);
    const budget = new CelBudget({ steps: 1e9, ms: 5 }, clock);
    assert.doesNotThrow(() => sharedBudget(() => metered(() => p({})), budget));
    assert.ok(budget.spentMs >= 3 && budget.steps >= 200, `${budget.spentMs} ms, ${budget.steps} steps`);
    // Alone the second section fits; after the first it is over the Check's 5 ms.
    assert.doesNotThrow(() => sharedBudget(() => metered(() => p({})), new CelBudget({ steps: 1e9, ms: 5 }, clock)));
    assert.throws(() => sharedBudget(() => metered(() => p({})), budget), /exceeded 5 ms/);
    const steps = new CelBudget({ steps: 300, ms: 1e9 });
    assert.doesNotThrow(() => sharedBudget(() => metered(() => p({})), steps));
    assert.throws(() => sharedBudget(() => metered(() => p({})), steps), /exceeded 300 steps/);
  });

  test('a compiled program reports an exhausted budget as CelBudgetExceededError', () => {
    const p = compileCel(`${list1000}.all(x, [1, 2, 3, 4].exists(y, y == x) || true)`, { expect: 'bool' });
    // 1000 × 4 iterations fit the static bound but not a one-step runtime budget.
    assert.ok(p.cost <= MAX_EXPRESSION_COST);
    assert.throws(() => sharedBudget(() => p.evaluate({}), new CelBudget({ steps: 1, ms: 1e9 })), CelBudgetExceededError);
  });

});

describe('explain names the part that made a condition false', () => {
  const act = { request: { method: 'GET', headers: { 'x-purpose-of-use': 'marketing' } }, principal: { subject: 'u1', claims: { amr: ['pwd'] } }, tenant: { purposes: ['tax'] }, params: { id: 'u1' }, now: new Date() };
  const cases: [string, RegExp][] = [
    ["principal.subject == params.id && 'mfa' in principal.claims.amr", /^'mfa' in principal.claims.amr is false$/],
    ["request.method == 'GET' && (request.headers['x-purpose-of-use'] in tenant.purposes || principal.subject == 'u2')", /none of the alternatives holds: request.headers\['x-purpose-of-use'\] in tenant.purposes is false; principal.subject == 'u2' is false/],
    ["request.headers['x-missing'] == 'a' && false", /request.headers\['x-missing'\] == 'a' failed: No such key: x-missing/],
    ["principal.claims.amr.exists(a, a == 'mfa')", /^principal.claims.amr.exists\(a, a == 'mfa'\) is false$/],
  ];
  for (const [source, expected] of cases) {
    test(source, () => {
      const p = compileCel(source, { expect: 'bool', params: SCOPE });
      assert.notEqual(p.evaluate(act), true);
      assert.match(p.explain(act), expected);
    });
  }
});
