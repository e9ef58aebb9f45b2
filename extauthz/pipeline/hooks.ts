/**
 * The extension points of the pipeline: the quota phase and the audit sink. Implementations are
 * injected, so the decision logic stays pure and testable without a network.
 */
import type { ErrorCode } from '../errors.js';
import type { CompiledPolicy, CompiledRule } from '../policy/compile.js';
import type { RequestContext } from './context.js';
import type { Decision } from './decision.js';
import type { Principal } from './principal.js';

export interface QuotaRequest {
  policy: CompiledPolicy;
  rule?: CompiledRule;
  principal?: Principal;
  ctx: RequestContext;
  params: Record<string, string>;
  /** The Check's deadline: the backend call is raced against it. */
  signal?: AbortSignal;
}

export interface QuotaResult {
  allowed: boolean;
  code?: Extract<ErrorCode, 'QUOTA_EXCEEDED' | 'QUOTA_UNAVAILABLE'>;
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
