/**
 * Phase 4, authorize. Deny rules first (any match denies); then allow rules in order (the first
 * match decides); nothing matches: the policy's defaultAction. Each rule check is a list of small
 * predicates whose first failure is the reason, so every decision can be explained.
 */
import type { ErrorCode } from '../errors.js';
import type { CompiledPolicy, CompiledRule } from '../policy/compile.js';
import { matchPath } from '../policy/paths.js';
import { CelBudgetExceededError, CelEvalError, sharedBudget } from '../policy/cel.js';
import type { RequestContext } from './context.js';
import { principalCelValue, type Principal } from './principal.js';

export interface RuleTrace {
  rule: string;
  effect: 'allow' | 'deny';
  matched: boolean;
  reason: string;
}

export interface Authorization {
  allowed: boolean;
  code: ErrorCode | null;
  reason: string;
  rule?: CompiledRule;
  params: Record<string, string>;
  /** The path template that matched, for audit records (never the raw path). */
  template?: string;
  trace: RuleTrace[];
}

type Outcome = { kind: 'match'; params: Record<string, string>; template?: string } | { kind: 'skip' | 'mfa'; reason: string } | { kind: 'error'; reason: string; code: ErrorCode };

const CONDITION_FALSE = 'condition is false';

export function celActivation(ctx: RequestContext, principal: Principal | undefined, params: Record<string, string>): Record<string, unknown> {
  return {
    request: { method: ctx.method, path: ctx.path, host: ctx.host, headers: ctx.headers, query: ctx.query, sourceIp: ctx.sourceIp, time: ctx.now },
    principal: principalCelValue(principal),
    tenant: principal?.tenant.celValue ?? { name: '', namespace: '', type: '', attributes: {}, purposes: [] },
    params,
    now: ctx.now,
  };
}

function principalReason(rule: CompiledRule, p: Principal | undefined): string | undefined {
  // A deny rule that names no principals covers everyone, anonymous callers included: otherwise
  // defaultAction allow (or an anonymous allow rule) would let anonymous requests past it.
  const coversAnyone = rule.effect === 'deny' && !rule.types && !rule.tenants;
  if (!p) return rule.anonymous || coversAnyone ? undefined : 'requires an authenticated principal';
  if (rule.types && !rule.types.has(p.type)) {
    return rule.anonymous && !rule.tenants ? 'principal type not listed' : `principal type ${p.type} not in [${[...rule.types].join(', ')}]`;
  }
  if (rule.tenants && !rule.tenants.has(p.tenant.name)) return `tenant ${p.tenant.name} not listed`;
  return undefined;
}

function pathParams(rule: CompiledRule, ctx: RequestContext): { params: Record<string, string>; template?: string } | undefined {
  if (!rule.paths) return { params: {} };
  for (const t of rule.paths) {
    const params = matchPath(t, ctx.segments);
    if (params) return { params, template: t.source };
  }
  return undefined;
}

function evaluateCondition(rule: CompiledRule, ctx: RequestContext, principal: Principal | undefined, hit: Outcome & { kind: 'match' }): Outcome {
  if (!rule.when) return hit;
  try {
    const v = rule.when.evaluate(celActivation(ctx, principal, hit.params));
    if (v === true) return hit;
    return { kind: 'skip', reason: v === false ? CONDITION_FALSE : 'condition did not return a bool' };
  } catch (err) {
    const msg = err instanceof CelEvalError ? err.message : 'evaluation failed';
    return { kind: 'error', reason: `condition error: ${msg}`, code: err instanceof CelBudgetExceededError ? 'CONDITION_BUDGET' : 'CONDITION_ERROR' };
  }
}

function evaluateRule(rule: CompiledRule, ctx: RequestContext, principal: Principal | undefined): Outcome {
  if (rule.methods && !rule.methods.has(ctx.method)) return { kind: 'skip', reason: `method ${ctx.method} not matched` };
  const matched = pathParams(rule, ctx);
  if (!matched) return { kind: 'skip', reason: 'path not matched' };
  const who = principalReason(rule, principal);
  if (who) return { kind: 'skip', reason: who };
  if (rule.effect === 'allow' && rule.requireMfa && !principal?.mfa) return { kind: 'mfa', reason: 'multi-factor authentication required' };
  return evaluateCondition(rule, ctx, principal, { kind: 'match', ...matched });
}

function trace(list: RuleTrace[], rule: CompiledRule, o: Outcome): void {
  list.push({ rule: rule.name, effect: rule.effect, matched: o.kind === 'match', reason: o.kind === 'match' ? 'matched' : o.reason });
}

function tpl(o: { template?: string }): { template?: string } {
  return o.template !== undefined ? { template: o.template } : {};
}

type Pending = { code: ErrorCode; reason: string; rule: CompiledRule } | undefined;

/** Deny rules: any match denies; one that cannot be evaluated denies too. Undefined: none applied. */
function denyPhase(policy: CompiledPolicy, ctx: RequestContext, principal: Principal | undefined, steps: RuleTrace[]): Authorization | undefined {
  for (const rule of policy.denyRules) {
    const o = evaluateRule(rule, ctx, principal);
    trace(steps, rule, o);
    if (o.kind === 'match') return { allowed: false, code: 'FORBIDDEN', reason: `denied by rule ${rule.name}`, rule, params: o.params, ...tpl(o), trace: steps };
    // A deny rule that cannot be evaluated might have matched: fail closed.
    if (o.kind === 'error') return { allowed: false, code: o.code, reason: `deny rule ${rule.name}: ${o.reason}`, rule, params: {}, trace: steps };
  }
  return undefined;
}

/** An MFA requirement outranks a condition error; otherwise the first one seen is kept. */
function nextPending(pending: Pending, rule: CompiledRule, o: Outcome): Pending {
  if (o.kind === 'mfa' && pending?.code !== 'MFA_REQUIRED') return { code: 'MFA_REQUIRED', reason: `rule ${rule.name}: ${o.reason}`, rule };
  if (o.kind === 'error' && (!pending || (o.code === 'CONDITION_BUDGET' && pending.code !== 'MFA_REQUIRED'))) return { code: o.code, reason: `rule ${rule.name}: ${o.reason}`, rule };
  return pending;
}

/** Allow rules in order: the first match allows; else a pending MFA or condition error denies. */
function allowPhase(policy: CompiledPolicy, ctx: RequestContext, principal: Principal | undefined, steps: RuleTrace[]): Authorization | undefined {
  let pending: Pending;
  for (const rule of policy.allowRules) {
    const o = evaluateRule(rule, ctx, principal);
    trace(steps, rule, o);
    if (o.kind === 'match') return { allowed: true, code: null, reason: `allowed by rule ${rule.name}`, rule, params: o.params, ...tpl(o), trace: steps };
    pending = nextPending(pending, rule, o);
  }
  return pending ? { allowed: false, ...pending, params: {}, trace: steps } : undefined;
}

function defaultDecision(policy: CompiledPolicy, principal: Principal | undefined, steps: RuleTrace[]): Authorization {
  if (policy.defaultAction === 'allow') return { allowed: true, code: null, reason: 'no rule matched; defaultAction allow', params: {}, trace: steps };
  const code: ErrorCode = principal ? 'FORBIDDEN' : 'UNAUTHENTICATED';
  return { allowed: false, code, reason: principal ? 'no rule allows this request' : 'credentials required', params: {}, trace: steps };
}

/** The rules of one Check share one CEL runtime budget (cel-meter): a policy cannot multiply it by its rule count. */
export function authorize(policy: CompiledPolicy, ctx: RequestContext, principal: Principal | undefined): Authorization {
  const steps: RuleTrace[] = [];
  return sharedBudget(() => denyPhase(policy, ctx, principal, steps) ?? allowPhase(policy, ctx, principal, steps) ?? defaultDecision(policy, principal, steps));
}

/**
 * Explain only (never on the serving path): for each rule whose condition was false, name the
 * sub-expression that made it false, evaluated again operand by operand.
 */
export function explainConditions(policy: CompiledPolicy, ctx: RequestContext, principal: Principal | undefined, trace: RuleTrace[]): void {
  const byName = new Map(policy.rules.map((r) => [r.name, r]));
  for (const step of trace) {
    const rule = byName.get(step.rule);
    if (step.reason !== CONDITION_FALSE || !rule?.when) continue;
    const params = pathParams(rule, ctx)?.params ?? {};
    step.reason = `${CONDITION_FALSE}: ${rule.when.explain(celActivation(ctx, principal, params))}`;
  }
}
