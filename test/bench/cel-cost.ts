/**
 * How the static CEL cost estimate (extauthz/policy/cel-cost.ts) relates to time: expressions
 * run against the largest input the limits allow, with the runtime budget lifted, so each row
 * shows the estimate, the measured worst case and the time one unit took. ADR 0003 quotes it.
 *
 *   node dist/test/bench/cel-cost.js [--quick]
 */
import { CelBudget, compileCel, MAX_EXPRESSION_COST, MAX_REGEX_INPUT, RUNTIME_LIMITS, sharedBudget } from '../../extauthz/policy/cel.js';
import { fmt, formatText, percentile, type Table } from './table.js';

type Act = Record<string, unknown>;

const strings = (n: number, len: number): string[] => Array.from({ length: n }, (_, i) => `${i}`.padStart(len, 'g'));

function act(over: { request?: Act; principal?: Act }): Act {
  return {
    request: { method: 'GET', path: '/', host: 'h', headers: {}, query: {}, sourceIp: '', time: new Date(), ...over.request },
    principal: { type: 'consumer', tenant: 't', subject: 's', claims: {}, spiffeId: '', method: 'jwt', mfa: false, ...over.principal },
    tenant: { name: 't', namespace: 'n', type: 'agency', attributes: {}, purposes: [] },
    params: {},
    now: new Date(),
  };
}

const HEADERS = Object.fromEntries(strings(200, 8).map((k) => [`x-${k}`, 'y'.repeat(300)]));

/** [expression, worst-case activation within the request limits] */
const CASES: [string, Act][] = [
  ["'mfa' in principal.claims.amr", act({ principal: { claims: { amr: strings(6144, 1) } } })],
  ["principal.claims.scopes.exists(s, s == 'datasets:read')", act({ principal: { claims: { scopes: strings(6144, 1) } } })],
  ["request.path.matches('^/v1/datasets/[a-z0-9-]+$')", act({ request: { path: '/v1/datasets/' + 'a'.repeat(MAX_REGEX_INPUT - 14) + '!' } })],
  ["request.headers['x-a'].matches('^[0-9]+$')", act({ request: { headers: { 'x-a': '1'.repeat(MAX_REGEX_INPUT - 1) + 'a' } } })],
  ["request.headers.exists(k, k.startsWith('zz') || request.headers[k] == 'z')", act({ request: { headers: HEADERS } })],
  ["request.headers['x-l'].split(',').all(x, true)", act({ request: { headers: { 'x-l': ','.repeat(16_000) } } })],
  [`cel.bind(l, [${Array.from({ length: 60 }, (_, i) => i).join(',')}], l.all(a, l.all(b, a + b >= 0)))`, act({})],
];

function measure(expr: string, a: Act, runs: number): { cost: number; ms: number } {
  const p = compileCel(expr, { expect: 'bool' });
  const lifted = { steps: Number.MAX_SAFE_INTEGER, ms: Number.MAX_SAFE_INTEGER };
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    sharedBudget(() => {
      try {
        p.evaluate(a);
      } catch {
        // The value does not matter here, only the time to produce it or fail.
      }
    }, new CelBudget(lifted));
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((x, y) => x - y);
  return { cost: p.cost, ms: percentile(times, 50) };
}

export function celCostTable(quick: boolean): Table {
  const runs = quick ? 5 : 25;
  const rows = CASES.map(([expr, a]) => {
    const { cost, ms } = measure(expr, a, runs);
    return [expr.length > 70 ? `${expr.slice(0, 67)}…` : expr, String(cost), `${fmt(ms, 3)} ms`, `${fmt((ms * 1e6) / cost, 0)} ns`];
  });
  return {
    title: 'CEL cost estimate vs measured worst case (median of runs, runtime budget lifted)',
    headers: ['expression', 'estimate (units)', 'measured', 'time per unit'],
    rows,
    notes: [
      `Limits: ${MAX_EXPRESSION_COST} units per expression at load; at run time ${RUNTIME_LIMITS.steps} comprehension steps or ${RUNTIME_LIMITS.ms} ms per Check.`,
      'An estimate is an upper bound: rows whose time per unit is far below 100 ns are where the model is conservative.',
    ],
  };
}

if (process.argv[1]?.endsWith('cel-cost.js')) console.log(formatText(celCostTable(process.argv.includes('--quick'))));
