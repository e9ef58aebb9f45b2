/**
 * The measurement behind docs/adr/0001-cel-library.md: @marcbachmann/cel-js (what Portcullis
 * uses) against cel-js (the library the first design named) on CEL-spec behaviour, on
 * evaluations per second, and on the regex denial-of-service case.
 *
 *   node dist/test/bench/cel-compare.js [--quick]
 *
 * Expected results are the CEL specification's (cel-go behaviour), not either library's.
 * Integers are compared by value: marc returns BigInt for CEL int, cel-js returns numbers.
 */
import { parse as marcParse, evaluate as marcEvaluate } from '@marcbachmann/cel-js';
import * as celJs from 'cel-js';
import { pathToFileURL } from 'node:url';
import { compileCel, MAX_REGEX_INPUT } from '../../extauthz/policy/cel.js';
import { fmt, formatText, type Table } from './table.js';

type Ctx = Record<string, unknown>;
interface Case {
  area: string;
  expr: string;
  ctx?: Ctx;
  /** Expected value, or an error; `leak` is text an error message must not contain. */
  want: { value: unknown } | { error: true; leak?: string };
}

const TOKEN = 'eyJhbGciOiJSUzI1NiJ9.secret-token';
const P = { subject: '19283746501', claims: { amr: ['pwd', 'mfa'], acr: 'high' }, token: TOKEN };
const L = { l: [1, 2, 3] };
const M = { m: { a: 1, b: 2 } };
const NOW = { now: new Date('2026-03-01T12:00:00Z') };
const ok = (value: unknown): Case['want'] => ({ value });
const err: Case['want'] = { error: true };

export const CASES: Case[] = [
  { area: 'macro all', expr: 'l.all(x, x > 0)', ctx: L, want: ok(true) },
  { area: 'macro all (literal receiver)', expr: '[1, 2, 3].all(x, x > 0)', want: ok(true) },
  { area: 'macro exists', expr: 'l.exists(x, x == 2)', ctx: L, want: ok(true) },
  { area: 'macro exists_one', expr: 'l.exists_one(x, x > 1)', ctx: L, want: ok(false) },
  { area: 'macro map', expr: '[1, 2, 3].map(x, x * 2) == [2, 4, 6]', want: ok(true) },
  { area: 'macro map (3-arg)', expr: '[1, 2, 3].map(x, x > 1, x * 10)', want: ok([20, 30]) },
  { area: 'macro filter', expr: 'l.filter(x, x > 1.0)', ctx: L, want: ok([2, 3]) },
  { area: 'macro over map keys', expr: 'm.exists(k, k == "a")', ctx: M, want: ok(true) },
  { area: 'has() present', expr: 'has(p.claims.acr)', ctx: { p: P }, want: ok(true) },
  { area: 'has() absent', expr: 'has(p.claims.nope)', ctx: { p: P }, want: ok(false) },
  { area: 'in list', expr: '"mfa" in p.claims.amr', ctx: { p: P }, want: ok(true) },
  { area: 'in list (absent)', expr: '"otp" in p.claims.amr', ctx: { p: P }, want: ok(false) },
  { area: 'in map (key)', expr: '"a" in m', ctx: M, want: ok(true) },
  { area: 'in map (absent key)', expr: '"z" in m', ctx: M, want: ok(false) },
  { area: 'startsWith', expr: 'p.subject.startsWith("1928")', ctx: { p: P }, want: ok(true) },
  { area: 'contains / endsWith', expr: 'p.claims.acr.contains("ig") && p.claims.acr.endsWith("h")', ctx: { p: P }, want: ok(true) },
  { area: 'matches', expr: 'p.subject.matches("^[0-9]{11}$")', ctx: { p: P }, want: ok(true) },
  { area: 'size of unicode string', expr: 'size("héllo") == 5', want: ok(true) },
  { area: 'timestamp compare', expr: 'timestamp("2024-01-01T00:00:00Z") < now', ctx: NOW, want: ok(true) },
  { area: 'timestamp - timestamp', expr: 'now - timestamp("2026-02-28T12:00:00Z") > duration("23h")', ctx: NOW, want: ok(true) },
  { area: 'duration equality', expr: 'duration("1h30m") == duration("90m")', want: ok(true) },
  { area: 'timestamp accessor', expr: 'now.getHours() == 12', ctx: NOW, want: ok(true) },
  { area: 'invalid timestamp', expr: 'timestamp("not a time") < now', ctx: NOW, want: err },
  { area: 'int overflow (+)', expr: '9223372036854775807 + 1', want: err },
  { area: 'int overflow (-)', expr: '-9223372036854775808 - 1', want: err },
  { area: 'int overflow (*)', expr: '4611686018427387904 * 2', want: err },
  { area: 'int division truncates', expr: '7 / 2', want: ok(3) },
  { area: 'division by zero', expr: '1 / 0', want: err },
  { area: 'no mixed string + int', expr: '"abc" + 1', want: err },
  { area: 'conversions', expr: 'int("12") + 1 == 13 && string(12) == "12"', want: ok(true) },
  { area: 'error absorbed by &&', expr: 'false && 1 / 0 == 1', want: ok(false) },
  { area: 'error absorbed by || (commutative)', expr: '1 / 0 == 1 || true', want: ok(true) },
  { area: 'list index out of range', expr: 'l[5] == 1', ctx: L, want: err },
  { area: 'missing key: error, no token leak', expr: 'p.nope == "x"', ctx: { p: P }, want: { error: true, leak: TOKEN } },
];

/** JSON with BigInt as plain numbers, so `3n` and `3` compare equal. */
function canon(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? Number(x) : x));
}

type Evaluate = (expr: string, ctx: Ctx) => unknown;

const LIBS: [string, Evaluate][] = [
  ['@marcbachmann/cel-js 8.0.0', (e, c) => marcEvaluate(e, c)],
  ['cel-js 0.8.2', (e, c) => celJs.evaluate(e, c)],
];

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0]?.slice(0, 70) ?? '';
}

/** pass | FAIL: <what happened>. */
export function judge(c: Case, run: Evaluate): string {
  let got: unknown;
  try {
    got = run(c.expr, c.ctx ?? {});
  } catch (e) {
    if (!('error' in c.want)) return `FAIL: error ${firstLine(e)}`;
    const message = e instanceof Error ? e.message : String(e);
    return c.want.leak && message.includes(c.want.leak) ? 'FAIL: message leaks the activation' : 'pass';
  }
  if ('error' in c.want) return `FAIL: returned ${canon(got)}`;
  return canon(got) === canon(c.want.value) ? 'pass' : `FAIL: returned ${canon(got)}`;
}

export function behaviourTable(): Table {
  const rows = CASES.map((c) => [c.area, c.expr, 'error' in c.want ? 'error' : canon(c.want.value), ...LIBS.map(([, run]) => judge(c, run))]);
  const passed = LIBS.map((_, i) => rows.filter((r) => r[3 + i] === 'pass').length);
  return {
    title: 'CEL behaviour (expected = CEL spec)',
    headers: ['area', 'expression', 'expected', ...LIBS.map(([name]) => name)],
    rows: [...rows, ['total', '', '', ...passed.map((n) => `${n}/${CASES.length} pass`)]],
  };
}

const ABAC_CTX: Ctx = {
  request: { method: 'GET', path: '/v1/datasets/air-quality-2025', headers: { 'x-purpose-of-use': 'tax-audit', authorization: `Bearer ${TOKEN}` } },
  principal: { type: 'consumer', subject: '19283746501', claims: { amr: ['pwd', 'mfa'], acr: 'high', scopes: ['datasets:read', 'records:read'] } },
  tenant: { name: 'dept-revenue', purposes: ['statistics', 'tax-audit'], attributes: { jurisdiction: 'EU', clearance: 'secret' } },
  params: { id: '19283746501' },
  now: new Date('2026-03-01T12:00:00Z'),
};

export const ABAC: [string, string][] = [
  ['consumer own record + MFA', "principal.subject == params.id && 'mfa' in principal.claims.amr"],
  ['agency purpose + jurisdiction', "request.headers['x-purpose-of-use'] in tenant.purposes && tenant.attributes.jurisdiction == 'EU'"],
  ['partner scope (exists macro)', "request.method in ['GET', 'HEAD'] && principal.claims.scopes.exists(s, s == 'datasets:read')"],
  ['path regex (matches)', "request.path.matches('^/v1/datasets/[a-z0-9-]+$')"],
];

type Compiled = (ctx: Ctx) => unknown;
const COMPILERS: [string, (expr: string) => Compiled][] = [
  ['@marcbachmann/cel-js (raw)', (e) => marcParse(e)],
  ['Portcullis compileCel (marc + RE2)', (e) => { const p = compileCel(e, { expect: 'bool', params: { all: ['id'], some: ['id'], paths: ['/{id}'] } }); return (c) => p.evaluate(c); }],
  ['cel-js 0.8.2', (e) => {
    const parsed = celJs.parse(e);
    if (!parsed.isSuccess) throw new Error(parsed.errors.join('; '));
    return (c) => celJs.evaluate(parsed.cst, c);
  }],
];

/** Evaluations per second after parsing once; '–' with the reason when the library cannot. */
function evalsPerSecond(make: (expr: string) => Compiled, expr: string, n: number): string {
  let fn: Compiled;
  try {
    fn = make(expr);
    if (fn(ABAC_CTX) !== true) return `wrong result ${canon(fn(ABAC_CTX))}`;
  } catch (e) {
    return `unsupported (${firstLine(e).slice(0, 40)})`;
  }
  for (let i = 0; i < n / 10; i++) fn(ABAC_CTX);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(ABAC_CTX);
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return `${fmt(n / s, 0)}/s (${fmt((s / n) * 1e6, 2)} µs)`;
}

export function throughputTable(n: number): Table {
  return {
    title: `CEL evaluations per second (parse once, evaluate ${n.toLocaleString('en-US')} times)`,
    headers: ['expression', ...COMPILERS.map(([name]) => name)],
    rows: ABAC.map(([name, expr]) => [name, ...COMPILERS.map(([, make]) => evalsPerSecond(make, expr, n))]),
  };
}

function timeMs(fn: () => unknown): number {
  const t0 = process.hrtime.bigint();
  fn();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/**
 * ^(a+)+$ against 'aaa…a!' backtracks exponentially in a JavaScript RegExp. The built-in run is
 * measured only up to a safe length and extrapolated to 26 characters; RE2 runs the real thing.
 */
export function redosTable(maxSafe: number): Table {
  const builtin = marcParse("s.matches('^(a+)+$')");
  const re2 = compileCel("request.path.matches('^(a+)+$')");
  const lengths = [maxSafe - 6, maxSafe - 4, maxSafe - 2, maxSafe];
  const rows: string[][] = [];
  const times: number[] = [];
  for (const len of lengths) {
    const s = 'a'.repeat(len - 1) + '!';
    const ms = timeMs(() => builtin({ s }));
    times.push(ms);
    rows.push([String(len), `${fmt(ms, 1)} ms`, 'unsupported (no matches())', `${fmt(timeMs(() => re2.evaluate({ request: { path: s } })), 3)} ms`]);
  }
  const growth = Math.pow((times[3] ?? 1) / (times[2] ?? 1), 1 / 2);
  const at26 = (times[3] ?? 0) * Math.pow(growth, 26 - maxSafe);
  const s26 = 'a'.repeat(25) + '!';
  rows.push(['26', `≈ ${fmt(at26 / 1000, 1)} s (extrapolated, ×${fmt(growth, 2)}/char)`, 'unsupported', `${fmt(timeMs(() => re2.evaluate({ request: { path: s26 } })), 3)} ms`]);
  const sMax = 'a'.repeat(MAX_REGEX_INPUT - 1) + '!';
  rows.push([String(MAX_REGEX_INPUT), 'not run', 'unsupported', `${fmt(timeMs(() => re2.evaluate({ request: { path: sMax } })), 2)} ms`]);
  return {
    title: "Regex DoS: ^(a+)+$ on 'aaa…a!' (one evaluation)",
    headers: ['input chars', 'marc built-in matches (JS RegExp)', 'cel-js', 'Portcullis re2Matches (re2js)'],
    rows,
    notes: ['The built-in run stops at a short input on purpose: it blocks the event loop; 26 characters is extrapolated from the measured growth.'],
  };
}

export function celCompare(quick: boolean): Table[] {
  return [behaviourTable(), throughputTable(quick ? 20_000 : 200_000), redosTable(quick ? 20 : 24)];
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  for (const t of celCompare(process.argv.includes('--quick'))) console.log(`${formatText(t)}\n`);
}
