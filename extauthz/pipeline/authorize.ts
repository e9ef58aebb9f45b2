/**
 * Phase 4, authorize. Deny rules first (any match denies); then allow rules in order (the first
 * match decides); nothing matches: the policy's defaultAction. Each rule check is a list of small
 * predicates whose first failure is the reason, so every decision can be explained.
 */
import type { ErrorCode } from '../errors.js';
import type { CompiledPolicy, CompiledRule } from '../policy/compile.js';
import { matchPath } from '../policy/paths.js';
import { CelBudget, CelBudgetExceededError, CelEvalError, sharedBudget } from '../policy/cel.js';
import type { RequestContext } from './context.js';
import { principalCelValue, type Principal } from './principal.js';
import type { CompiledPurpose } from '../policy/tenants.js';

/** The request header in which a principal declares its purpose of use. */
export const PURPOSE_HEADER = 'x-purpose-of-use';

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
  /** The declared purpose of use, validated against the principal's tenant (absent: none declared). */
  purpose?: CompiledPurpose;
  trace: RuleTrace[];
}

type Matched = { params: Record<string, string>; template?: string };
type Outcome = ({ kind: 'match' } & Matched) | { kind: 'skip'; reason: string } | ({ kind: 'mfa' | 'purpose'; reason: string } & Matched) | { kind: 'error'; reason: string; code: ErrorCode };

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

/**
 * One CEL activation per Check, not per rule: the rules' conditions see the same request,
 * principal and tenant; only `params` differs, set before each evaluation (CEL keeps no
 * reference to an activation after evaluate returns).
 */
class Activations {
  private base: Record<string, unknown> | undefined;
  constructor(
    readonly ctx: RequestContext,
    readonly principal: Principal | undefined,
  ) {}
  with(params: Record<string, string>): Record<string, unknown> {
    const b = (this.base ??= celActivation(this.ctx, this.principal, params));
    b.params = params;
    return b;
  }
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

function evaluateCondition(rule: CompiledRule, act: Activations, hit: Outcome & { kind: 'match' }): Outcome {
  if (!rule.when) return hit;
  try {
    const v = rule.when.evaluate(act.with(hit.params));
    if (v === true) return hit;
    return { kind: 'skip', reason: v === false ? CONDITION_FALSE : 'condition did not return a bool' };
  } catch (err) {
    const msg = err instanceof CelEvalError ? err.message : 'evaluation failed';
    return { kind: 'error', reason: `condition error: ${msg}`, code: err instanceof CelBudgetExceededError ? 'CONDITION_BUDGET' : 'CONDITION_ERROR' };
  }
}

const REQUIREMENT_REASON = { mfa: 'multi-factor authentication required', purpose: 'a declared purpose of use is required' } as const;

/** What an allow rule requires of the principal beyond matching: MFA first, then a declared purpose. */
function unmetRequirement(rule: CompiledRule, ctx: RequestContext, principal: Principal | undefined): 'mfa' | 'purpose' | undefined {
  if (rule.effect !== 'allow') return undefined;
  if (rule.requireMfa && !principal?.mfa) return 'mfa';
  // A declared purpose was validated before any rule (authorize): present here means listed.
  if (rule.requirePurpose && (!principal || ctx.headers[PURPOSE_HEADER] === undefined)) return 'purpose';
  return undefined;
}

function evaluateRule(rule: CompiledRule, act: Activations): Outcome {
  const { ctx, principal } = act;
  if (rule.methods && !rule.methods.has(ctx.method)) return { kind: 'skip', reason: `method ${ctx.method} not matched` };
  const matched = pathParams(rule, ctx);
  if (!matched) return { kind: 'skip', reason: 'path not matched' };
  const who = principalReason(rule, principal);
  if (who) return { kind: 'skip', reason: who };
  const missing = unmetRequirement(rule, ctx, principal);
  if (missing) return { kind: missing, reason: REQUIREMENT_REASON[missing], params: matched.params, ...tpl(matched) };
  return evaluateCondition(rule, act, { kind: 'match', ...matched });
}

function trace(list: RuleTrace[], rule: CompiledRule, o: Outcome): void {
  list.push({ rule: rule.name, effect: rule.effect, matched: o.kind === 'match', reason: o.kind === 'match' ? 'matched' : o.reason });
}

function tpl(o: { template?: string }): { template?: string } {
  return o.template !== undefined ? { template: o.template } : {};
}

type Pending = ({ code: ErrorCode; reason: string; rule: CompiledRule } & Matched) | undefined;

/** Deny rules: any match denies; one that cannot be evaluated denies too. Undefined: none applied. */
function denyPhase(policy: CompiledPolicy, act: Activations, steps: RuleTrace[]): Authorization | undefined {
  for (const rule of policy.denyRules) {
    const o = evaluateRule(rule, act);
    trace(steps, rule, o);
    if (o.kind === 'match') return { allowed: false, code: 'FORBIDDEN', reason: `denied by rule ${rule.name}`, rule, params: o.params, ...tpl(o), trace: steps };
    // A deny rule that cannot be evaluated might have matched: fail closed.
    if (o.kind === 'error') return { allowed: false, code: o.code, reason: `deny rule ${rule.name}: ${o.reason}`, rule, params: NO_PARAMS, trace: steps };
  }
  return undefined;
}

/** Which pending denial wins when no allow rule matches: the first one seen of the highest rank. */
const PENDING_RANK: Partial<Record<ErrorCode, number>> = { MFA_REQUIRED: 4, PURPOSE_REQUIRED: 3, CONDITION_BUDGET: 2, CONDITION_ERROR: 1 };
const PENDING_CODE = { mfa: 'MFA_REQUIRED', purpose: 'PURPOSE_REQUIRED' } as const;
const NO_PARAMS: Record<string, string> = Object.freeze({}) as Record<string, string>;

/** An MFA requirement outranks a purpose requirement, which outranks a condition error (budget first). */
function nextPending(pending: Pending, rule: CompiledRule, o: Outcome): Pending {
  if (o.kind === 'match' || o.kind === 'skip') return pending;
  const code = o.kind === 'error' ? o.code : PENDING_CODE[o.kind];
  if (pending && (PENDING_RANK[pending.code] ?? 0) >= (PENDING_RANK[code] ?? 0)) return pending;
  const next: Pending = { code, reason: `rule ${rule.name}: ${o.reason}`, rule, params: o.kind === 'error' ? NO_PARAMS : o.params };
  if (o.kind !== 'error' && o.template !== undefined) next.template = o.template;
  return next;
}

/** Allow rules in order: the first match allows; else a pending MFA or condition error denies. */
function allowPhase(policy: CompiledPolicy, act: Activations, steps: RuleTrace[]): Authorization | undefined {
  let pending: Pending;
  for (const rule of policy.allowRules) {
    const o = evaluateRule(rule, act);
    trace(steps, rule, o);
    if (o.kind === 'match') return { allowed: true, code: null, reason: `allowed by rule ${rule.name}`, rule, params: o.params, ...tpl(o), trace: steps };
    pending = nextPending(pending, rule, o);
  }
  return pending ? { allowed: false, ...pending, trace: steps } : undefined;
}

function defaultDecision(policy: CompiledPolicy, principal: Principal | undefined, steps: RuleTrace[]): Authorization {
  if (policy.defaultAction === 'allow') return { allowed: true, code: null, reason: 'no rule matched; defaultAction allow', params: {}, trace: steps };
  const code: ErrorCode = principal ? 'FORBIDDEN' : 'UNAUTHENTICATED';
  return { allowed: false, code, reason: principal ? 'no rule allows this request' : 'credentials required', params: {}, trace: steps };
}

/**
 * The purpose a principal declares must be one its tenant lists: a Map lookup, once per Check.
 * Undefined: none declared (or anonymous); null: declared but not listed.
 */
export function declaredPurpose(ctx: RequestContext, principal: Principal | undefined): CompiledPurpose | null | undefined {
  const declared = ctx.headers[PURPOSE_HEADER];
  if (declared === undefined || !principal) return undefined;
  return principal.tenant.purposeIndex.get(declared) ?? null;
}

function decide(policy: CompiledPolicy, act: Activations, steps: RuleTrace[], budget: CelBudget): Authorization {
  return sharedBudget(() => denyPhase(policy, act, steps) ?? allowPhase(policy, act, steps) ?? defaultDecision(policy, act.principal, steps), budget);
}

/**
 * The rules of one Check draw on the Check's one CEL runtime budget (cel-meter), which its quota
 * expressions draw on after them: a policy cannot multiply it by its rule or quota count.
 */
export function authorize(policy: CompiledPolicy, ctx: RequestContext, principal: Principal | undefined, budget: CelBudget = new CelBudget()): Authorization {
  const steps: RuleTrace[] = [];
  const purpose = declaredPurpose(ctx, principal);
  // The offending value is never echoed: not in the reason, not in the audit record.
  if (purpose === null) return { allowed: false, code: 'PURPOSE_NOT_ALLOWED', reason: `the declared purpose of use is not one tenant ${principal!.tenant.name} lists`, params: NO_PARAMS, trace: steps };
  const a = decide(policy, new Activations(ctx, principal), steps, budget);
  if (purpose) a.purpose = purpose;
  return a;
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
