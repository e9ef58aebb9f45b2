import type { ErrorCode } from '../errors.js';
import type { LifecycleState } from '../policy/lifecycle.js';
import type { PrincipalType } from '../policy/model.js';
import type { CompiledPurpose } from '../policy/tenants.js';
import type { RuleTrace } from './authorize.js';
import type { RevocationKind } from '../policy/revocation.js';

/** The outcome of one Check, independent of the transport (gRPC or CLI). */
export interface Decision {
  requestId: string;
  allowed: boolean;
  /** HTTP status the client sees: 200 on allow. */
  status: number;
  code: ErrorCode | null;
  reason: string;
  policy?: string;
  rule?: string;
  principal?: { type: PrincipalType; tenant: string; namespace: string; subject: string; method: string };
  /** Allow: headers set on the upstream request. Deny: headers of the denied response. */
  headers: Record<string, string>;
  /** Allow: request headers to remove (client-supplied x-portcullis-*, API keys). */
  removeHeaders: string[];
  /** Allow: headers added to the upstream's response (quota state). */
  responseHeaders: Record<string, string>;
  /** Deny: the JSON error body. */
  body?: string;
  /** Dynamic metadata for Envoy (ext_proc, access logs). */
  metadata: Record<string, unknown>;
  /** Every rule considered, for explain. */
  trace: RuleTrace[];
  /** Shadow mode: what the shadow policy or shadow rules would have decided (never applied). */
  shadow?: ShadowOutcome;
  /** Facts the audit record needs that the decision itself does not carry. */
  audit: {
    method: string;
    host: string;
    pathTemplate: string;
    sourceIp: string;
    quota?: unknown;
    masks?: string[];
    latencyMs?: number;
    /** The declared purpose of use, validated against the tenant. */
    purpose?: CompiledPurpose;
    /**
     * The value of the deciding rule's subjectParam (personal data: the audit record holds only
     * its keyed pseudonym; never log it).
     */
    resource?: string;
    /** The kind of revocation list entry that denied the credential (REVOKED), for the metric. */
    revoked?: RevocationKind;
    /** The request check that denied: which one and the JSON pointer of its first failure (never the value). */
    validation?: { check: string; pointer: string };
    /** The route's deprecation state when it declares one (announced, deprecated, sunset). */
    lifecycle?: LifecycleState;
    /** W3C trace id of the Check's span, when tracing is on (docs/tracing.md). */
    traceId?: string;
    /** Shadow mode: what the shadow policy or shadow rules would have denied (never applied). */
    wouldDeny?: WouldDeny;
  };
}

/** The decision the shadow policy (or the shadow rules) would have made. */
export interface ShadowOutcome {
  /** The shadow policy's key, or the enforcing policy's when its shadow rules were evaluated. */
  policy: string;
  allowed: boolean;
  code: ErrorCode | null;
  status: number;
  /** The rule that decided, null for the default. */
  rule: string | null;
  reason: string;
  /** Every rule considered (explain). */
  trace: RuleTrace[];
}

/** What the audit record carries when the shadow evaluation would have denied. */
export interface WouldDeny {
  policy: string;
  rule: string | null;
  code: ErrorCode;
  status: number;
}
