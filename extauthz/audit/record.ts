/**
 * The audit record schema, version 1 (docs/audit.md documents it field by field). Five kinds of
 * line share one file: a chain-start, decision records, masking records (ext_proc outcomes),
 * alert records (suspicious-activity signals, docs/alerts.md), and signed checkpoints.
 * Chain-starts, decisions, masking and alert records are chained (`prev` is the SHA-256 of the predecessor's canonical JSON); checkpoints
 * sit beside the chain and sign its head.
 */
import type { CompiledPolicy } from '../policy/compile.js';
import type { Decision } from '../pipeline/decision.js';
import type { Alert, SignalName } from '../signals/alert.js';
import { truncateIp, type Pseudonymizer } from './pseudonym.js';

export const SCHEMA_VERSION = 1;

/** A pointer to a signed chain head: the last checkpoint of the previous chain. */
export interface ChainRef {
  chain: string;
  seq: number;
  hash: string;
}

interface Chained {
  v: typeof SCHEMA_VERSION;
  chain: string;
  seq: number;
  /** SHA-256 (hex) of the predecessor's canonical JSON; null for a chain's first entry. */
  prev: string | null;
  time: string;
}

export interface ChainStartEntry extends Chained {
  type: 'chain-start';
  instance: string;
  /** Key id (RFC 7638 thumbprint) that signs this chain's checkpoints. */
  kid: string;
  /** Id of the pseudonymisation key: subjects compare only under the same id. */
  subjectKeyId: string;
  /** The last checkpoint found when this chain started (previous run of this replica). */
  previous: ChainRef | null;
}

export interface DecisionEntry extends Chained {
  type: 'decision';
  /** Who decided: the gRPC service or the CLI. */
  source: 'grpc' | 'cli';
  requestId: string;
  tenant: string | null;
  principalType: string;
  /** Keyed pseudonym of the subject (HMAC), never the subject itself. */
  subject: string | null;
  method: string;
  host: string;
  /** The matched path template, never the raw path with its identifiers. */
  pathTemplate: string;
  /** Client network (IPv4 /24, IPv6 /48), never the address. */
  client: string | null;
  policy: string | null;
  rule: string | null;
  decision: 'allow' | 'deny';
  code: string | null;
  quota: unknown;
  masks: string[];
  latencyMs: number | null;
  /** The declared purpose of use (one the tenant lists), or null. */
  purpose: string | null;
  /** The legal basis the tenant gives for that purpose, or null. */
  legalBasis: string | null;
  /** The ApiPolicy's spec.version, or null. */
  apiVersion: string | null;
  /** Keyed pseudonym (as `subject`) of the data subject the request touches (the rule's subjectParam), or null. */
  resource: string | null;
  /** Present only when a request check denied: which check and the JSON pointer of its first failure (never the value). */
  validation?: { check: string; pointer: string };
  /** Present only when the route declares a deprecation: announced, deprecated or sunset at the decision's time. */
  lifecycle?: string;
  /** W3C trace id of the Check's span (docs/tracing.md); present only when tracing is on. */
  traceId?: string;
  /** Shadow mode: present only when the shadow policy or shadow rules would have denied (the decision itself is unchanged). */
  wouldDeny?: { policy: string; rule: string | null; code: string; status: number };
}

/** One masking directive as audited: the path and the action, never a parameter or a value. */
export interface AuditedMask {
  field: string;
  action: string;
}

/** What ext_proc did with one response under a masking directive. No body content, ever. */
export interface MaskingEntry extends Chained {
  type: 'masking';
  requestId: string;
  /** From the ext_authz dynamic metadata Envoy forwards; null when it is not forwarded. */
  policy: string | null;
  rule: string | null;
  masks: AuditedMask[];
  allowFields: string[] | null;
  /** masked: the masked body went out; blocked: an error response replaced it; passed: it went out unmasked (operator policy). */
  outcome: 'masked' | 'blocked' | 'passed';
  /** The error code of a blocked response, else null. */
  code: string | null;
  /** Response body bytes received and sent; null when the body was not seen (decided at the headers). */
  bytesIn: number | null;
  bytesOut: number | null;
  /** Fields of masks that matched nothing in the body; present only when some did (onUnmatched). */
  unmatched?: string[];
}

export type MaskingFields = Omit<MaskingEntry, keyof Chained | 'type'>;

/** A suspicious-activity signal crossed its threshold (docs/alerts.md). Nothing in clear: the subject is pseudonymised, the network truncated. */
export interface AlertEntry extends Chained {
  type: 'alert';
  signal: SignalName;
  /** The Check that crossed the threshold; its decision record carries the same id. */
  requestId: string;
  tenant: string | null;
  principalType: string | null;
  /** Keyed pseudonym of the principal's subject (deny-rate, distinct-subjects), else null. */
  subject: string | null;
  /** invalid-credentials: the client network as decision records show it (IPv4 /24, IPv6 /48). */
  network: string | null;
  /** invalid-credentials over IPv6: a keyed pseudonym of the /64 that was counted (several can share one /48); else null. */
  networkId: string | null;
  windowStart: string;
  windowSeconds: number;
  count: number;
  threshold: number;
  /** deny-rate: the principal's requests in the window and the tenant's ratio; else null. */
  requests: number | null;
  ratio: number | null;
}

export type AlertFields = Omit<AlertEntry, keyof Chained | 'type'>;

/** The record of an alert: the subject pseudonymised, an IPv6 /64 truncated to its /48 and pseudonymised beside it. */
export function alertFields(a: Alert, pseudo: Pseudonymizer): AlertFields {
  const v6 = a.network !== null && a.network.includes(':');
  return {
    signal: a.signal,
    requestId: a.requestId,
    tenant: a.tenant,
    principalType: a.principalType,
    subject: pseudo.subject(a.subject ?? undefined),
    network: a.network === null ? null : v6 ? truncateIp(a.network.slice(0, a.network.indexOf('/'))) : a.network,
    networkId: v6 ? pseudo.subject(`network:${a.network}`) : null,
    windowStart: a.windowStart.toISOString(),
    windowSeconds: a.windowSeconds,
    count: a.count,
    threshold: a.threshold,
    requests: a.requests,
    ratio: a.ratio,
  };
}

export interface CheckpointPayload {
  chain: string;
  seq: number;
  hash: string;
  time: string;
  /** Written when the chain is closed cleanly: nothing follows in this chain. */
  final: boolean;
}

export interface CheckpointEntry extends CheckpointPayload {
  v: typeof SCHEMA_VERSION;
  type: 'checkpoint';
  kid: string;
  /** Compact JWS (EdDSA or ES256) over the canonical JSON of the payload fields. */
  jws: string;
}

export type ChainedEntry = ChainStartEntry | DecisionEntry | MaskingEntry | AlertEntry;
export type AuditEntry = ChainedEntry | CheckpointEntry;

/** The fields of a decision record that do not depend on the chain. */
export type DecisionFields = Omit<DecisionEntry, keyof Chained | 'type'>;

function round(ms: number | undefined): number | null {
  return ms === undefined ? null : Math.round(ms * 1000) / 1000;
}

function purposeName(a: Decision['audit']): string | null {
  return a.purpose ? a.purpose.name : null;
}

function legalBasis(a: Decision['audit']): string | null {
  return a.purpose ? a.purpose.legalBasis : null;
}

function apiVersion(policy: CompiledPolicy | undefined): string | null {
  return policy?.version ?? null;
}

/** The same keyed pseudonym as subjects, so a citizen's own id maps to the same value. One HMAC, only when the rule names a subjectParam. */
function resource(a: Decision['audit'], pseudo: Pseudonymizer): string | null {
  return a.resource !== undefined ? pseudo.subject(a.resource) : null;
}

export function decisionFields(d: Decision, policy: CompiledPolicy | undefined, pseudo: Pseudonymizer, source: DecisionEntry['source']): DecisionFields {
  const fields = baseFields(d, policy, pseudo, source);
  if (d.audit.traceId !== undefined) fields.traceId = d.audit.traceId;
  return fields;
}

function baseFields(d: Decision, policy: CompiledPolicy | undefined, pseudo: Pseudonymizer, source: DecisionEntry['source']): DecisionFields {
  const a = d.audit;
  const fields: DecisionFields = {
    source,
    requestId: d.requestId,
    tenant: d.principal?.tenant ?? null,
    principalType: d.principal?.type ?? 'anonymous',
    subject: pseudo.subject(d.principal?.subject),
    method: a.method,
    host: a.host,
    pathTemplate: a.pathTemplate,
    client: truncateIp(a.sourceIp),
    policy: d.policy ?? null,
    rule: d.rule ?? null,
    decision: d.allowed ? 'allow' : 'deny',
    code: d.code,
    quota: a.quota ?? null,
    masks: a.masks ?? [],
    latencyMs: round(a.latencyMs),
    purpose: purposeName(a),
    legalBasis: legalBasis(a),
    apiVersion: apiVersion(policy),
    resource: resource(a, pseudo),
  };
  controlFields(fields, a);
  withWouldDeny(fields, a.wouldDeny);
  return fields;
}

/** Fields present only when a control applied: the request check that denied, the route's lifecycle state. */
function controlFields(fields: DecisionFields, a: Decision['audit']): void {
  if (a.validation) fields.validation = a.validation;
  if (a.lifecycle) fields.lifecycle = a.lifecycle;
}

/** Shadow mode: the would-be denial, only when there is one (other records are unchanged). */
function withWouldDeny(fields: DecisionFields, w: Decision['audit']['wouldDeny']): void {
  if (w) fields.wouldDeny = { policy: w.policy, rule: w.rule, code: w.code, status: w.status };
}
