/**
 * Phase 6, shape: the decision the data plane applies. Allow: identity headers for the upstream,
 * client copies of x-portcullis-* removed. Deny: the catalogue's status and a JSON body with a
 * stable code and the request id, and nothing internal.
 */
import { CATALOGUE, PortcullisError, type ErrorCode } from '../errors.js';
import type { CompiledPolicy } from '../policy/compile.js';
import type { Authorization } from './authorize.js';
import { isMethodOverrideHeader, type RequestContext } from './context.js';
import type { Decision, ShadowOutcome, WouldDeny } from './decision.js';
import type { QuotaResult } from './hooks.js';
import type { Principal } from './principal.js';
import { attachMaskDirective } from '../masking/decision.js';
import type { DirectiveIssuer } from '../masking/token.js';
import type { RequestFailure } from '../policy/request-checks.js';
import type { LifecycleState } from '../policy/lifecycle.js';

/** A deprecated route's state and the headers every response on it carries (Deprecation, Sunset, Link). */
export interface LifecycleFacts {
  state: LifecycleState;
  headers: Readonly<Record<string, string>>;
}
import type { RevocationKind } from '../policy/revocation.js';


export const HEADER = {
  principal: 'x-portcullis-principal',
  principalType: 'x-portcullis-principal-type',
  tenant: 'x-portcullis-tenant',
  rule: 'x-portcullis-rule',
  policy: 'x-portcullis-policy',
  requestId: 'x-portcullis-request-id',
  mask: 'x-portcullis-mask',
} as const;

export interface ShapeInput {
  ctx?: RequestContext;
  requestId: string;
  policy?: CompiledPolicy;
  principal?: Principal;
  authz?: Authorization;
  quota?: QuotaResult;
  deny?: { code: ErrorCode; reason: string };
  /** A failed request check: its pointer goes in the deny body and the audit record. */
  validation?: RequestFailure;
  /** Set when the route is deprecated: its headers go on the response, its state in the audit record. */
  lifecycle?: LifecycleFacts;
  apiKeyHeader?: string;
  /** The kind of revocation list entry that denied the credential (REVOKED). */
  revoked?: RevocationKind;
  /** Signs the masking directive set on allow (x-portcullis-mask); absent: masks are only summarised. */
  directives?: DirectiveIssuer;
  now?: Date;
  /** Shadow mode's outcome, recorded beside the decision (never changes it). */
  shadow?: ShadowOutcome;
}

/** Bounds of identity values forwarded upstream (after encoding), so no backend sees an oversized header. */
export const FORWARD_LIMITS = { subjectBytes: 1024 } as const;

/** The principal header value, or a BAD_REQUEST when it would exceed the forwarding bound. */
export function forwardableSubject(subject: string): string {
  const v = headerSafe(subject);
  if (v.length > FORWARD_LIMITS.subjectBytes) throw new PortcullisError('BAD_REQUEST', `principal subject longer than ${FORWARD_LIMITS.subjectBytes} bytes cannot be forwarded`);
  return v;
}

/** Header values must be visible ASCII; anything else is percent-encoded. */
export function headerSafe(v: string): string {
  return /^[\x20-\x7e]*$/.test(v) ? v : encodeURIComponent(v);
}

function wwwAuthenticate(code: ErrorCode): string | undefined {
  if (code === 'MFA_REQUIRED') return 'Bearer realm="portcullis", error="insufficient_user_authentication", error_description="multi-factor authentication required"';
  if (code === 'UNAUTHENTICATED') return 'Bearer realm="portcullis"';
  if (CATALOGUE[code].http === 401) return 'Bearer realm="portcullis", error="invalid_token"';
  return undefined;
}

function principalSummary(p: Principal | undefined): Decision['principal'] {
  return p ? { type: p.type, tenant: p.tenant.name, namespace: p.tenant.namespace, subject: p.subject, method: p.method } : undefined;
}

function pathTemplate(input: ShapeInput): string {
  return input.authz?.template ?? (input.policy ? '(unmatched)' : '(no policy)');
}

/** The declared purpose and the subjectParam's value (pseudonymised when the record is made). */
function accountabilityFacts(facts: Decision['audit'], authz: Authorization): void {
  if (authz.purpose) facts.purpose = authz.purpose;
  const subjectParam = authz.rule?.subjectParam;
  if (subjectParam === undefined) return;
  const value = authz.params[subjectParam];
  if (value !== undefined) facts.resource = value;
}

/** The request check that denied and the route's lifecycle state, when either applies. */
function controlFacts(facts: Decision['audit'], input: ShapeInput): void {
  const v = input.validation;
  if (v !== undefined) facts.validation = { check: v.check, pointer: v.pointer };
  if (input.lifecycle !== undefined) facts.lifecycle = input.lifecycle.state;
}

function auditFacts(input: ShapeInput): Decision['audit'] {
  const ctx = input.ctx;
  const facts: Decision['audit'] = { method: ctx?.method ?? '', host: ctx?.host ?? '', pathTemplate: pathTemplate(input), sourceIp: ctx?.sourceIp ?? '' };
  const quota = input.quota?.summary;
  if (quota !== undefined) facts.quota = quota;
  controlFacts(facts, input);
  if (input.revoked !== undefined) facts.revoked = input.revoked;
  if (input.authz) accountabilityFacts(facts, input.authz);
  return facts;
}

const NO_TRACE: never[] = [];

/** The decision fields common to allow and deny, built without spreads (they are a V8 slow path on this hot path). */
type Outcome = Pick<Decision, 'allowed' | 'status' | 'code' | 'reason' | 'headers'>;

function base(input: ShapeInput, o: Outcome): Decision {
  const d: Decision = { requestId: input.requestId, allowed: o.allowed, status: o.status, code: o.code, reason: o.reason, headers: o.headers, removeHeaders: [], responseHeaders: {}, metadata: {}, trace: input.authz?.trace ?? NO_TRACE, audit: auditFacts(input) };
  if (input.policy) d.policy = input.policy.key;
  const rule = input.authz?.rule;
  if (rule) d.rule = rule.name;
  if (input.principal) d.principal = principalSummary(input.principal);
  if (input.shadow) withShadow(d, input.shadow);
  return d;
}

export function wouldDeny(o: ShadowOutcome): WouldDeny | undefined {
  return o.allowed ? undefined : { policy: o.policy, rule: o.rule, code: o.code ?? 'FORBIDDEN', status: o.status };
}

function withShadow(d: Decision, shadow: ShadowOutcome): void {
  d.shadow = shadow;
  const w = wouldDeny(shadow);
  if (w) d.audit.wouldDeny = w;
}

function copyInto(to: Record<string, string>, from: Record<string, string> | undefined): Record<string, string> {
  if (from) for (const k in from) to[k] = from[k]!;
  return to;
}

export function shapeDeny(input: ShapeInput, code: ErrorCode, reason: string): Decision {
  const entry = CATALOGUE[code];
  const headers = copyInto({ 'content-type': 'application/json', 'cache-control': 'no-store' }, input.quota?.headers);
  const www = wwwAuthenticate(code);
  if (www) headers['www-authenticate'] = www;
  // A deprecated route says so on every response, its 410 after the sunset included.
  if (input.lifecycle !== undefined) copyInto(headers, input.lifecycle.headers as Record<string, string>);
  const d = base(input, { allowed: false, status: entry.http, code, reason, headers });
  const v = input.validation;
  // The pointer of a failed request check (never the value); only for the check that denied.
  const error = v !== undefined && v.code === code ? { code, message: entry.summary, requestId: input.requestId, pointer: v.pointer } : { code, message: entry.summary, requestId: input.requestId };
  d.body = JSON.stringify({ error });
  return d;
}

/** Identity headers for the upstream; principal and tenant only when someone authenticated. */
function allowHeaders(input: ShapeInput): Record<string, string> {
  const p = input.principal;
  const headers: Record<string, string> = {
    [HEADER.principalType]: p?.type ?? 'anonymous',
    [HEADER.requestId]: input.requestId,
    [HEADER.policy]: input.policy?.key ?? '',
    [HEADER.rule]: input.authz?.rule?.name ?? '(default)',
  };
  if (p) {
    headers[HEADER.principal] = forwardableSubject(p.subject);
    headers[HEADER.tenant] = p.tenant.name;
  }
  return headers;
}

/** Client copies of x-portcullis-* (any spelling), method overrides and the API key header, once each. */
function headersToRemove(input: ShapeInput): string[] {
  const remove = [...(input.ctx?.spoofedHeaders ?? [])];
  const headers = input.ctx?.headers;
  if (headers) for (const name in headers) if (isMethodOverrideHeader(name)) remove.push(name);
  if (input.apiKeyHeader) remove.push(input.apiKeyHeader);
  if (remove.length < 2) return remove;
  return [...new Set(remove)];
}

function allowMetadata(d: Decision, input: ShapeInput): Decision['metadata'] {
  const p = input.principal;
  return { policy: d.policy ?? '', rule: d.rule ?? '', tenant: p?.tenant.name ?? '', principalType: p?.type ?? 'anonymous', requestId: input.requestId };
}

export function shapeAllow(input: ShapeInput): Decision {
  const d = base(input, { allowed: true, status: 200, code: null, reason: input.authz?.reason ?? 'allowed', headers: allowHeaders(input) });
  d.removeHeaders = headersToRemove(input);
  d.responseHeaders = copyInto({}, input.quota?.headers);
  if (input.lifecycle !== undefined) copyInto(d.responseHeaders, input.lifecycle.headers as Record<string, string>);
  d.metadata = allowMetadata(d, input);
  attachMaskDirective(d, input);
  return d;
}
