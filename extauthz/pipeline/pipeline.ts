/**
 * One Check, as named phases declared in one array: parse → route → identify → authorize →
 * quota → shape, then audit, always last. A phase either fills in the state or ends the run with
 * a deny; nothing throws out of check(): an unexpected error denies with INTERNAL (fail closed).
 */
import { randomUUID } from 'node:crypto';
import { PortcullisError, type ErrorCode } from '../errors.js';
import type { CompiledPolicy, CompiledRule } from '../policy/compile.js';
import { CelBudget, RUNTIME_LIMITS, type MeterLimits } from '../policy/cel.js';
import { checkRequest, type CompiledRequest, type RequestFailure } from '../policy/request-checks.js';
import { lifecycleState, type CompiledLifecycle } from '../policy/lifecycle.js';
import type { LifecycleFacts } from './shape.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import { authorize, explainConditions, type Authorization } from './authorize.js';
import type { CheckRequestInput } from './check-request.js';
import { parseCheckRequest, type RequestContext } from './context.js';
import { applyPathHandling } from './path-handling.js';
import type { Decision, ShadowOutcome } from './decision.js';
import { NO_QUOTAS, type AuditSink, type QuotaPhase, type QuotaRequest, type QuotaResult, type SignalSink, type CheckTracer, type PhaseTiming } from './hooks.js';
import { Identifier, RevokedError } from './identify/index.js';
import { presentedApiKey } from './identify/apikey.js';
import type { Principal } from './principal.js';
import { shapeAllow, shapeDeny } from './shape.js';
import { evaluateShadow } from './shadow.js';
import type { DirectiveIssuer } from '../masking/token.js';
import type { RevocationKind } from '../policy/revocation.js';

export type PhaseName = 'parse' | 'route' | 'identify' | 'authorize' | 'quota' | 'shape' | 'audit';

export interface PipelineDeps {
  /** The current snapshot; undefined until the first one loads (every Check then denies). */
  snapshot: () => PolicySnapshot | undefined;
  identifier?: Identifier;
  quota?: QuotaPhase;
  audit?: AuditSink;
  /** Suspicious-activity signals, told of each decided Check (extauthz/signals). */
  signals?: SignalSink;
  /** OpenTelemetry spans per Check and phase (extauthz/tracing); absent: no tracing work at all. */
  tracer?: CheckTracer;
  clock?: () => Date;
  /** Phase latency, for the metrics histogram. */
  observe?: (phase: PhaseName, seconds: number) => void;
  /** Unexpected errors (never client input problems), for the log. */
  onInternalError?: (err: unknown, requestId: string) => void;
  /** Signs masking directives on allow (x-portcullis-mask header and metadata). */
  directives?: DirectiveIssuer;
  /** The CEL runtime budget of one Check, shared by all its evaluations (default RUNTIME_LIMITS). */
  celLimits?: MeterLimits;
}

interface State {
  input: CheckRequestInput;
  now: Date;
  requestId: string;
  ctx?: RequestContext;
  snapshot?: PolicySnapshot;
  policy?: CompiledPolicy;
  principal?: Principal;
  authz?: Authorization;
  quota?: QuotaResult;
  /** Identify completed (s.principal is the answer, anonymous included). */
  identified?: boolean;
  /** The shadow policy or shadow view to evaluate beside the decision (pipeline/shadow.ts). */
  shadowPolicy?: CompiledPolicy;
  shadow?: ShadowOutcome;
  apiKeyHeader?: string;
  /** Set when identify found the credential on its tenant's revocation list. */
  revoked?: RevocationKind;
  deny?: { code: ErrorCode; reason: string };
  /** The first request check the matched rule's request validation failed. */
  validation?: RequestFailure;
  /** The deciding rule's (or policy's) deprecation and where the route stands at s.now. */
  lifecycle?: LifecycleFacts;
  decision?: Decision;
  directives?: DirectiveIssuer;
  /** explain: the full trace, with the failing part of false conditions named. */
  explain: boolean;
  /** Aborts when the caller's deadline passes (deadline.ts). */
  signal?: AbortSignal;
  /** Aborts before `signal`: the shadow evaluation's deadline. */
  shadowSignal?: AbortSignal;
  /** Phase timings, only while tracing is on. */
  timings?: PhaseTiming[];
  /** The Check's one CEL runtime budget: the rules' conditions, then the quota keys and costs. */
  budget: CelBudget;
}

type Phase = (s: State, d: Required<Omit<PipelineDeps, 'audit' | 'observe' | 'onInternalError' | 'directives' | 'signals' | 'tracer'>> & { onShadowError: (err: unknown, requestId: string) => void }) => void | Promise<void>;

function deny(s: State, code: ErrorCode, reason: string): void {
  s.deny = { code, reason };
}

const PHASES: readonly [PhaseName, Phase][] = [
  ['parse', (s) => {
    s.ctx = parseCheckRequest(s.input, s.now);
    s.requestId = s.ctx.requestId;
  }],
  ['route', (s, d) => {
    const snap = d.snapshot();
    if (!snap) return deny(s, 'NO_POLICY', 'no policy snapshot loaded yet');
    s.snapshot = snap;
    const ctx = s.ctx!;
    const policy = snap.route(ctx.host, ctx.segments, ctx.contextExtensions);
    // Policies without shadow rules, and snapshots without shadow policies, pay two field tests here.
    if (snap.hasShadowPolicies || policy?.shadowView) {
      const shadow = snap.routeShadow(ctx.host, ctx.segments, ctx.contextExtensions) ?? policy?.shadowView;
      if (shadow) s.shadowPolicy = shadow;
    }
    if (!policy) return deny(s, 'NO_POLICY', `no policy for host ${ctx.host}`);
    s.policy = policy;
    const pathProblem = applyPathHandling(ctx, policy, (segments) => snap.route(ctx.host, segments, ctx.contextExtensions));
    if (pathProblem) return deny(s, 'BAD_REQUEST', pathProblem);
  }],
  ['identify', async (s, d) => {
    const principal = await d.identifier.identify(s.ctx!, s.policy!.tenants, s.signal);
    if (principal) s.principal = principal;
    if (principal?.method === 'api-key') s.apiKeyHeader = presentedApiKey(s.ctx!, s.policy!.tenants)?.header;
    s.identified = true;
  }],
  ['authorize', (s) => {
    s.authz = authorize(s.policy!, s.ctx!, s.principal, s.budget);
    if (s.explain) explainConditions(s.policy!, s.ctx!, s.principal, s.authz.trace);
    if (!s.authz.allowed) return deny(s, s.authz.code ?? 'FORBIDDEN', s.authz.reason);
    const rule = s.authz.rule;
    const lifecycle = rule?.lifecycle ?? s.policy!.lifecycle;
    if (lifecycle && applyLifecycle(s, rule, lifecycle)) return;
    if (rule?.request) validateRequest(s, rule, rule.request);
  }],
  ['quota', async (s, d) => {
    // Shadow quotas are peeked before this request's charge, so both see the same counters.
    if (s.shadowPolicy && !s.shadow) await runShadow(s, d);
    s.quota = await d.quota.charge(quotaRequest(s));
    if (!s.quota.allowed) deny(s, s.quota.code ?? 'QUOTA_EXCEEDED', s.quota.reason ?? 'quota exceeded');
  }],
  ['shape', (s) => {
    s.decision = shapeAllow(s);
  }],
];

type Deps = Parameters<Phase>[1];

/** The shadow evaluation; never throws and never changes the decision (pipeline/shadow.ts). */
async function runShadow(s: State, d: Deps): Promise<void> {
  const snap = s.snapshot!;
  const ctx = s.ctx!;
  s.shadow = await evaluateShadow(s.shadowPolicy!, {
    ctx,
    enforcing: s.policy,
    principal: s.principal,
    identified: s.identified === true,
    explain: s.explain,
    budget: new CelBudget(d.celLimits),
    ...(s.shadowSignal ? { signal: s.shadowSignal } : {}),
    reroute: (segments) => snap.routeShadow(ctx.host, segments, ctx.contextExtensions),
  }, { identifier: d.identifier, quota: d.quota, onError: (err) => d.onShadowError(err, s.requestId) });
}

/**
 * The allowing rule's request validation (policy/request-checks.ts), before quotas are charged:
 * an invalid request costs no quota. The failure is kept for the deny body (its pointer), the
 * audit record and the trace explain prints.
 */
function validateRequest(s: State, rule: CompiledRule, r: CompiledRequest): void {
  const f = checkRequest(r, s.ctx!);
  if (!f) return;
  s.validation = f;
  const at = f.pointer === '' ? '' : ` at ${f.pointer}`;
  s.authz!.trace.push({ rule: rule.name, effect: 'allow', matched: true, reason: `request ${f.check} check failed${at}: ${f.message}` });
  deny(s, f.code, `rule ${rule.name}: request ${f.check}${at}: ${f.message}`);
}

/**
 * API lifecycle (policy/lifecycle.ts): the route's state at the Check's time, kept for the
 * response headers, the audit record and the metric; past the sunset it answers 410 API_SUNSET
 * unless afterSunset is serve. True when it denied.
 */
function applyLifecycle(s: State, rule: CompiledRule | undefined, l: CompiledLifecycle): boolean {
  const state = lifecycleState(l, s.now.getTime());
  s.lifecycle = { state, headers: l.headers };
  const name = rule?.name ?? '(default)';
  if (state === 'sunset' && l.afterSunset === 'deny') {
    s.authz!.trace.push({ rule: name, effect: 'allow', matched: true, reason: `past its sunset (${l.headers.sunset ?? ''}): afterSunset deny` });
    deny(s, 'API_SUNSET', `rule ${name}: the route is past its sunset`);
    return true;
  }
  if (s.explain) s.authz!.trace.push({ rule: name, effect: 'allow', matched: true, reason: `lifecycle ${state}: deprecation ${new Date(l.since).toISOString()}${l.sunset !== undefined ? `, sunset ${new Date(l.sunset).toISOString()} (afterSunset ${l.afterSunset})` : ''}` });
  return false;
}

function quotaRequest(s: State): QuotaRequest {
  const req: QuotaRequest = { policy: s.policy!, ctx: s.ctx!, params: s.authz!.params, budget: s.budget };
  if (s.authz?.rule) req.rule = s.authz.rule;
  if (s.principal) req.principal = s.principal;
  if (s.signal) req.signal = s.signal;
  return req;
}

/** The shaped allow, or a deny: the recorded one, else INTERNAL when no phase produced a decision. */
function finalDecision(s: State): Decision {
  // A request that failed to parse has no x-request-id of its own: only then is one made up.
  if (s.requestId === '') s.requestId = randomUUID();
  if (s.deny || !s.decision) return shapeDeny(s, s.deny?.code ?? 'INTERNAL', s.deny?.reason ?? 'no decision');
  return s.decision;
}

export interface CheckOptions {
  /** Evaluate at this time instead of the clock (CLI --now). */
  now?: Date;
  /** Record every rule considered in Decision.trace, naming the part of each false condition that made it false (CLI explain; costs extra evaluations); off when served. */
  explain?: boolean;
  /** The caller's deadline: checked before every phase and passed to every awaited call. */
  signal?: AbortSignal;
  /** The shadow evaluation's own, earlier deadline (CallDeadline.shadowSignal); without it, `signal`. */
  shadowSignal?: AbortSignal;
}

/**
 * Once the deadline has passed the proxy has already answered the client (status_on_error), so
 * whatever the phases decided, the recorded decision is that deny.
 */
function afterDeadline(s: State): void {
  if (!s.signal?.aborted || s.deny?.code === 'DEADLINE_EXCEEDED') return;
  const was = s.deny ? `${s.deny.code}: ${s.deny.reason}` : 'allow';
  deny(s, 'DEADLINE_EXCEEDED', `deadline exceeded (the phases decided ${was})`);
}

export class DecisionPipeline {
  private readonly deps: Parameters<Phase>[1];

  constructor(private readonly options: PipelineDeps) {
    this.deps = {
      snapshot: options.snapshot,
      identifier: options.identifier ?? new Identifier(),
      quota: options.quota ?? NO_QUOTAS,
      clock: options.clock ?? (() => new Date()),
      celLimits: options.celLimits ?? RUNTIME_LIMITS,
      onShadowError: (err, requestId) => options.onInternalError?.(err, requestId),
    };
  }

  async check(input: CheckRequestInput, opts: CheckOptions = {}): Promise<Decision> {
    const checkStarted = process.hrtime.bigint();
    const s = this.initialState(input, opts);
    const tracer = this.options.tracer;
    if (tracer) s.timings = [];
    await this.runPhases(s);
    // A Check denied before the quota phase still gets its shadow evaluation (none after the deadline).
    if (s.shadowPolicy && !s.shadow && !s.signal?.aborted) await runShadow(s, this.deps);
    afterDeadline(s);
    const decision = finalDecision(s);
    // Decision latency for the audit record: every phase before audit.
    decision.audit.latencyMs = Number(process.hrtime.bigint() - checkStarted) / 1e6;
    if (!tracer) return this.finish(s, await this.audit(s, decision));
    // Tracing: the root span exists before the audit record, which carries its trace id.
    const epochAtStart = Date.now() - Number(process.hrtime.bigint() - checkStarted) / 1e6;
    const epochMs = (t: bigint): number => epochAtStart + Number(t - checkStarted) / 1e6;
    const trace = tracer.begin(s.ctx?.headers, epochAtStart);
    decision.audit.traceId = trace.traceId;
    const final = await this.audit(s, decision);
    final.audit.traceId = trace.traceId;
    tracer.end(trace, final, s.timings!, epochMs);
    return this.finish(s, final);
  }

  private finish(s: State, final: Decision): Decision {
    this.options.signals?.observe(final, s.principal, s.authz?.params, s.now.getTime());
    return final;
  }

  private initialState(input: CheckRequestInput, opts: CheckOptions): State {
    const s: State = { input, now: opts.now ?? this.deps.clock(), requestId: '', explain: opts.explain === true, budget: new CelBudget(this.deps.celLimits) };
    if (this.options.directives) s.directives = this.options.directives;
    if (opts.signal) s.signal = opts.signal;
    const shadowSignal = opts.shadowSignal ?? opts.signal;
    if (shadowSignal) s.shadowSignal = shadowSignal;
    return s;
  }

  /** Runs the phases in order until one denies; a thrown error becomes a deny (fail). */
  private async runPhases(s: State): Promise<void> {
    for (const [name, phase] of PHASES) {
      // Before identify (JWKS), quota (charges) and everything else: a dead Check does no work.
      if (s.signal?.aborted) return deny(s, 'DEADLINE_EXCEEDED', `deadline exceeded before ${name}`);
      const started = process.hrtime.bigint();
      try {
        await phase(s, this.deps);
      } catch (err) {
        this.fail(s, err);
      }
      const ended = process.hrtime.bigint();
      this.options.observe?.(name, Number(ended - started) / 1e9);
      if (s.timings) s.timings.push({ name, start: started, end: ended });
      if (s.deny) break;
    }
  }

  private fail(s: State, err: unknown): void {
    if (err instanceof RevokedError) {
      // The revoked principal is on record (tenant, pseudonymised subject) and counted by kind.
      s.principal = err.principal;
      s.revoked = err.kind;
    }
    if (err instanceof PortcullisError) return deny(s, err.code, err.message);
    this.options.onInternalError?.(err, s.requestId);
    deny(s, 'INTERNAL', 'internal error');
  }

  /** Audit is always last; if the record cannot be written, the policy's auditFailure decides. */
  private async audit(s: State, decision: Decision): Promise<Decision> {
    const sink = this.options.audit;
    if (!sink) return decision;
    const started = process.hrtime.bigint();
    try {
      await sink.record(decision, s.policy);
      return decision;
    } catch (err) {
      this.options.onInternalError?.(err, s.requestId);
      if (!decision.allowed || s.policy?.auditFailure === 'allow') return decision;
      return shapeDeny(s, 'AUDIT_UNAVAILABLE', 'audit record could not be written');
    } finally {
      const ended = process.hrtime.bigint();
      this.options.observe?.('audit', Number(ended - started) / 1e9);
      if (s.timings) s.timings.push({ name: 'audit', start: started, end: ended });
    }
  }
}
