/**
 * Compiles Tenants into identity matchers: JWT issuers with their key sets, mTLS SPIFFE ID and
 * subject patterns, and API-key hash tables. Problems are reported per tenant; a broken tenant is
 * left out (its principals cannot authenticate), never half-loaded.
 */
import { createLocalJWKSet, createRemoteJWKSet, type JWTVerifyGetKey } from 'jose';
import { PolicyError } from '../errors.js';
import { compileTenantQuotas, IndexedQuotaError, type CompiledQuota } from '../quota/model.js';
import { DnSyntaxError, parseDnPattern, type DnPattern } from './dn.js';
import { compileDnsPattern, type DnsPattern } from './dns-name.js';
import { compileSpiffePattern, type SpiffePattern } from './spiffe.js';
import { resolveIdentityOverlaps, type TenantEntry } from './checks.js';
import { compileAlerts, DEFAULT_ALERT_THRESHOLDS, type AlertThresholds } from './alerts.js';
import { PRINCIPAL_TYPE_OF_TENANT, objectKey, type ConfigMapObject, type PrincipalType, type SecretObject, type TenantObject, type TenantSpec } from './model.js';
import { parseRevocationList, RevocationListError, type CompiledRevocation } from './revocation.js';
import { OidcDiscovery } from './discovery.js';
import { checkedUrl } from './fetch-json.js';

export interface CompiledJwt {
  issuer: string;
  audiences: readonly string[];
  algorithms: readonly string[];
  keys: JWTVerifyGetKey;
  clockSkewSeconds: number;
  subjectClaim: string;
  requiredAcr: ReadonlySet<string>;
  mfaAmr: ReadonlySet<string>;
  /** Set with issuerUrl: the keys come from the discovered jwks_uri. */
  discovery?: OidcDiscovery;
}

/** RFC 7662 token introspection of one tenant (identify/introspection.ts runs it). */
export interface CompiledIntrospection {
  /** The configured endpoint; absent: the one jwt.issuerUrl's discovery names. */
  endpoint?: URL;
  discovery?: OidcDiscovery;
  /** client_secret_basic: the Authorization header value, built at load. */
  authorization: string;
  cacheMs: number;
  timeoutMs: number;
  onError: 'deny' | 'allow';
  /** Identify opaque (non-JWT) bearer tokens by introspection. */
  opaque: boolean;
  /** Introspect verified JWTs as an additional check. */
  jwt: boolean;
}

export interface CompiledMtls {
  spiffeIds: readonly SpiffePattern[];
  /** subjects entries holding `=`: distinguished names, matched RDN by RDN. */
  subjects: readonly DnPattern[];
  /** subjects entries without `=`: DNS SAN patterns, matched label by label. */
  dnsNames: readonly DnsPattern[];
  trustXfcc: boolean;
}

export interface CompiledApiKeys {
  header: string;
  /** SHA-256 digests with their key ids. */
  digests: readonly { id: string; digest: Buffer }[];
}

/** One purpose of use the tenant may declare, with the legal basis audit records carry. */
export interface CompiledPurpose {
  name: string;
  /** null for a purpose given as a plain name. */
  legalBasis: string | null;
  description: string | null;
}

export interface CompiledTenant {
  key: string;
  name: string;
  namespace: string;
  type: TenantSpec['type'];
  principalType: PrincipalType;
  attributes: Readonly<Record<string, string>>;
  /** The purpose names, as CEL sees them (tenant.purposes). */
  purposes: readonly string[];
  /** Purposes by name: a declared purpose is looked up here (authorize.ts), once per Check. */
  purposeIndex: ReadonlyMap<string, CompiledPurpose>;
  spec: TenantSpec;
  jwt?: CompiledJwt;
  mtls?: CompiledMtls;
  apiKeys?: CompiledApiKeys;
  introspection?: CompiledIntrospection;
  /** Quotas by name (extauthz/quota), compiled at load. */
  quotas?: ReadonlyMap<string, CompiledQuota>;
  /** The revocation list (revocation.ts), parsed at load; absent: the tenant has none. */
  revocation?: CompiledRevocation;
  /** Suspicious-activity thresholds (spec.alerts with defaults filled in), read by extauthz/signals. */
  alerts: AlertThresholds;
  /** What CEL sees as `tenant`. */
  celValue: Readonly<Record<string, unknown>>;
}

/** Remote key sets survive recompiles, so a policy change does not drop cached keys. */
export class JwksCache {
  private readonly remote = new Map<string, JWTVerifyGetKey>();
  private readonly discoveries = new Map<string, OidcDiscovery>();
  constructor(private readonly options: { allowInsecureLoopback: boolean } = { allowInsecureLoopback: true }) {}

  /** The discovery state of an issuer URL and expected issuer (shared across recompiles). */
  discovery(issuerUrl: string, issuer: string): OidcDiscovery {
    checkedUrl(issuerUrl, 'issuerUrl', this.options.allowInsecureLoopback);
    const key = `${issuerUrl}\u0000${issuer}`;
    let d = this.discoveries.get(key);
    if (!d) {
      d = new OidcDiscovery(issuerUrl, issuer, { allowInsecureLoopback: this.options.allowInsecureLoopback, keySet: (uri) => this.get(uri) });
      this.discoveries.set(key, d);
    }
    return d;
  }

  get(uri: string): JWTVerifyGetKey {
    let set = this.remote.get(uri);
    if (!set) {
      const url = new URL(uri);
      const loopback = ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname);
      if (url.protocol !== 'https:' && !(url.protocol === 'http:' && loopback && this.options.allowInsecureLoopback)) {
        throw new Error('jwksUri must use https (plain http only for loopback hosts)');
      }
      // cooldownDuration: an unknown kid triggers at most one refetch per 30 s.
      set = createRemoteJWKSet(url, { cooldownDuration: 30_000, cacheMaxAge: 600_000, timeoutDuration: 5_000 });
      this.remote.set(uri, set);
    }
    return set;
  }
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const PURPOSE_NAME = /^[a-z0-9][a-z0-9-]*$/;
const PURPOSE_KEYS = new Set(['name', 'legalBasis', 'description']);
// Printable text only (no control characters): these strings go into audit records and reports.
const PRINTABLE = /^[^\p{Cc}]*$/u;

/** A problem with the purpose at /spec/purposes/{index}. */
export class PurposeError extends Error {
  constructor(
    readonly index: number,
    message: string,
  ) {
    super(message);
  }
}

function purposeText(v: unknown, field: string, max: number, i: number): string | null {
  if (v === undefined) return null;
  if (typeof v !== 'string' || v.length === 0 || v.length > max || !PRINTABLE.test(v)) throw new PurposeError(i, `purposes[${i}].${field} must be printable text of 1 to ${max} characters`);
  return v;
}

function purposeName(v: unknown, i: number): string {
  if (typeof v !== 'string' || v.length > 63 || !PURPOSE_NAME.test(v)) throw new PurposeError(i, `purposes[${i}]: the name must be lowercase letters, digits and -, at most 63 characters`);
  return v;
}

function compilePurpose(entry: unknown, i: number): CompiledPurpose {
  if (typeof entry === 'string') return { name: purposeName(entry, i), legalBasis: null, description: null };
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw new PurposeError(i, `purposes[${i}] must be a name or an object {name, legalBasis, description}`);
  const o = entry as Record<string, unknown>;
  const unknown = Object.keys(o).find((k) => !PURPOSE_KEYS.has(k));
  if (unknown !== undefined) throw new PurposeError(i, `purposes[${i}] has an unknown field (only name, legalBasis and description)`);
  const name = purposeName(o.name, i);
  if (o.legalBasis === undefined) throw new PurposeError(i, `purposes[${i}] (${name}): an object entry needs a legalBasis (a plain name needs none)`);
  return { name, legalBasis: purposeText(o.legalBasis, 'legalBasis', 256, i), description: purposeText(o.description, 'description', 1024, i) };
}

/** The tenant's purposes (plain names or objects), checked and indexed by name. */
export function compilePurposes(entries: readonly unknown[]): Map<string, CompiledPurpose> {
  const out = new Map<string, CompiledPurpose>();
  entries.forEach((entry, i) => {
    const p = compilePurpose(entry, i);
    if (out.has(p.name)) throw new PurposeError(i, `purpose ${p.name} is listed twice`);
    out.set(p.name, Object.freeze(p));
  });
  return out;
}

function subjectPattern(p: string): DnPattern {
  try {
    return parseDnPattern(p);
  } catch (err) {
    if (err instanceof DnSyntaxError) throw new Error(`subjects: ${JSON.stringify(p)} is not a valid distinguished name: ${err.message}`);
    throw err;
  }
}

function compileMtls(spec: NonNullable<TenantSpec['identity']['mtls']>): CompiledMtls {
  const subjects = spec.subjects ?? [];
  return {
    spiffeIds: (spec.spiffeIds ?? []).map(compileSpiffePattern),
    subjects: subjects.filter((s) => s.includes('=')).map(subjectPattern),
    dnsNames: subjects.filter((s) => !s.includes('=')).map(compileDnsPattern),
    trustXfcc: spec.trustXfcc ?? false,
  };
}

/** The tenant's key source: an inline JWKS (public keys only), OIDC discovery, or a JWKS URI. */
function jwtKeys(spec: NonNullable<TenantSpec['identity']['jwt']>, jwks: JwksCache): { keys: JWTVerifyGetKey; discovery?: OidcDiscovery } {
  if (spec.jwks) {
    for (const k of spec.jwks.keys) {
      if ('d' in k || 'k' in k || k.kty === 'oct') throw new Error('jwks must hold public asymmetric keys only');
    }
    return { keys: createLocalJWKSet(spec.jwks as never) };
  }
  if (spec.issuerUrl !== undefined) {
    const discovery = jwks.discovery(spec.issuerUrl, spec.issuer);
    return { keys: discovery.keys, discovery };
  }
  return { keys: jwks.get(spec.jwksUri!) };
}

function compileJwt(spec: NonNullable<TenantSpec['identity']['jwt']>, jwks: JwksCache): CompiledJwt {
  const { keys, discovery } = jwtKeys(spec, jwks);
  const compiled: CompiledJwt = {
    issuer: spec.issuer,
    audiences: spec.audiences,
    algorithms: spec.algorithms ?? ['RS256', 'ES256'],
    keys,
    clockSkewSeconds: spec.clockSkewSeconds ?? 30,
    subjectClaim: spec.subjectClaim ?? 'sub',
    requiredAcr: new Set(spec.requiredAcr ?? []),
    mfaAmr: new Set(spec.mfaAmr ?? ['mfa']),
  };
  if (discovery) compiled.discovery = discovery;
  return compiled;
}

/** Why a Secret a tenant names cannot be used (the operator's status reason). Messages name the Secret and key, never a value. */
export type SecretProblem = 'SecretNotFound' | 'SecretKeyNotFound' | 'SecretInvalid';

export class SecretReferenceError extends Error {
  constructor(
    readonly problem: SecretProblem,
    /** namespace/name of the Secret. */
    readonly secret: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** The SecretReferenceError behind a compile problem (it may be wrapped), if there is one. */
export function secretProblemOf(err: unknown): SecretReferenceError | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    if (e instanceof SecretReferenceError) return e;
  }
  return undefined;
}

/** What each Secret reference needs: the label ext_authz lists it by, and the use (for messages). */
const SECRET_USES = {
  apiKeys: { label: 'portcullis.io/api-keys=true', field: 'apiKeys.secretRef' },
  revocation: { label: 'portcullis.io/revocation=true', field: 'revocation.secretRef' },
  introspection: { label: 'portcullis.io/introspection=true', field: 'introspection.clientSecretRef' },
} as const;

export type SecretUse = keyof typeof SECRET_USES;

/** One Secret a tenant names: its use, namespace/name, and the key (apiKeys reads every key). */
export interface SecretReference {
  use: SecretUse;
  secret: string;
  key?: string;
}

/** The Secrets a tenant's spec names (API-key hashes, a revocation list, an introspection client secret). */
export function secretReferences(t: { metadata: { namespace: string }; spec: TenantSpec }): SecretReference[] {
  const ns = t.metadata.namespace;
  const out: SecretReference[] = [];
  const keys = t.spec.identity?.apiKeys?.secretRef?.name;
  if (keys !== undefined) out.push({ use: 'apiKeys', secret: `${ns}/${keys}` });
  const rev = t.spec.revocation?.secretRef;
  if (rev) out.push({ use: 'revocation', secret: `${ns}/${rev.name}`, key: rev.key });
  const intro = t.spec.identity?.introspection?.clientSecretRef;
  if (intro) out.push({ use: 'introspection', secret: `${ns}/${intro.name}`, key: intro.key });
  return out;
}

/** The Secret a reference names, or SecretNotFound saying which label a cluster Secret needs. */
function referencedSecret(use: SecretUse, secretKey: string, secrets: ReadonlyMap<string, SecretObject>): SecretObject {
  const secret = secrets.get(secretKey);
  const u = SECRET_USES[use];
  if (!secret) throw new SecretReferenceError('SecretNotFound', secretKey, `${u.field}: Secret ${secretKey} not found (in a cluster it needs the label ${u.label})`);
  return secret;
}

function introspectionSecret(t: TenantObject, secrets: ReadonlyMap<string, SecretObject>): string {
  const ref = t.spec.identity.introspection!.clientSecretRef;
  const secretKey = `${t.metadata.namespace}/${ref.name}`;
  const value = referencedSecret('introspection', secretKey, secrets).values[ref.key];
  if (value === undefined || value === '') throw new SecretReferenceError('SecretKeyNotFound', secretKey, `introspection.clientSecretRef: Secret ${secretKey} has no key ${ref.key} (or it is empty)`);
  return value;
}

function compileIntrospection(t: TenantObject, secrets: ReadonlyMap<string, SecretObject>, jwt: CompiledJwt | undefined, opts: TenantCompileOptions): CompiledIntrospection {
  const spec = t.spec.identity.introspection!;
  const mode = spec.mode ?? 'opaque';
  const out: CompiledIntrospection = {
    authorization: '',
    cacheMs: (spec.cacheSeconds ?? 60) * 1000,
    timeoutMs: spec.timeoutMs ?? 1000,
    onError: spec.onError ?? 'deny',
    opaque: mode !== 'jwt',
    jwt: mode !== 'opaque',
  };
  if (spec.endpoint !== undefined) out.endpoint = checkedUrl(spec.endpoint, 'introspection.endpoint');
  else if (jwt?.discovery) out.discovery = jwt.discovery;
  else throw new Error('introspection needs an endpoint (or jwt.issuerUrl, whose discovery document names one)');
  if (out.jwt && !jwt) throw new Error(`introspection mode ${mode} introspects JWTs: the tenant needs identity.jwt`);
  if (opts.requireSecrets !== false) {
    // RFC 6749 §2.3.1: client id and secret form-urlencoded, then base64 (client_secret_basic).
    const pair = `${encodeURIComponent(spec.clientId)}:${encodeURIComponent(introspectionSecret(t, secrets))}`;
    out.authorization = `Basic ${Buffer.from(pair).toString('base64')}`;
  }
  return out;
}

/** An API-key Secret value as the engine reads it: the hex SHA-256 digest, or undefined when it is not one. */
export function keyDigest(value: string): string | undefined {
  const v = value.trim().toLowerCase();
  return SHA256_HEX.test(v) ? v : undefined;
}

function compileApiKeys(t: TenantObject, secrets: ReadonlyMap<string, SecretObject>): CompiledApiKeys {
  const ref = t.spec.identity.apiKeys!;
  const secretKey = `${t.metadata.namespace}/${ref.secretRef.name}`;
  const secret = referencedSecret('apiKeys', secretKey, secrets);
  const digests = Object.entries(secret.values).map(([id, value]) => {
    const hex = keyDigest(value);
    if (hex === undefined) throw new SecretReferenceError('SecretInvalid', secretKey, `apiKeys.secretRef: Secret ${secretKey} key ${id}: value must be a hex SHA-256 digest, not a raw key`);
    return { id, digest: Buffer.from(hex, 'hex') };
  });
  if (digests.length === 0) throw new SecretReferenceError('SecretInvalid', secretKey, `apiKeys.secretRef: Secret ${secretKey} holds no key hashes`);
  return { header: ref.header ?? 'x-api-key', digests };
}

/** A revocation file of folder mode, as the folder source read it. */
export type RevocationFile = { text: string } | { error: string };

export interface TenantCompileOptions {
  /** False: Secrets are not read (the operator with --no-verify-secrets); ext_authz and the verifying operator need them. */
  requireSecrets?: boolean;
  /** ConfigMaps by namespace/name (revocation sources). */
  configMaps?: ReadonlyMap<string, ConfigMapObject>;
  /** Folder mode: revocation files by their path in the policy folder. Absent: no folder, so revocation.file is refused. */
  files?: ReadonlyMap<string, RevocationFile>;
}

/** The text of a revocation Secret or ConfigMap key; undefined when Secrets are not read (requireSecrets false). */
function revocationRefText(t: TenantObject, secrets: ReadonlyMap<string, SecretObject>, opts: TenantCompileOptions): { text: string; source: string } | undefined {
  const r = t.spec.revocation!;
  const ns = t.metadata.namespace;
  const ref = (r.secretRef ?? r.configMapRef)!;
  const kind = r.secretRef ? 'Secret' : 'ConfigMap';
  if (r.secretRef && opts.requireSecrets === false) return undefined;
  const source = `${kind} ${ns}/${ref.name} key ${ref.key}`;
  if (r.secretRef) {
    const text = referencedSecret('revocation', `${ns}/${ref.name}`, secrets).values[ref.key];
    if (text === undefined) throw new SecretReferenceError('SecretKeyNotFound', `${ns}/${ref.name}`, `revocation: Secret ${ns}/${ref.name} has no key ${ref.key}`);
    return { text, source };
  }
  const obj = opts.configMaps?.get(`${ns}/${ref.name}`);
  if (!obj) throw new Error(`revocation: ${kind} ${ns}/${ref.name} not found (in a cluster it needs the label portcullis.io/revocation=true)`);
  const text = obj.values[ref.key];
  if (text === undefined) throw new Error(`revocation: ${kind} ${ns}/${ref.name} has no key ${ref.key}`);
  return { text, source };
}

/** The text a revocation source holds, or an error saying why it cannot be read (never its content). */
function revocationText(t: TenantObject, secrets: ReadonlyMap<string, SecretObject>, opts: TenantCompileOptions): { text: string; source: string } | undefined {
  const r = t.spec.revocation!;
  if (r.secretRef || r.configMapRef) return revocationRefText(t, secrets, opts);
  if (!opts.files) throw new Error('revocation.file works only with a policy folder; in a cluster use secretRef or configMapRef');
  const file = opts.files.get(r.file!);
  if (!file) throw new Error(`revocation.file ${r.file!} must be a path inside the policy folder (relative, no ..)`);
  if ('error' in file) throw new Error(`revocation.file ${r.file!}: ${file.error}`);
  return { text: file.text, source: `file ${r.file!}` };
}

function compileRevocation(t: TenantObject, secrets: ReadonlyMap<string, SecretObject>, opts: TenantCompileOptions): CompiledRevocation | undefined {
  if (!t.spec.revocation) return undefined;
  const found = revocationText(t, secrets, opts);
  if (!found) return undefined;
  try {
    return parseRevocationList(found.text, found.source);
  } catch (err) {
    if (!(err instanceof RevocationListError)) throw err;
    const message = `revocation list in ${found.source}: ${err.message}`;
    const ref = t.spec.revocation?.secretRef;
    const cause = ref ? new SecretReferenceError('SecretInvalid', `${t.metadata.namespace}/${ref.name}`, message, { cause: err }) : err;
    throw new RevocationSourceError(message, { cause });
  }
}

/** A revocation source that is missing or does not parse (reported at /spec/revocation). */
export class RevocationSourceError extends Error {}

export function compileTenant(t: TenantObject, secrets: ReadonlyMap<string, SecretObject>, jwks: JwksCache, opts: TenantCompileOptions = {}): CompiledTenant {
  const { spec } = t;
  const id = spec.identity;
  const attributes = { ...(spec.attributes ?? {}) } as Record<string, string>;
  const purposeIndex = compilePurposes(spec.purposes ?? []);
  const purposes = [...purposeIndex.keys()];
  const principalType = PRINCIPAL_TYPE_OF_TENANT[spec.type];
  const jwt = id.jwt ? compileJwt(id.jwt, jwks) : undefined;
  return {
    key: objectKey(t),
    name: t.metadata.name,
    namespace: t.metadata.namespace,
    type: spec.type,
    principalType,
    attributes,
    purposes,
    purposeIndex,
    spec,
    ...optional('jwt', jwt),
    ...(id.introspection ? { introspection: compileIntrospection(t, secrets, jwt, opts) } : {}),
    ...(id.mtls ? { mtls: compileMtls(id.mtls) } : {}),
    ...(id.apiKeys && opts.requireSecrets !== false ? { apiKeys: compileApiKeys(t, secrets) } : {}),
    quotas: compileTenantQuotas(spec.quotas ?? []),
    ...(spec.revocation ? optional('revocation', compileRevocationAt(t, secrets, opts)) : {}),
    alerts: spec.alerts ? compileAlerts(spec.alerts) : DEFAULT_ALERT_THRESHOLDS,
    celValue: Object.freeze({ name: t.metadata.name, namespace: t.metadata.namespace, type: spec.type, attributes, purposes }),
  };
}

function compileRevocationAt(t: TenantObject, secrets: ReadonlyMap<string, SecretObject>, opts: TenantCompileOptions): CompiledRevocation | undefined {
  try {
    return compileRevocation(t, secrets, opts);
  } catch (err) {
    if (err instanceof RevocationSourceError) throw err;
    throw new RevocationSourceError((err as Error).message, { cause: err });
  }
}

function optional<K extends string, V>(key: K, v: V | undefined): { [P in K]?: V } {
  return (v === undefined ? {} : { [key]: v }) as { [P in K]?: V };
}

/** The tenants of one namespace, indexed for identification. */
export class TenantDirectory {
  readonly byName = new Map<string, CompiledTenant>();
  readonly byIssuer = new Map<string, CompiledTenant[]>();
  readonly mtls: CompiledTenant[] = [];
  readonly apiKeyHeaders = new Map<string, CompiledTenant[]>();
  /** Tenants that identify opaque bearer tokens by introspection (more than one: such a token is ambiguous). */
  readonly opaque: CompiledTenant[] = [];

  add(t: CompiledTenant): void {
    if (t.introspection?.opaque) this.opaque.push(t);
    this.byName.set(t.name, t);
    if (t.jwt) this.byIssuer.set(t.jwt.issuer, [...(this.byIssuer.get(t.jwt.issuer) ?? []), t]);
    if (t.mtls) this.mtls.push(t);
    if (t.apiKeys) this.apiKeyHeaders.set(t.apiKeys.header, [...(this.apiKeyHeaders.get(t.apiKeys.header) ?? []), t]);
  }
}

/** The snapshot's age order for a tenant: creationTimestamp, then namespace/name. */
export function tenantAge(t: TenantObject): string {
  return `${t.metadata.creationTimestamp ?? ''}\u0000${objectKey(t)}`;
}

/** Where in the spec a compile error sits. */
function problemPath(err: unknown): string {
  if (err instanceof IndexedQuotaError) return `/spec/${err.pointer}`;
  if (err instanceof PurposeError) return `/spec/purposes/${err.index}`;
  if (err instanceof RevocationSourceError) return '/spec/revocation';
  return '/spec/identity';
}

/** Compiles one tenant, or returns the problem that refuses it. */
export function tryCompileTenant(t: TenantObject, secrets: ReadonlyMap<string, SecretObject>, jwks: JwksCache, opts: TenantCompileOptions = {}): CompiledTenant | PolicyError {
  const where = { ...t.origin, object: `Tenant ${objectKey(t)}` };
  try {
    return compileTenant(t, secrets, jwks, opts);
  } catch (err) {
    const path = problemPath(err);
    const code = err instanceof IndexedQuotaError && err.cel ? (err.overBudget ? 'POLICY_CEL_COST' : 'POLICY_CEL') : 'POLICY_INVALID';
    return new PolicyError(code, (err as Error).message, { ...where, path }, { cause: err });
  }
}

/** A directory of the given tenants (already free of identity overlaps). */
export function directoryOf(tenants: Iterable<CompiledTenant>): TenantDirectory {
  const dir = new TenantDirectory();
  for (const t of tenants) dir.add(t);
  return dir;
}

/** Compiles every tenant; returns the directories by namespace and the problems (overlapping identities included). */
export function compileTenants(
  tenants: readonly TenantObject[],
  secrets: readonly SecretObject[],
  jwks: JwksCache,
  opts: TenantCompileOptions = {},
): { directories: Map<string, TenantDirectory>; problems: PolicyError[] } {
  const secretMap = new Map(secrets.map((s) => [objectKey(s), s]));
  const byNamespace = new Map<string, TenantEntry<CompiledTenant>[]>();
  const problems: PolicyError[] = [];
  for (const t of tenants) {
    const compiled = tryCompileTenant(t, secretMap, jwks, opts);
    if (compiled instanceof PolicyError) {
      problems.push(compiled);
      continue;
    }
    const list = byNamespace.get(compiled.namespace) ?? [];
    list.push({ tenant: compiled, age: tenantAge(t), where: { ...t.origin, object: `Tenant ${compiled.key}` } });
    byNamespace.set(compiled.namespace, list);
  }
  const directories = new Map<string, TenantDirectory>();
  for (const [ns, entries] of byNamespace) {
    const { kept, problems: clashes } = resolveIdentityOverlaps(entries);
    problems.push(...clashes);
    directories.set(ns, directoryOf(kept.map((e) => e.tenant)));
  }
  return { directories, problems };
}
