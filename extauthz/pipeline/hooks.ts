/**
 * The extension points of the pipeline: the quota phase and the audit sink. Implementations are
 * injected, so the decision logic stays pure and testable without a network.
 */
import type { ErrorCode } from '../errors.js';
import type { CompiledPolicy, CompiledRule } from '../policy/compile.js';
import type { RequestContext } from './context.js';
import type { Decision } from './decision.js';
import type { Principal } from './principal.js';
import type { CelBudget } from '../policy/cel.js';

export interface QuotaRequest {
  policy: CompiledPolicy;
  rule?: CompiledRule;
  principal?: Principal;
  ctx: RequestContext;
  params: Record<string, string>;
  /** The Check's deadline: the backend call is raced against it. */
  signal?: AbortSignal;
  /** The Check's CEL runtime budget, which its rules already drew on (absent: a fresh one). */
  budget?: CelBudget;
}

export interface QuotaResult {
  allowed: boolean;
  code?: Extract<ErrorCode, 'QUOTA_EXCEEDED' | 'QUOTA_UNAVAILABLE' | 'CONDITION_BUDGET'>;
  reason?: string;
  /** RateLimit / RateLimit-Policy / Retry-After headers for the client. */
  headers: Record<string, string>;
  /** Summary for the audit record (no personal data). */
  summary?: unknown;
}

export interface QuotaPhase {
  charge(req: QuotaRequest): Promise<QuotaResult>;
  /** Dry run for shadow mode: the verdict charge would give now, nothing charged (absent: shadow quotas always pass). */
  peek?(req: QuotaRequest): Promise<QuotaResult>;
}

/** The default until a quota backend is configured: everything passes, nothing is counted. */
export const NO_QUOTAS: QuotaPhase = {
  charge: () => Promise.resolve({ allowed: true, headers: {} }),
  peek: () => Promise.resolve({ allowed: true, headers: {} }),
};

export interface AuditSink {
  /** Resolves once the record is accepted (batch) or durable (strict); rejects if it cannot be. */
  record(decision: Decision, policy: CompiledPolicy | undefined): Promise<void>;
}

/**
 * Suspicious-activity signals (extauthz/signals): told of every decided Check after its audit
 * record, with the principal and the matched path parameters. Must be O(1) and never throw.
 */
export interface SignalSink {
  observe(decision: Decision, principal: Principal | undefined, params: Readonly<Record<string, string>> | undefined, nowMs: number): void;
}

/** One phase as the tracer sees it: name and hrtime (ns) bounds. */
export interface PhaseTiming {
  name: string;
  start: bigint;
  end: bigint;
}

/** The Check's trace as begun: the root span (opaque here) and its W3C trace id. */
export interface CheckTrace {
  readonly traceId: string;
}

/**
 * Tracing of Checks (extauthz/tracing, OpenTelemetry): absent unless configured, and then the
 * pipeline only records phase timings; spans are made from them once the decision is known.
 */
export interface CheckTracer {
  /** The root span, continuing the request's traceparent (headers as parsed; undefined when parsing failed). */
  begin(headers: Readonly<Record<string, string>> | undefined, startEpochMs: number): CheckTrace;
  /** Ends the root span (now) with the decision and adds one child span per phase. `epochMs(t)` converts an hrtime to epoch ms. */
  end(trace: CheckTrace, decision: Decision, phases: readonly PhaseTiming[], epochMs: (t: bigint) => number): void;
}
