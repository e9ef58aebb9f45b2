/**
 * Which counters one request charges: the rule's quotas (inline, or references to the principal's
 * tenant quota of that name) plus the tenant's quotas whose appliesTo lists the principal type.
 * Keys and costs are evaluated here with the CEL programs compiled at load.
 */
import { celActivation } from '../pipeline/authorize.js';
import type { QuotaRequest } from '../pipeline/hooks.js';
import { CelBudgetExceededError, CelEvalError, type CelProgram } from '../policy/cel.js';
import type { ChargeItem } from './backend.js';
import type { KeyHasher } from './keys.js';
import type { CompiledQuota, RuleQuotaRef } from './model.js';

export interface PlannedQuota {
  quota: CompiledQuota;
  item: ChargeItem;
}

type PlanOutcome = 'undefined_quota' | 'expression_error' | 'expression_budget';

export type Plan = { ok: true; quotas: PlannedQuota[] } | { ok: false; outcome: PlanOutcome; quota: string; reason: string };

interface Chosen {
  quota: CompiledQuota;
  scope: string;
  cost: number | CelProgram;
}

class PlanError extends Error {
  constructor(
    readonly outcome: PlanOutcome,
    readonly quota: string,
    message: string,
  ) {
    super(message);
  }
}

/** One entry of the rule: its own counter, or the tenant's quota of that name (missing: fail closed). */
function fromRule(ref: RuleQuotaRef, req: QuotaRequest, hasher: KeyHasher): Chosen {
  const rule = req.rule!;
  if (ref.kind === 'inline') return { quota: ref.quota, scope: hasher.ruleScope(req.policy.key, rule.name), cost: ref.quota.cost };
  const tenant = req.principal?.tenant;
  const q = tenant?.quotas?.get(ref.name);
  if (!q) {
    const why = tenant ? `tenant ${tenant.name} does not define` : 'an anonymous request has no tenant for';
    throw new PlanError('undefined_quota', ref.name, `rule ${rule.name} charges quota "${ref.name}", which ${why}`);
  }
  return { quota: q, scope: 't', cost: ref.cost ?? q.cost };
}

function choose(req: QuotaRequest, hasher: KeyHasher): Chosen[] {
  const chosen = (req.rule?.quotas ?? []).map((ref) => fromRule(ref, req, hasher));
  const named = new Set(chosen.filter((c) => c.scope === 't').map((c) => c.quota.name));
  const p = req.principal;
  for (const q of p?.tenant.quotas?.values() ?? []) {
    if (q.appliesTo.has(p!.type) && !named.has(q.name)) chosen.push({ quota: q, scope: 't', cost: q.cost });
  }
  return chosen;
}

function evalCel(program: CelProgram, activation: Record<string, unknown>, what: string, quota: string): unknown {
  try {
    return program.evaluate(activation);
  } catch (err) {
    // Over the runtime budget is the policy's doing, not the backend's: CONDITION_BUDGET, like a condition.
    if (err instanceof CelBudgetExceededError) throw new PlanError('expression_budget', quota, `quota ${quota}: ${what} expression exceeded its runtime budget: ${err.message}`);
    const msg = err instanceof CelEvalError ? err.message : 'evaluation failed';
    throw new PlanError('expression_error', quota, `quota ${quota}: ${what} expression failed: ${msg}`);
  }
}

function costOf(c: Chosen, activation: () => Record<string, unknown>): number {
  if (typeof c.cost === 'number') return c.cost;
  const v = evalCel(c.cost, activation(), 'cost', c.quota.name);
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0) throw new PlanError('expression_error', c.quota.name, `quota ${c.quota.name}: cost expression must return a non-negative int`);
  return n;
}

function partitionOf(c: Chosen, req: QuotaRequest, hasher: KeyHasher, activation: () => Record<string, unknown>): string {
  const key = c.quota.key;
  if (key === 'tenant' || key === 'principalType') return 'all';
  if (key === 'principal') return req.principal ? hasher.subjectPartition(req.principal.subject) : 'all';
  const v = evalCel(key, activation(), 'key', c.quota.name);
  if (typeof v !== 'string') throw new PlanError('expression_error', c.quota.name, `quota ${c.quota.name}: key expression must return a string`);
  return hasher.valuePartition(v);
}

export function plan(req: QuotaRequest, hasher: KeyHasher): Plan {
  let act: Record<string, unknown> | undefined;
  const activation = (): Record<string, unknown> => (act ??= celActivation(req.ctx, req.principal, req.params));
  const p = req.principal;
  try {
    const quotas = choose(req, hasher).map((c): PlannedQuota => {
      const parts = {
        namespace: p?.tenant.namespace ?? req.policy.namespace,
        tenant: p?.tenant.name ?? '',
        principalType: p?.type ?? 'anonymous',
        scope: c.scope,
        quota: c.quota.name,
        partition: partitionOf(c, req, hasher, activation),
      };
      const { algorithm, limit, periodMs, capacity } = c.quota;
      return { quota: c.quota, item: { key: hasher.key(parts), algorithm, limit, periodMs, capacity, cost: costOf(c, activation) } };
    });
    return { ok: true, quotas };
  } catch (err) {
    if (err instanceof PlanError) return { ok: false, outcome: err.outcome, quota: err.quota, reason: err.message };
    throw err;
  }
}
