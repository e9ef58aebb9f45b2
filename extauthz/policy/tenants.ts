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
import { PRINCIPAL_TYPE_OF_TENANT, objectKey, type PrincipalType, type SecretObject, type TenantObject, type TenantSpec } from './model.js';

export interface CompiledJwt {
  issuer: string;
  audiences: readonly string[];
  algorithms: readonly string[];
  keys: JWTVerifyGetKey;
  clockSkewSeconds: number;
  subjectClaim: string;
  requiredAcr: ReadonlySet<string>;
  mfaAmr: ReadonlySet<string>;
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

export interface CompiledTenant {
  key: string;
  name: string;
  namespace: string;
  type: TenantSpec['type'];
  principalType: PrincipalType;
  attributes: Readonly<Record<string, string>>;
  purposes: readonly string[];
  spec: TenantSpec;
  jwt?: CompiledJwt;
  mtls?: CompiledMtls;
  apiKeys?: CompiledApiKeys;
  /** Quotas by name (extauthz/quota), compiled at load. */
  quotas?: ReadonlyMap<string, CompiledQuota>;
  /** Suspicious-activity thresholds (spec.alerts with defaults filled in), read by extauthz/signals. */
  alerts: AlertThresholds;
  /** What CEL sees as `tenant`. */
  celValue: Readonly<Record<string, unknown>>;
}

/** Remote key sets survive recompiles, so a policy change does not drop cached keys. */
export class JwksCache {
  private readonly remote = new Map<string, JWTVerifyGetKey>();
  constructor(private readonly options: { allowInsecureLoopback: boolean } = { allowInsecureLoopback: true }) {}

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

function compileJwt(spec: NonNullable<TenantSpec['identity']['jwt']>, jwks: JwksCache): CompiledJwt {
  let keys: JWTVerifyGetKey;
  if (spec.jwks) {
    for (const k of spec.jwks.keys) {
      if ('d' in k || 'k' in k || k.kty === 'oct') throw new Error('jwks must hold public asymmetric keys only');
    }
    keys = createLocalJWKSet(spec.jwks as never);
  } else keys = jwks.get(spec.jwksUri!);
  return {
    issuer: spec.issuer,
    audiences: spec.audiences,
    algorithms: spec.algorithms ?? ['RS256', 'ES256'],
    keys,
    clockSkewSeconds: spec.clockSkewSeconds ?? 30,
    subjectClaim: spec.subjectClaim ?? 'sub',
    requiredAcr: new Set(spec.requiredAcr ?? []),
    mfaAmr: new Set(spec.mfaAmr ?? ['mfa']),
  };
}

function compileApiKeys(t: TenantObject, secrets: ReadonlyMap<string, SecretObject>): CompiledApiKeys {
  const ref = t.spec.identity.apiKeys!;
  const secret = secrets.get(`${t.metadata.namespace}/${ref.secretRef.name}`);
  if (!secret) throw new Error(`apiKeys.secretRef: Secret ${t.metadata.namespace}/${ref.secretRef.name} not found`);
  const digests = Object.entries(secret.values).map(([id, hex]) => {
    const v = hex.trim().toLowerCase();
    if (!SHA256_HEX.test(v)) throw new Error(`Secret ${secret.metadata.name} key ${id}: value must be a hex SHA-256 digest, not a raw key`);
    return { id, digest: Buffer.from(v, 'hex') };
  });
  if (digests.length === 0) throw new Error(`Secret ${secret.metadata.name} holds no key hashes`);
  return { header: ref.header ?? 'x-api-key', digests };
}

export interface TenantCompileOptions {
  /** The operator validates tenants without reading Secrets (least privilege); ext_authz needs them. */
  requireSecrets?: boolean;
}

export function compileTenant(t: TenantObject, secrets: ReadonlyMap<string, SecretObject>, jwks: JwksCache, opts: TenantCompileOptions = {}): CompiledTenant {
  const { spec } = t;
  const id = spec.identity;
  const attributes = { ...(spec.attributes ?? {}) } as Record<string, string>;
  const purposes = [...(spec.purposes ?? [])];
  const principalType = PRINCIPAL_TYPE_OF_TENANT[spec.type];
  return {
    key: objectKey(t),
    name: t.metadata.name,
    namespace: t.metadata.namespace,
    type: spec.type,
    principalType,
    attributes,
    purposes,
    spec,
    ...(id.jwt ? { jwt: compileJwt(id.jwt, jwks) } : {}),
    ...(id.mtls ? { mtls: compileMtls(id.mtls) } : {}),
    ...(id.apiKeys && opts.requireSecrets !== false ? { apiKeys: compileApiKeys(t, secrets) } : {}),
    quotas: compileTenantQuotas(spec.quotas ?? []),
    alerts: spec.alerts ? compileAlerts(spec.alerts) : DEFAULT_ALERT_THRESHOLDS,
    celValue: Object.freeze({ name: t.metadata.name, namespace: t.metadata.namespace, type: spec.type, attributes, purposes }),
  };
}

/** The tenants of one namespace, indexed for identification. */
export class TenantDirectory {
  readonly byName = new Map<string, CompiledTenant>();
  readonly byIssuer = new Map<string, CompiledTenant[]>();
  readonly mtls: CompiledTenant[] = [];
  readonly apiKeyHeaders = new Map<string, CompiledTenant[]>();

  add(t: CompiledTenant): void {
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

/** Compiles one tenant, or returns the problem that refuses it. */
export function tryCompileTenant(t: TenantObject, secrets: ReadonlyMap<string, SecretObject>, jwks: JwksCache, opts: TenantCompileOptions = {}): CompiledTenant | PolicyError {
  const where = { ...t.origin, object: `Tenant ${objectKey(t)}` };
  try {
    return compileTenant(t, secrets, jwks, opts);
  } catch (err) {
    const path = err instanceof IndexedQuotaError ? `/spec/${err.pointer}` : '/spec/identity';
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
