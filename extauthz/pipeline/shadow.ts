/**
 * Shadow mode: a what-if evaluation beside the decision, never deciding. Its subject is either a
 * shadow policy (spec.mode: shadow) that routes the request, or the shadow view of the enforcing
 * policy (its shadow rules enforced with the others). It identifies (with the shadow policy's
 * tenants), authorizes and computes its quotas with a dry run (peek: nothing is charged), and the
 * outcome goes into the decision as `shadow` and, when it would deny, into the audit record as
 * `wouldDeny`. Nothing else of the decision changes: headers, masks, quota charges and the
 * status are those the enforcing policy produced, or the default deny when there is none.
 */
import { CATALOGUE, PortcullisError, type ErrorCode } from '../errors.js';
import type { CompiledPolicy } from '../policy/compile.js';
import { authorize, explainConditions, type Authorization, type RuleTrace } from './authorize.js';
import type { ShadowOutcome } from './decision.js';
import type { RequestContext } from './context.js';
import type { QuotaPhase, QuotaRequest, QuotaResult } from './hooks.js';
import type { Identifier } from './identify/index.js';
import { applyPathHandling } from './path-handling.js';
import type { Principal } from './principal.js';
import { checkRequest } from '../policy/request-checks.js';
import { lifecycleState } from '../policy/lifecycle.js';
import type { CelBudget } from '../policy/cel.js';

export interface ShadowInput {
  ctx: RequestContext;
  /** The enforcing policy, if one routed the request. */
  enforcing: CompiledPolicy | undefined;
  /** The enforcing run's principal, when identify completed for it. */
  principal: Principal | undefined;
  identified: boolean;
  explain: boolean;
  signal?: AbortSignal;
  /**
   * The shadow evaluation's own CEL runtime budget (its rules, then its quota expressions): never
   * the enforcing run's, so a shadow policy cannot exhaust the budget the decision draws on.
   */
  budget: CelBudget;
  /** Routes stripped path segments among the shadow policies (pathHandling.parameters: strip). */
  reroute: (segments: readonly string[]) => CompiledPolicy | undefined;
}

interface Decided {
  rule: string | null;
  trace: RuleTrace[];
}

const NOTHING_DECIDED: Decided = { rule: null, trace: [] };

function denied(policy: CompiledPolicy, code: ErrorCode, reason: string, by: Decided = NOTHING_DECIDED): ShadowOutcome {
  return { policy: policy.key, allowed: false, code, status: CATALOGUE[code].http, rule: by.rule, reason, trace: by.trace };
}

export interface ShadowDeps {
  identifier: Identifier;
  quota: QuotaPhase;
  /** Unexpected errors (never client input problems), for the log. */
  onError: (err: unknown) => void;
}

async function principalFor(policy: CompiledPolicy, input: ShadowInput, identifier: Identifier): Promise<Principal | undefined> {
  // Same tenants as the enforcing run (shadow rules, or a shadow policy of the same namespace): same principal.
  if (input.identified && input.enforcing?.tenants === policy.tenants) return input.principal;
  return identifier.identify(input.ctx, policy.tenants, input.signal);
}

async function decide(policy: CompiledPolicy, input: ShadowInput, deps: ShadowDeps): Promise<ShadowOutcome> {
  const ctx = input.ctx;
  // Without an enforcing policy the path was not prepared for any policy: the shadow policy's own handling applies.
  const problem = input.enforcing ? undefined : applyPathHandling(ctx, policy, input.reroute);
  if (problem) return denied(policy, 'BAD_REQUEST', problem);
  const principal = await principalFor(policy, input, deps.identifier);
  const authz = authorize(policy, ctx, principal, input.budget);
  if (input.explain) explainConditions(policy, ctx, principal, authz.trace);
  const by: Decided = { rule: authz.rule?.name ?? null, trace: authz.trace };
  const refused = refusal(policy, authz, ctx);
  if (refused) return denied(policy, refused.code, refused.reason, by);
  const q = await peekQuotas({ policy, authz, principal }, input, deps.quota);
  if (q && !q.allowed) return denied(policy, q.code ?? 'QUOTA_EXCEEDED', q.reason ?? 'quota exceeded', by);
  return { policy: policy.key, allowed: true, code: null, status: 200, rule: by.rule, reason: authz.reason, trace: by.trace };
}

/**
 * Why the shadow decision refuses before quotas: authorization, then the allowing rule's
 * lifecycle (sunset) and request checks, in the enforcing run's order (pipeline.ts).
 */
function refusal(policy: CompiledPolicy, authz: Authorization, ctx: RequestContext): { code: ErrorCode; reason: string } | undefined {
  if (!authz.allowed) return { code: authz.code ?? 'FORBIDDEN', reason: authz.reason };
  const l = authz.rule?.lifecycle ?? policy.lifecycle;
  if (l && l.afterSunset === 'deny' && lifecycleState(l, ctx.now.getTime()) === 'sunset') return { code: 'API_SUNSET', reason: 'the route is past its sunset' };
  const r = authz.rule?.request;
  const f = r ? checkRequest(r, ctx) : undefined;
  return f ? { code: f.code, reason: `request ${f.check}${f.pointer === '' ? '' : ` at ${f.pointer}`}: ${f.message}` } : undefined;
}

/** The dry run of the quotas the shadow decision would charge (undefined: the phase has no peek). */
async function peekQuotas(of: { policy: CompiledPolicy; authz: Authorization; principal: Principal | undefined }, input: ShadowInput, quota: QuotaPhase): Promise<QuotaResult | undefined> {
  if (!quota.peek) return undefined;
  const { policy, authz, principal } = of;
  const req: QuotaRequest = { policy, ctx: input.ctx, params: authz.params, budget: input.budget };
  if (authz.rule) req.rule = authz.rule;
  if (principal) req.principal = principal;
  if (input.signal) req.signal = input.signal;
  return quota.peek(req);
}

/**
 * Evaluates the shadow policy; never throws (an unexpected error is a would-be INTERNAL, reported
 * through onError). Quotas are peeked, never charged.
 */
export async function evaluateShadow(policy: CompiledPolicy, input: ShadowInput, deps: ShadowDeps): Promise<ShadowOutcome> {
  try {
    return await decide(policy, input, deps);
  } catch (err) {
    if (err instanceof PortcullisError) return denied(policy, err.code, err.message);
    deps.onError(err);
    return denied(policy, 'INTERNAL', 'internal error');
  }
}
