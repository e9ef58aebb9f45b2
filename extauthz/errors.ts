/**
 * The error catalogue: every error Portcullis reports has a stable code, an HTTP status (what
 * the client sees when a request is denied for it) and a gRPC status (what an RPC would carry).
 * docs/errors.md documents the same table; a test keeps the two in step.
 */

export interface CatalogueEntry {
  readonly http: number;
  readonly grpc: number;
  readonly summary: string;
}

// gRPC status numbers (google.rpc.Code), spelled out so the catalogue has no runtime imports.
const G = { OK: 0, INVALID_ARGUMENT: 3, DEADLINE_EXCEEDED: 4, NOT_FOUND: 5, PERMISSION_DENIED: 7, RESOURCE_EXHAUSTED: 8, UNAVAILABLE: 14, UNAUTHENTICATED: 16, INTERNAL: 13 } as const;

export const CATALOGUE = {
  // Request errors (the decision pipeline)
  BAD_REQUEST: { http: 400, grpc: G.INVALID_ARGUMENT, summary: 'The request is malformed (missing HTTP attributes, oversized or invalid headers, a malformed x-forwarded-client-cert, a path that is invalid or not normalised, a path parameter or fragment the policy refuses, a subject too long to forward).' },
  NO_POLICY: { http: 403, grpc: G.PERMISSION_DENIED, summary: 'No ApiPolicy covers this host and path: denied by default.' },
  UNAUTHENTICATED: { http: 401, grpc: G.UNAUTHENTICATED, summary: 'No credentials were presented and no rule admits anonymous requests.' },
  INVALID_TOKEN: { http: 401, grpc: G.UNAUTHENTICATED, summary: 'The bearer token is malformed, expired, not yet valid, for another audience, or its signature does not verify.' },
  UNKNOWN_ISSUER: { http: 401, grpc: G.UNAUTHENTICATED, summary: 'No tenant accepts tokens from this issuer and audience.' },
  INVALID_API_KEY: { http: 401, grpc: G.UNAUTHENTICATED, summary: 'The API key is not known.' },
  UNKNOWN_CLIENT_CERT: { http: 401, grpc: G.UNAUTHENTICATED, summary: 'The client certificate identity is not bound to any tenant.' },
  AMBIGUOUS_PRINCIPAL: { http: 401, grpc: G.UNAUTHENTICATED, summary: 'The credentials match more than one tenant; Portcullis binds a principal to exactly one.' },
  REVOKED: { http: 401, grpc: G.UNAUTHENTICATED, summary: 'The credential (token id, subject or API key) is on its tenant\'s revocation list.' },
  TOKEN_INACTIVE: { http: 401, grpc: G.UNAUTHENTICATED, summary: 'The authorization server\'s token introspection (RFC 7662) says the token is not active.' },
  INTROSPECTION_UNAVAILABLE: { http: 503, grpc: G.UNAVAILABLE, summary: 'The token could not be introspected (the endpoint failed, timed out or answered malformed) and the tenant fails closed.' },
  MFA_REQUIRED: { http: 401, grpc: G.UNAUTHENTICATED, summary: 'The matching rule requires multi-factor authentication (acr/amr) that the token does not prove.' },
  PURPOSE_NOT_ALLOWED: { http: 403, grpc: G.PERMISSION_DENIED, summary: 'The request declares a purpose of use (x-purpose-of-use) that the principal\'s tenant does not list.' },
  PURPOSE_REQUIRED: { http: 403, grpc: G.PERMISSION_DENIED, summary: 'The matching rule requires a declared purpose of use (x-purpose-of-use) and the request declares none.' },
  FORBIDDEN: { http: 403, grpc: G.PERMISSION_DENIED, summary: 'No rule allows this request, or a deny rule matched.' },
  CONDITION_ERROR: { http: 403, grpc: G.PERMISSION_DENIED, summary: 'A rule condition could not be evaluated (missing attribute, type error): denied.' },
  CONDITION_BUDGET: { http: 403, grpc: G.PERMISSION_DENIED, summary: 'Evaluating the rule conditions (or a quota key or cost expression) of this request exceeded the runtime step or time budget: stopped and denied.' },
  QUOTA_EXCEEDED: { http: 429, grpc: G.RESOURCE_EXHAUSTED, summary: 'A quota of the matching rule is exhausted; Retry-After says when to retry.' },
  QUOTA_UNAVAILABLE: { http: 503, grpc: G.UNAVAILABLE, summary: 'The quota cannot be charged and fails closed: the quota backend is unreachable, the rule names a quota the caller\'s tenant does not define, or a quota key or cost expression fails.' },
  AUDIT_UNAVAILABLE: { http: 503, grpc: G.UNAVAILABLE, summary: 'The decision could not be audited and the policy fails closed.' },
  DEADLINE_EXCEEDED: { http: 503, grpc: G.DEADLINE_EXCEEDED, summary: 'The Check\'s deadline passed before a decision: denied, and quotas are not charged once it has passed. The proxy has already answered the client with its status_on_error (503 in the documented configuration).' },
  API_SUNSET: { http: 410, grpc: G.NOT_FOUND, summary: 'The route is past its sunset date (deprecation.sunset, afterSunset: deny): it no longer answers. The Sunset and Link headers say when it ended and where its replacement is documented.' },
  UNSUPPORTED_MEDIA_TYPE: { http: 415, grpc: G.INVALID_ARGUMENT, summary: 'The request has a body whose Content-Type is missing, malformed or not one the matching rule accepts (request.contentTypes).' },
  BODY_TOO_LARGE: { http: 413, grpc: G.INVALID_ARGUMENT, summary: 'The request body, declared (Content-Length) or received, is larger than the matching rule\'s request.maxBodyBytes.' },
  BODY_INCOMPLETE: { http: 400, grpc: G.INVALID_ARGUMENT, summary: 'The matching rule validates the body, but the proxy did not send it whole (a partial body, or fewer bytes than Content-Length): never validated as if complete.' },
  QUERY_INVALID: { http: 400, grpc: G.INVALID_ARGUMENT, summary: 'A query parameter is missing, repeated, undeclared (unknownParameters: reject), of the wrong type or out of its bounds; error.pointer names it.' },
  BODY_INVALID: { http: 400, grpc: G.INVALID_ARGUMENT, summary: 'The request body is not UTF-8 JSON or does not satisfy the matching rule\'s JSON Schema; error.pointer is the JSON pointer of the first failure (the value is never echoed).' },
  INTERNAL: { http: 500, grpc: G.INTERNAL, summary: 'An internal error occurred; the request is denied (fail closed).' },
  // Masking enforcement (ext_proc): the response is replaced, never passed on unmasked
  MASK_DIRECTIVE_INVALID: { http: 500, grpc: G.INTERNAL, summary: 'The masking directive is missing, forged, altered, expired or issued for another request; the request is stopped (fail closed).' },
  MASKING_FAILED: { http: 502, grpc: G.INTERNAL, summary: 'The upstream response could not be masked as the policy requires; it is withheld (fail closed).' },
  RESPONSE_NOT_MASKABLE: { http: 502, grpc: G.INTERNAL, summary: 'The upstream response is not JSON or is larger than the masking limit, and the configured body policy is block.' },
  MASK_UNMATCHED: { http: 502, grpc: G.INTERNAL, summary: 'A mask with onUnmatched: deny matched nothing in the upstream response; the response is withheld (fail closed).' },
  // Configuration errors (policy loading, CLI)
  POLICY_SCHEMA: { http: 500, grpc: G.INVALID_ARGUMENT, summary: 'A policy document does not match the CRD schema.' },
  POLICY_YAML: { http: 500, grpc: G.INVALID_ARGUMENT, summary: 'A policy file is not valid YAML.' },
  POLICY_CEL: { http: 500, grpc: G.INVALID_ARGUMENT, summary: 'A CEL condition does not parse or type-check.' },
  POLICY_CEL_COST: { http: 500, grpc: G.INVALID_ARGUMENT, summary: 'The estimated worst-case cost of a CEL expression, or of all of a policy\'s expressions together, is over the budget.' },
  POLICY_INVALID: { http: 500, grpc: G.INVALID_ARGUMENT, summary: 'A policy is inconsistent (bad path template, unknown reference, duplicate name).' },
  POLICY_CONFLICT: { http: 500, grpc: G.INVALID_ARGUMENT, summary: 'Two objects claim the same thing (a host and path, or an identity: issuer and audience, SPIFFE ID, subject, API key, opaque-token introspection); the newer one is refused.' },
  POLICY_REFERENCE: { http: 500, grpc: G.INVALID_ARGUMENT, summary: 'A rule names a quota that no tenant it applies to defines.' },
  POLICY_UNREACHABLE: { http: 500, grpc: G.INVALID_ARGUMENT, summary: 'Warning: a rule can never decide a request (an earlier rule or a deny rule covers everything it matches).' },
  POLICY_REQUEST: { http: 500, grpc: G.INVALID_ARGUMENT, summary: 'A rule\'s request validation is invalid: a body schema that does not compile, is over the size or complexity bounds or refers outside itself, or inconsistent query bounds or content types.' },
  POLICY_MASK_PATH: { http: 500, grpc: G.INVALID_ARGUMENT, summary: 'A mask or allowFields path selects nothing in the rule\'s responseSchema, or the schema cannot be read.' },
  USAGE: { http: 500, grpc: G.INVALID_ARGUMENT, summary: 'The command line is invalid.' },
  KUBE_CONFIG: { http: 500, grpc: G.INVALID_ARGUMENT, summary: 'No usable Kubernetes configuration: no kubeconfig was given or found, it has no current cluster, or the process is not in a pod.' },
  STARTUP_FAILED: { http: 503, grpc: G.UNAVAILABLE, summary: 'The service could not start (a listener could not bind, a backend or key could not be set up); the process exits non-zero.' },
} as const satisfies Record<string, CatalogueEntry>;

export type ErrorCode = keyof typeof CATALOGUE;

export function catalogueEntry(code: ErrorCode): CatalogueEntry {
  return CATALOGUE[code];
}

/** An error with a stable catalogue code. */
export class PortcullisError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PortcullisError';
    this.code = code;
  }
  get httpStatus(): number {
    return CATALOGUE[this.code].http;
  }
}

/** Where in the policy sources a configuration problem sits. */
export interface SourceLocation {
  file?: string;
  /** 1-based index of the YAML document within the file. */
  document?: number;
  /** Kind/namespace/name of the object, when known. */
  object?: string;
  /** JSON pointer-like path to the field, e.g. /spec/rules/0/when. */
  path?: string;
  rule?: string;
  line?: number;
  column?: number;
}

export type Severity = 'error' | 'warning';

/**
 * One problem in the policy sources; many are collected before loading fails. An error refuses
 * the object it sits on; a warning is reported (validate, logs, status) and refuses nothing
 * unless `validate --strict` asks for it.
 */
export class PolicyError extends PortcullisError {
  readonly location: SourceLocation;
  readonly severity: Severity;
  constructor(code: ErrorCode, message: string, location: SourceLocation, options?: { cause?: unknown; severity?: Severity }) {
    super(code, message, options);
    this.name = 'PolicyError';
    this.location = location;
    this.severity = options?.severity ?? 'error';
  }
  /** file:document object path (rule) line:column: code message — one line, greppable. */
  format(): string {
    const l = this.location;
    const where = [
      l.file ? `${l.file}${l.document ? `#${l.document}` : ''}` : undefined,
      l.object,
      l.path,
      l.rule ? `rule ${l.rule}` : undefined,
      l.column !== undefined ? `line ${l.line ?? 1} column ${l.column}` : undefined,
    ].filter((s) => s !== undefined);
    return `${where.join(' ')}: ${this.code}: ${this.message}`;
  }
}

/** Thrown when a set of policy sources cannot be loaded; carries every problem found. */
export class PolicyLoadError extends PortcullisError {
  readonly problems: readonly PolicyError[];
  constructor(problems: readonly PolicyError[]) {
    super(problems[0]?.code ?? 'POLICY_INVALID', `${problems.length} policy error(s):\n${problems.map((p) => '  ' + p.format()).join('\n')}`);
    this.name = 'PolicyLoadError';
    this.problems = problems;
  }
}
