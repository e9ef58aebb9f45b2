// Generated from crds/*.yaml by `npm run gen:types`. Do not edit.
/* eslint-disable */
export interface PortcullisResources {
  TenantSpec?: TenantSpec;
  TenantStatus?: TenantStatus;
  ApiPolicySpec?: ApiPolicySpec;
  ApiPolicyStatus?: ApiPolicyStatus;
}
/**
 * Desired identity binding, attributes, purposes and quotas of the tenant.
 */
export interface TenantSpec {
  /**
   * Kind of caller. agency principals are government bodies (usually mTLS); consumer-app principals are citizens and businesses using an app (OIDC/JWT); partner principals are third parties (usually API keys).
   */
  type: "agency" | "consumer-app" | "partner";
  /**
   * How principals of this tenant authenticate. At least one method is required.
   */
  identity: {
    jwt?: JwtIdentity;
    mtls?: MtlsIdentity;
    /**
     * OAuth 2.0 token introspection (RFC 7662, docs/revocation.md): opaque bearer tokens are introspected to identify the principal (mode opaque or both; one such tenant per namespace), and verified JWTs are introspected as an additional check (mode jwt or both). Client authentication is client_secret_basic.
     */
    introspection?: {
      /**
       * The introspection endpoint (https; plain http only for loopback hosts). Optional with jwt.issuerUrl, whose discovery document names it.
       */
      endpoint?: string;
      /**
       * The client id Portcullis authenticates with.
       */
      clientId: string;
      /**
       * The client secret: a key of a Secret in the tenant's namespace (in a cluster labelled portcullis.io/introspection=true; in folder mode a Secret document in the policy folder).
       */
      clientSecretRef: {
        /**
         * Name of the Secret.
         */
        name: string;
        /**
         * Data key that holds the client secret.
         */
        key: string;
      };
      /**
       * How long an introspection result is cached; never longer than the token's exp. 0 introspects on every Check.
       */
      cacheSeconds?: number;
      /**
       * Timeout of one introspection request; the Check's own deadline also bounds it.
       */
      timeoutMs?: number;
      /**
       * When the endpoint fails (unreachable, timeout, non-200, malformed answer): deny (default, 503 INTROSPECTION_UNAVAILABLE) or allow. allow only skips the additional check of a verified JWT; an opaque token is never accepted unintrospected.
       */
      onError?: "deny" | "allow";
      /**
       * opaque (default) introspects only non-JWT tokens, jwt only verified JWTs, both both.
       */
      mode?: "opaque" | "jwt" | "both";
    };
    apiKeys?: ApiKeyIdentity;
  };
  /**
   * Where this tenant's revocation list is read from (docs/revocation.md): a JSON document {"jti": [...], "sub": [...], "apiKeys": [...]} of revoked token ids, subjects and API key ids, each entry an id or {id, until} with an optional RFC 3339 expiry (expired entries are ignored). Changes apply within a second; a list that does not parse keeps the last good list serving (the tenant reports the error), and a tenant that never had a good list authenticates no one (fail closed).
   */
  revocation?: {
    /**
     * A key of a Secret in the tenant's namespace. In a cluster the Secret must carry the label portcullis.io/revocation=true (ext_authz watches only those).
     */
    secretRef?: {
      /**
       * Name of the Secret.
       */
      name: string;
      /**
       * Data key that holds the list.
       */
      key: string;
    };
    /**
     * A key of a ConfigMap in the tenant's namespace. In a cluster the ConfigMap must carry the label portcullis.io/revocation=true (ext_authz watches only those).
     */
    configMapRef?: {
      /**
       * Name of the ConfigMap.
       */
      name: string;
      /**
       * Data key that holds the list.
       */
      key: string;
    };
    /**
     * Folder mode only: a file path relative to the policy folder, inside it (no .., not absolute). Name it *.json so the policy loader does not read it as policy YAML.
     */
    file?: string;
  };
  /**
   * Free attributes (jurisdiction, clearance, ...) visible to CEL as tenant.attributes.
   */
  attributes?: {
    [k: string]: string | undefined;
  };
  /**
   * Purposes of use the tenant may declare (agencies) in the x-purpose-of-use request header; a request declaring any other purpose is denied (PURPOSE_NOT_ALLOWED). Each entry is a name (lowercase letters, digits and -, at most 63 characters) or an object {name, legalBasis, description}: the legal basis (at most 256 characters) is written with the purpose into every audit record of a request that declares it. CEL sees the names as tenant.purposes. Entries are checked when the tenant is compiled (the API server cannot type a list of strings or objects; see docs/audit.md).
   *
   * @maxItems 64
   */
  purposes?: (string | {name: string; legalBasis?: string; description?: string})[];
  /**
   * Quotas of this tenant. A rule charges them by name; a quota here with appliesTo set is also the default for every allowed request of those principal types.
   *
   * @maxItems 32
   */
  quotas?: TenantQuota[];
  /**
   * Thresholds of the suspicious-activity signals for this tenant's principals (docs/alerts.md). Each signal counts in fixed windows and raises at most one alert per key and window: an audit record of type alert and portcullis_alerts_total. An omitted field takes its default.
   */
  alerts?: {
    /**
     * One principal's denied share of its requests: an alert when, within one window, it has at least minDenies policy denies and denies / requests reaches ratio.
     */
    denyRate?: {
      /**
       * Evaluate this signal for the tenant's principals.
       */
      enabled?: boolean;
      /**
       * Denied share of the principal's requests in the window (0.01 to 1).
       */
      ratio?: number;
      /**
       * Denies in the window below which no alert is raised, whatever the ratio.
       */
      minDenies?: number;
      /**
       * Length of the fixed window, in seconds.
       */
      windowSeconds?: number;
    };
    /**
     * Quota exhaustion bursts: an alert when the tenant's requests are refused with QUOTA_EXCEEDED at least count times within one window.
     */
    quotaBurst?: {
      /**
       * Evaluate this signal for the tenant.
       */
      enabled?: boolean;
      /**
       * QUOTA_EXCEEDED denies of the tenant in the window that raise the alert.
       */
      count?: number;
      /**
       * Length of the fixed window, in seconds.
       */
      windowSeconds?: number;
    };
    /**
     * The exfiltration pattern (agency tenants only): an alert when one principal is allowed access to at least count distinct data subjects (pseudonymised resource ids) within one window.
     */
    distinctSubjects?: {
      /**
       * Evaluate this signal for the tenant's principals.
       */
      enabled?: boolean;
      /**
       * Distinct data subjects in the window that raise the alert (at most 1000, which bounds the memory per principal).
       */
      count?: number;
      /**
       * Length of the fixed window, in seconds.
       */
      windowSeconds?: number;
    };
  };
}
/**
 * OIDC / JWT bearer tokens in the Authorization header, verified by Portcullis itself.
 */
export interface JwtIdentity {
  /**
   * Expected iss claim, compared exactly.
   */
  issuer: string;
  /**
   * Accepted aud values; the token must carry at least one of them.
   *
   * @minItems 1
   * @maxItems 32
   */
  audiences: string[];
  /**
   * HTTPS URL of the issuer's JWKS (plain http is accepted only for loopback hosts). Keys are cached and refreshed on an unknown kid at most once per 30 s.
   */
  jwksUri?: string;
  /**
   * OIDC discovery instead of jwksUri: Portcullis fetches issuerUrl/.well-known/openid-configuration (https; plain http only for loopback hosts; at most 64 KiB, 5 s), requires its issuer to equal issuer exactly, and uses its jwks_uri (and introspection_endpoint, when introspection names no endpoint). Refreshed every 10 minutes; until a document has been fetched, tokens are refused (fail closed).
   */
  issuerUrl?: string;
  /**
   * An inline JWK Set ({"keys":[...]}) with public keys only.
   */
  jwks?: {
    /**
     * The public JSON Web Keys.
     *
     * @minItems 1
     * @maxItems 64
     */
    keys: Jwk[];
  };
  /**
   * Allowed signature algorithms. Only asymmetric algorithms can be listed; none and HMAC are always refused.
   *
   * @minItems 1
   */
  algorithms?: ("RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512" | "ES256" | "ES384" | "ES512" | "EdDSA")[];
  /**
   * acr values that prove multi-factor authentication for this issuer; a rule with requireMfa accepts a token whose acr is one of them.
   *
   * @maxItems 32
   */
  requiredAcr?: string[];
  /**
   * amr values that prove multi-factor authentication (RFC 8176); a rule with requireMfa also accepts a token whose amr contains one of them.
   *
   * @maxItems 32
   */
  mfaAmr?: string[];
  /**
   * Tolerance for exp, nbf and iat, in seconds.
   */
  clockSkewSeconds?: number;
  /**
   * Claim that holds the principal's subject.
   */
  subjectClaim?: string;
}
/**
 * One public JWK (RFC 7517).
 */
export interface Jwk {
  [k: string]: unknown | undefined;
}
/**
 * Mutual TLS client certificates (agencies).
 */
export interface MtlsIdentity {
  /**
   * SPIFFE IDs of the tenant's workloads; a trailing /* matches one or more path segments, e.g. spiffe://gov.example/ns/revenue/*.
   *
   * @maxItems 64
   */
  spiffeIds?: string[];
  /**
   * X.509 subject distinguished names (RFC 4514, e.g. CN=client,O=Revenue) or DNS SANs; * matches any run of characters within one RDN or label.
   *
   * @maxItems 64
   */
  subjects?: string[];
  /**
   * Accept the identity from the x-forwarded-client-cert header set by a trusted proxy (Istio gateways and sidecars). Off by default: a client could forge it.
   */
  trustXfcc?: boolean;
}
/**
 * API keys (partners) in a request header. Only SHA-256 hashes are stored, in a Secret whose data keys are key ids and whose values are lowercase hex SHA-256 digests.
 */
export interface ApiKeyIdentity {
  /**
   * The Secret, in the tenant's namespace, that holds the key hashes.
   */
  secretRef: {
    /**
     * Name of the Secret.
     */
    name: string;
  };
  /**
   * Request header that carries the key.
   */
  header?: string;
}
/**
 * A quota (rate limit) charged per request.
 */
export interface TenantQuota {
  /**
   * Quota name, unique in its list; a rule entry with only a name refers to the tenant's quota of that name.
   */
  name: string;
  /**
   * Requests (cost units) admitted per period.
   */
  limit: number;
  /**
   * Period as a duration, e.g. 1s, 1m, 24h, 1h30m.
   */
  per: string;
  /**
   * token-bucket for bursts (default), fixed-window or sliding-window for volumes.
   */
  algorithm?: "token-bucket" | "fixed-window" | "sliding-window";
  /**
   * Bucket capacity for token-bucket (default limit).
   */
  burst?: number;
  /**
   * What is counted: tenant, principal (default), principalType, or a CEL expression over the rule variables that returns a string.
   */
  key?: string;
  /**
   * Units one request costs (default 1), a positive integer or a CEL expression returning an int.
   */
  cost?: number | string;
  /**
   * What to do when the quota backend is unreachable (default deny, fail closed).
   */
  onBackendError?: "deny" | "allow";
  /**
   * Principal types for which this quota is charged on every allowed request, even when no rule names it.
   */
  appliesTo?: ("consumer" | "agency" | "partner")[];
}
/**
 * Observed state, written by the operator.
 */
export interface TenantStatus {
  /**
   * The metadata.generation the status was computed from.
   */
  observedGeneration?: number;
  /**
   * Accepted, Programmed and Ready conditions.
   */
  conditions?: Condition[];
}
/**
 * One condition (Kubernetes metav1.Condition).
 */
export interface Condition {
  /**
   * Condition type, e.g. Ready.
   */
  type: string;
  /**
   * True, False or Unknown.
   */
  status: "True" | "False" | "Unknown";
  /**
   * The metadata.generation this condition was computed from.
   */
  observedGeneration?: number;
  /**
   * When the status last changed.
   */
  lastTransitionTime: string;
  /**
   * Machine-readable CamelCase reason.
   */
  reason: string;
  /**
   * Human-readable details.
   */
  message: string;
}
/**
 * Targets, hosts and ordered rules of the policy.
 */
export interface ApiPolicySpec {
  /**
   * The API version this policy protects (e.g. v2), written as apiVersion into every audit record of its decisions.
   */
  version?: string;
  /**
   * Workloads or routes the policy protects; the operator generates mesh configuration for them.
   *
   * @maxItems 16
   */
  targetRefs?: TargetRef[];
  /**
   * Hosts (HTTP authority) the policy answers for: exact names or *.suffix wildcards; ports are ignored. Requests are routed to a policy by host and path.
   *
   * @minItems 1
   * @maxItems 64
   */
  hosts: string[];
  /**
   * Decision when no rule matches. deny (default) is the only safe choice for non-public APIs.
   */
  defaultAction?: "deny" | "allow";
  /**
   * enforce (default): the policy decides. shadow: the policy is evaluated for every request it routes (identify, authorize, quotas computed but not charged) and the decision it would have made is audited (wouldDeny) and counted, but never applied: the request is decided as if this policy did not exist (no enforcing policy for the host: denied by default).
   */
  mode?: "enforce" | "shadow";
  /**
   * When an audit record cannot be written (buffer full, sink failing), deny (default) or allow the request.
   */
  auditFailure?: "deny" | "allow";
  /**
   * How the policy's hosts treat path parameters (;) and fragments (#), which mean different things to different upstreams. Both are rejected (400) by default; see docs/security.md.
   */
  pathHandling?: {
    /**
     * reject (default): a path segment with a ; is a bad request. strip: decide on the path with each segment's ;parameters removed, as servlet containers route. keep: ; is an ordinary character of the segment, for upstreams that route on the literal segment.
     */
    parameters?: "reject" | "strip" | "keep";
    /**
     * reject (default): a path with # is a bad request (no conforming client sends one). strip: decide on the path before #, for proxies configured to strip fragments.
     */
    fragment?: "reject" | "strip";
  };
  /**
   * Masks applied to agency requests allowed by a rule without detail: true (anonymised by default).
   *
   * @maxItems 128
   */
  defaultMask?: MaskDirective[];
  /**
   * Default for every mask of the policy that matches nothing in a response: record (default) or deny (fail closed with MASK_UNMATCHED). A mask's own onUnmatched wins.
   */
  onUnmatchedMask?: "record" | "deny";
  deprecation?: Deprecation;
  /**
   * Ordered rules. Deny rules are evaluated first and win; then the first matching allow rule decides.
   *
   * @minItems 1
   * @maxItems 512
   */
  rules: ApiPolicyRule[];
}
/**
 * A reference to a Service, HTTPRoute or Gateway in the policy's namespace.
 */
export interface TargetRef {
  /**
   * API group of the target ("" for Service, gateway.networking.k8s.io for HTTPRoute and Gateway).
   */
  group?: string;
  /**
   * Kind of the target.
   */
  kind: "Service" | "HTTPRoute" | "Gateway";
  /**
   * Name of the target.
   */
  name: string;
}
/**
 * One masking directive.
 */
export interface MaskDirective {
  /**
   * JSONPath subset: $.a.b, $.items[*].x, $..ssn.
   */
  field: string;
  /**
   * remove, redact (fixed replacement), partial (keep first/last characters), hash (HMAC pseudonym) or generalize.
   */
  action: "remove" | "redact" | "partial" | "hash" | "generalize";
  /**
   * Replacement text for redact (default "***").
   */
  replacement?: string;
  /**
   * Characters kept at the start (partial).
   */
  keepFirst?: number;
  /**
   * Characters kept at the end (partial).
   */
  keepLast?: number;
  /**
   * generalize target: year or month (dates), bucket (numbers), prefix (strings such as postcodes).
   */
  to?: "year" | "month" | "bucket" | "prefix";
  /**
   * Width of a number bucket (generalize to bucket).
   */
  bucketSize?: number;
  /**
   * Characters kept (generalize to prefix).
   */
  prefixLength?: number;
  /**
   * When this mask matches nothing in a response: record (default: the response goes out, the miss is in the audit record and the portcullis_mask_unmatched_total metric) or deny (the response is withheld, MASK_UNMATCHED). Overrides spec.onUnmatchedMask.
   */
  onUnmatched?: "record" | "deny";
}
/**
 * The API lifecycle of every rule of the policy (a rule's own deprecation wins). Allowed responses carry Deprecation (RFC 9745), Sunset (RFC 8594) and Link rel="deprecation"; after the sunset the policy answers 410 API_SUNSET unless afterSunset is serve.
 */
export interface Deprecation {
  /**
   * When the route is (or will be) deprecated, RFC 3339 (e.g. 2026-06-01T00:00:00Z).
   */
  since: string;
  /**
   * When the route stops answering, RFC 3339; not before since.
   */
  sunset?: string;
  /**
   * An https URL documenting the deprecation and its replacement.
   */
  link?: string;
  /**
   * deny (default, 410 API_SUNSET) or serve (keep answering, headers still sent).
   */
  afterSunset?: "deny" | "serve";
}
/**
 * One rule.
 */
export interface ApiPolicyRule {
  /**
   * Rule name, unique in the policy; reported in decisions and audit records.
   */
  name: string;
  /**
   * allow (default) or deny.
   */
  effect?: "allow" | "deny";
  /**
   * HTTP methods matched; empty or absent matches every method.
   *
   * @maxItems 9
   */
  methods?: ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" | "TRACE" | "CONNECT")[];
  /**
   * Path templates: literal segments, {name} captures one segment (visible to CEL as params.name), * matches one segment, ** the rest (last only). Empty or absent matches every path.
   *
   * @maxItems 64
   */
  paths?: string[];
  principals?: PrincipalSelector;
  /**
   * Shadow rule: evaluated with the policy's other rules as if enforced, its would-be denials audited (wouldDeny) and counted, but never applied; the policy decides as if the rule were absent. In a shadow policy every rule is in shadow.
   */
  shadow?: boolean;
  /**
   * The principal must hold a JWT proving multi-factor authentication (tenant requiredAcr / mfaAmr).
   */
  requireMfa?: boolean;
  /**
   * The request must declare a purpose of use (x-purpose-of-use) that the principal's tenant lists; without one the rule does not match and, when no other rule allows, the request is denied with PURPOSE_REQUIRED.
   */
  requirePurpose?: boolean;
  /**
   * The path parameter that identifies the data subject whose records the request touches (e.g. id for /v1/citizens/{id}/records); every path of the rule must capture it. Its value is written to the audit record only as a keyed pseudonym (resource), the same one a principal with that subject gets, so the subject's access report finds it.
   */
  subjectParam?: string;
  /**
   * CEL condition over request, principal, tenant, params and now; the rule matches only when it is true. Compiled and type-checked when the policy loads.
   */
  when?: string;
  /**
   * Quotas charged when the rule allows a request; all are charged or none.
   *
   * @maxItems 8
   */
  quotas?: RuleQuota[];
  /**
   * Masking directives applied to the JSON response body.
   *
   * @maxItems 128
   */
  mask?: MaskDirective[];
  /**
   * The JSON Schema of the response bodies this rule masks. When present, every mask and allowFields path is checked against it when the policy loads: a path that selects nothing the schema allows (a typo, wrong case, wrong nesting) is an error.
   */
  responseSchema?: {
    /**
     * The schema itself (JSON Schema; local $ref, allOf/anyOf/oneOf supported).
     */
    inline?: {
      [k: string]: unknown | undefined;
    };
    /**
     * The schema held in a ConfigMap of the policy's namespace (the key's value is the schema as JSON), read like request.body.configMapRef (label portcullis.io/schema=true); a missing ConfigMap, key or a value that is not JSON refuses the policy.
     */
    configMapRef?: {
      name: string;
      key: string;
    };
  };
  /**
   * Minimisation by allow-list: only these JSONPath fields are kept in the response body, everything else is removed.
   *
   * @maxItems 256
   */
  allowFields?: string[];
  /**
   * Agency rules only: skip the policy's defaultMask (detailed records). Requires a when condition, such as a purpose of use.
   */
  detail?: boolean;
  request?: RequestValidation;
  deprecation?: Deprecation;
}
/**
 * Which principals the rule applies to; absent means any authenticated principal.
 */
export interface PrincipalSelector {
  /**
   * Principal types (consumer, agency, partner).
   */
  types?: ("consumer" | "agency" | "partner")[];
  /**
   * Tenant names (in the policy's namespace).
   *
   * @maxItems 256
   */
  tenants?: string[];
  /**
   * Also match requests without credentials (public endpoints). Default false.
   */
  anonymous?: boolean;
}
/**
 * A quota (rate limit) charged per request.
 */
export interface RuleQuota {
  /**
   * Quota name, unique in its list; a rule entry with only a name refers to the tenant's quota of that name.
   */
  name: string;
  /**
   * Requests (cost units) admitted per period.
   */
  limit?: number;
  /**
   * Period as a duration, e.g. 1s, 1m, 24h, 1h30m.
   */
  per?: string;
  /**
   * token-bucket for bursts (default), fixed-window or sliding-window for volumes.
   */
  algorithm?: "token-bucket" | "fixed-window" | "sliding-window";
  /**
   * Bucket capacity for token-bucket (default limit).
   */
  burst?: number;
  /**
   * What is counted: tenant, principal (default), principalType, or a CEL expression over the rule variables that returns a string.
   */
  key?: string;
  /**
   * Units one request costs (default 1), a positive integer or a CEL expression returning an int.
   */
  cost?: number | string;
  /**
   * What to do when the quota backend is unreachable (default deny, fail closed).
   */
  onBackendError?: "deny" | "allow";
}
/**
 * Validation of the request itself (allow rules only), checked after the rule allows and before quotas are charged: content type, declared and actual body size, query parameters and a JSON Schema for the body. Invalid input is a 400 (BODY_INVALID, QUERY_INVALID), 413 (BODY_TOO_LARGE) or 415 (UNSUPPORTED_MEDIA_TYPE) naming the JSON pointer of the first failure, never the offending value. A rule with body or maxBodyBytes needs the proxy to send the body (docs/controls.md).
 */
export interface RequestValidation {
  /**
   * The JSON Schema (draft 2020-12) the JSON request body must satisfy.
   */
  body?: {
    /**
     * The schema itself, compiled when the policy loads (strict mode, local $ref only, no $id, no recursion, RE2 patterns, a fixed set of formats, size bounded).
     */
    inline?: {
      [k: string]: unknown | undefined;
    };
    /**
     * A schema held in a ConfigMap of the policy's namespace (the key's value is the schema as JSON), bounded and compiled like inline. ext_authz and the operator read only ConfigMaps labelled portcullis.io/schema=true; a missing ConfigMap, key or a value that is not JSON refuses the policy (POLICY_REQUEST), and editing the ConfigMap recompiles it.
     */
    configMapRef?: {
      /**
       * ConfigMap name.
       */
      name: string;
      /**
       * Key of the ConfigMap holding the schema as JSON.
       */
      key: string;
    };
  };
  /**
   * The query parameters the rule accepts, with their types and bounds.
   */
  query?: {
    /**
     * Declared parameters; each may appear at most once.
     *
     * @maxItems 64
     */
    parameters?: QueryParameter[];
    /**
     * allow (default) or reject parameters the list does not declare.
     */
    unknownParameters?: "allow" | "reject";
  };
  /**
   * Media types accepted for a request with a body (type/subtype or type/*, compared case-insensitively, parameters ignored). A body schema accepts only JSON types (application/json when absent).
   *
   * @maxItems 16
   */
  contentTypes?: string[];
  /**
   * Largest request body accepted, declared (Content-Length) or received; 413 above it. Default 65536 when body is set. At most 1 MiB.
   */
  maxBodyBytes?: number;
}
/**
 * One query parameter.
 */
export interface QueryParameter {
  /**
   * Parameter name (after percent-decoding).
   */
  name: string;
  /**
   * string, integer, number or boolean (true/false).
   */
  type: "string" | "integer" | "number" | "boolean";
  /**
   * The parameter must be present. Default false.
   */
  required?: boolean;
  /**
   * Smallest value (integer and number).
   */
  minimum?: number;
  /**
   * Largest value (integer and number), e.g. 100 for a page size.
   */
  maximum?: number;
  /**
   * Fewest characters (string).
   */
  minLength?: number;
  /**
   * Most characters (string).
   */
  maxLength?: number;
  /**
   * The only values accepted (compared as written).
   *
   * @maxItems 64
   */
  enum?: string[];
}
/**
 * Observed state, written by the operator.
 */
export interface ApiPolicyStatus {
  /**
   * The metadata.generation the status was computed from.
   */
  observedGeneration?: number;
  /**
   * Accepted, Programmed and Ready conditions.
   */
  conditions?: Condition[];
}
