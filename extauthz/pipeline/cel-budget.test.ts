/**
 * One CEL runtime budget per Check, from the attacker's side: a policy author who knows the
 * budget spreads loops over the rules' conditions and a quota key so that each part alone fits.
 * Together they must still be cut off (CONDITION_BUDGET, quota outcome expression_budget), and
 * before any counter is charged. The budget is injected (steps only, no clock) so the test
 * decides on counts, not on this machine's speed.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { compileValid } from '../../test/helpers/policies.js';
import { checkRequest } from '../../test/helpers/requests.js';
import type { ChargeItem, ChargeOutcome, QuotaBackend } from '../quota/backend.js';
import { MemoryBackend } from '../quota/memory-backend.js';
import { QuotaMetrics } from '../quota/metrics.js';
import { QuotaEnforcer } from '../quota/phase.js';
import { DecisionPipeline } from './pipeline.js';

const HOST = 'budget.test.example';
/** 100 elements: each loop below iterates about 100 times. */
const LIST = ','.repeat(99);
/** Three deny rules of ~100 steps (~300) fit; a quota key of ~100 more does not. */
const LIMITS = { steps: 350, ms: Number.MAX_SAFE_INTEGER };

const LOOP = "request.headers['x-l'].split(',').all(x, true)";

function policy(keyLoops: boolean, ruleLoops: boolean): string {
  const when = (i: number): string => (ruleLoops ? `${LOOP} && request.method == 'NONE${i}'` : `request.method == 'NONE${i}'`);
  const key = keyLoops ? `"${LOOP.replaceAll('"', '\\"')} ? 'a' : 'b'"` : '"request.method"';
  return `apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: budget, namespace: t }
spec:
  hosts: [${HOST}]
  rules:
${[0, 1, 2].map((i) => `    - name: deny-${i}\n      effect: deny\n      when: "${when(i)}"\n`).join('')}    - name: open
      principals: { anonymous: true }
      quotas: [{ name: spread, limit: 100, per: 1m, algorithm: fixed-window, key: ${key} }]
`;
}

/** Counts what was charged: an over-budget Check must charge nothing. */
class Counting implements QuotaBackend {
  readonly name = 'memory' as const;
  charged = 0;
  private readonly inner = new MemoryBackend({ clock: () => 1_800_000_000_000 });
  charge(items: readonly ChargeItem[]): Promise<ChargeOutcome[]> {
    this.charged += items.length;
    return this.inner.charge(items);
  }
  peek(items: readonly ChargeItem[]): Promise<ChargeOutcome[]> {
    return this.inner.peek(items);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

function setup(yaml: string): { pipeline: DecisionPipeline; backend: Counting; registry: Registry } {
  const { snapshot } = compileValid(yaml);
  const backend = new Counting();
  const registry = new Registry();
  const quota = new QuotaEnforcer({ backend, metrics: new QuotaMetrics(registry) });
  return { pipeline: new DecisionPipeline({ snapshot: () => snapshot, quota, celLimits: LIMITS }), backend, registry };
}

const request = (list: string): ReturnType<typeof checkRequest> => checkRequest({ host: HOST, path: '/x', headers: { 'x-l': list } });

void describe('one CEL runtime budget per Check (rules, quota key and cost together)', () => {
  const cases: { name: string; rules: boolean; key: boolean; allowed: boolean }[] = [
    { name: 'the rules\u2019 loops alone fit the budget', rules: true, key: false, allowed: true },
    { name: 'the quota key\u2019s loop alone fits the budget', rules: false, key: true, allowed: true },
    { name: 'rules and quota key together exceed it', rules: true, key: true, allowed: false },
  ];
  for (const c of cases) {
    void test(c.name, async () => {
      const { pipeline, backend, registry } = setup(policy(c.key, c.rules));
      const d = await pipeline.check(request(LIST));
      assert.equal(d.allowed, c.allowed, d.reason);
      if (c.allowed) return assert.equal(backend.charged, 1);
      assert.deepEqual([d.status, d.code], [403, 'CONDITION_BUDGET']);
      assert.match(d.reason, /quota spread: key expression exceeded its runtime budget: evaluation exceeded 350 steps/);
      assert.equal(backend.charged, 0, 'an over-budget Check charged a quota');
      assert.deepEqual(d.audit.quota, { error: 'expression_budget', quota: 'spread' });
      assert.match(await registry.metrics(), /portcullis_quota_decisions_total\{quota="spread",outcome="expression_budget"\} 1/);
    });
  }

  void test('the budget is per Check: the next Check with a short list starts afresh', async () => {
    const { pipeline } = setup(policy(true, true));
    assert.equal((await pipeline.check(request(LIST))).code, 'CONDITION_BUDGET');
    const d = await pipeline.check(request(','));
    assert.equal(d.allowed, true, d.reason);
  });
});
