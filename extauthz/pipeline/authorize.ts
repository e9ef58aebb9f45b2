/**
 * Phase 4, authorize. Deny rules first (any match denies); then allow rules in order (the first
 * match decides); nothing matches: the policy's defaultAction. Each rule check is a list of small
 * predicates whose first failure is the reason, so every decision can be explained.
 */
import type { ErrorCode } from '../errors.js';
import type { CompiledPolicy, CompiledRule } from '../policy/compile.js';
import { matchPath } from '../policy/paths.js';
import { CelEvalError } from '../policy/cel.js';
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

/** Why a rule did not apply; the text is built only for a trace (explain), never per Check. */
type Skip = 'method' | 'path' | 'anonymous' | 'type-unlisted' | 'type' | 'tenant' | 'false' | 'not-bool';

type Outcome = { kind: 'match'; params: Record<string, string>; template?: string } | { kind: 'skip'; skip: Skip } | { kind: 'mfa' | 'error'; reason: string };

const ANONYMOUS_TENANT = Object.freeze({ name: '', namespace: '', type: '', attributes: Object.freeze({}), purposes: Object.freeze([]) });

export function celActivation(ctx: RequestContext, principal: Principal | undefined, params: Record<string, string>): Record<string, unknown> {
  return {
    request: { method: ctx.method, path: ctx.path, host: ctx.host, headers: ctx.headers, query: ctx.query, sourceIp: ctx.sourceIp, time: ctx.now },
    principal: principalCelValue(principal),
    tenant: principal?.tenant.celValue ?? ANONYMOUS_TENANT,
    params,
    now: ctx.now,
  };
}

/** One Check's view for the rules: the CEL activation is built once, on the first condition, and only params change per rule. */
interface Subject {
  ctx: RequestContext;
  principal: Principal | undefined;
  activation?: Record<string, unknown>;
  explain: boolean;
}

function activationFor(s: Subject, params: Record<string, string>): Record<string, unknown> {
  if (!s.activation) s.activation = celActivation(s.ctx, s.principal, params);
  else s.activation.params = params;
  return s.activation;
}

function principalReason(rule: CompiledRule, p: Principal | undefined): Skip | undefined {
  // A deny rule that names no principals covers everyone, anonymous callers included: otherwise
  // defaultAction allow (or an anonymous allow rule) would let anonymous requests past it.
  const coversAnyone = rule.effect === 'deny' && !rule.types && !rule.tenants;
  if (!p) return rule.anonymous || coversAnyone ? undefined : 'anonymous';
  if (rule.types && !rule.types.has(p.type)) return rule.anonymous && !rule.tenants ? 'type-unlisted' : 'type';
  if (rule.tenants && !rule.tenants.has(p.tenant.name)) return 'tenant';
  return undefined;
}

function skipText(skip: Skip, rule: CompiledRule, s: Subject): string {
  switch (skip) {
    case 'method': return `method ${s.ctx.method} not matched`;
    case 'path': return 'path not matched';
    case 'anonymous': return 'requires an authenticated principal';
    case 'type-unlisted': return 'principal type not listed';
    case 'type': return `principal type ${s.principal!.type} not in [${[...rule.types!].join(', ')}]`;
    case 'tenant': return `tenant ${s.principal!.tenant.name} not listed`;
    case 'false': return 'condition is false';
    case 'not-bool': return 'condition did not return a bool';
  }
}

const NO_PARAMS: Record<string, string> = Object.freeze({}) as Record<string, string>;

function pathParams(rule: CompiledRule, ctx: RequestContext): { params: Record<string, string>; template?: string } | undefined {
  if (!rule.paths) return { params: NO_PARAMS };
  for (const t of rule.paths) {
    const params = matchPath(t, ctx.segments);
    if (params) return { params, template: t.source };
  }
  return undefined;
}

function evaluateCondition(rule: CompiledRule, s: Subject, params: Record<string, string>, template: string | undefined): Outcome {
  const hit: Outcome = template !== undefined ? { kind: 'match', params, template } : { kind: 'match', params };
  if (!rule.when) return hit;
  try {
    const v = rule.when.evaluate(activationFor(s, params));
    if (v === true) return hit;
    return { kind: 'skip', skip: v === false ? 'false' : 'not-bool' };
  } catch (err) {
    const msg = err instanceof CelEvalError ? err.message : 'evaluation failed';
    return { kind: 'error', reason: `condition error: ${msg}` };
  }
}

const SKIP_METHOD: Outcome = { kind: 'skip', skip: 'method' };
const SKIP_PATH: Outcome = { kind: 'skip', skip: 'path' };
const MFA: Outcome = { kind: 'mfa', reason: 'multi-factor authentication required' };

function evaluateRule(rule: CompiledRule, s: Subject): Outcome {
  if (rule.methods && !rule.methods.has(s.ctx.method)) return SKIP_METHOD;
  const matched = pathParams(rule, s.ctx);
  if (!matched) return SKIP_PATH;
  const who = principalReason(rule, s.principal);
  if (who) return { kind: 'skip', skip: who };
  if (rule.effect === 'allow' && rule.requireMfa && !s.principal?.mfa) return MFA;
  return evaluateCondition(rule, s, matched.params, matched.template);
}

function trace(list: RuleTrace[], rule: CompiledRule, o: Outcome, s: Subject): void {
  if (!s.explain) return;
  const reason = o.kind === 'match' ? 'matched' : o.kind === 'skip' ? skipText(o.skip, rule, s) : o.reason;
  list.push({ rule: rule.name, effect: rule.effect, matched: o.kind === 'match', reason });
}

type Pending = { code: ErrorCode; reason: string; rule: CompiledRule } | undefined;

/** "allowed by rule X" / "denied by rule X", built once per compiled rule, not per Check. */
const REASONS = new WeakMap<CompiledRule, string>();
function matchReason(rule: CompiledRule): string {
  let r = REASONS.get(rule);
  if (r === undefined) REASONS.set(rule, (r = `${rule.effect === 'deny' ? 'denied' : 'allowed'} by rule ${rule.name}`));
  return r;
}

function matched(allowed: boolean, rule: CompiledRule, o: Outcome & { kind: 'match' }, steps: RuleTrace[]): Authorization {
  const a: Authorization = { allowed, code: allowed ? null : 'FORBIDDEN', reason: matchReason(rule), rule, params: o.params, trace: steps };
  if (o.template !== undefined) a.template = o.template;
  return a;
}

/** Deny rules: any match denies; one that cannot be evaluated denies too. Undefined: none applied. */
function denyPhase(policy: CompiledPolicy, s: Subject, steps: RuleTrace[]): Authorization | undefined {
  for (const rule of policy.denyRules) {
    const o = evaluateRule(rule, s);
    trace(steps, rule, o, s);
    if (o.kind === 'match') return matched(false, rule, o, steps);
    // A deny rule that cannot be evaluated might have matched: fail closed.
    if (o.kind === 'error') return { allowed: false, code: 'CONDITION_ERROR', reason: `deny rule ${rule.name}: ${o.reason}`, rule, params: {}, trace: steps };
  }
  return undefined;
}

/** An MFA requirement outranks a condition error; otherwise the first one seen is kept. */
function nextPending(pending: Pending, rule: CompiledRule, o: Outcome): Pending {
  if (o.kind === 'mfa' && pending?.code !== 'MFA_REQUIRED') return { code: 'MFA_REQUIRED', reason: `rule ${rule.name}: ${o.reason}`, rule };
  if (o.kind === 'error' && !pending) return { code: 'CONDITION_ERROR', reason: `rule ${rule.name}: ${o.reason}`, rule };
  return pending;
}

/** Allow rules in order: the first match allows; else a pending MFA or condition error denies. */
function allowPhase(policy: CompiledPolicy, s: Subject, steps: RuleTrace[]): Authorization | undefined {
  let pending: Pending;
  for (const rule of policy.allowRules) {
    const o = evaluateRule(rule, s);
    trace(steps, rule, o, s);
    if (o.kind === 'match') return matched(true, rule, o, steps);
    pending = nextPending(pending, rule, o);
  }
  return pending ? { allowed: false, code: pending.code, reason: pending.reason, rule: pending.rule, params: {}, trace: steps } : undefined;
}

function defaultDecision(policy: CompiledPolicy, principal: Principal | undefined, steps: RuleTrace[]): Authorization {
  if (policy.defaultAction === 'allow') return { allowed: true, code: null, reason: 'no rule matched; defaultAction allow', params: {}, trace: steps };
  const code: ErrorCode = principal ? 'FORBIDDEN' : 'UNAUTHENTICATED';
  return { allowed: false, code, reason: principal ? 'no rule allows this request' : 'credentials required', params: {}, trace: steps };
}

/** explain: record every rule considered, with its reason, in trace (the CLI's --explain); off on the served path. */
export function authorize(policy: CompiledPolicy, ctx: RequestContext, principal: Principal | undefined, explain = true): Authorization {
  const steps: RuleTrace[] = [];
  const s: Subject = { ctx, principal, explain };
  return denyPhase(policy, s, steps) ?? allowPhase(policy, s, steps) ?? defaultDecision(policy, principal, steps);
}
