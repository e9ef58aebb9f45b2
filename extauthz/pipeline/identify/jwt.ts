/**
 * JWT bearer tokens, verified by Portcullis itself (Istio runs ext_authz before jwt_authn).
 * The unverified iss and aud only choose which tenant's keys to verify with; jose then checks
 * the signature with the tenant's allow-listed algorithms (never none or HMAC), issuer, audience,
 * exp/nbf with bounded clock skew. Verified tokens are cached by digest until they expire.
 */
import { createHash } from 'node:crypto';
import { DeadlineExceeded, raceDeadline } from '../deadline.js';
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { PortcullisError } from '../../errors.js';
import type { CompiledTenant } from '../../policy/tenants.js';
import type { TenantDirectory } from '../../policy/tenants.js';
import type { Principal } from '../principal.js';
import { DiscoveryError } from '../../policy/discovery.js';

export const MAX_TOKEN_BYTES = 16 * 1024;

interface CacheEntry {
  tenant: CompiledTenant;
  payload: JWTPayload;
  /** Epoch ms after which the entry is no longer trusted. */
  until: number;
}

/** A bounded map of verified tokens (insertion order as LRU approximation). */
export class VerifiedTokenCache {
  private readonly entries = new Map<string, CacheEntry>();
  constructor(private readonly max = 10_000) {}

  get(key: string, nowMs: number): CacheEntry | undefined {
    const e = this.entries.get(key);
    if (!e) return undefined;
    if (e.until <= nowMs) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  set(key: string, entry: CacheEntry): void {
    if (this.entries.size >= this.max) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(key, entry);
  }

  clear(): void {
    this.entries.clear();
  }
}

function invalid(reason: string, cause?: unknown): PortcullisError {
  return new PortcullisError('INVALID_TOKEN', reason, cause === undefined ? undefined : { cause });
}

/** The `aud` claim as a list (a string, an array of strings, or none). */
export function audiences(payload: { aud?: unknown }): string[] {
  const aud = payload.aud;
  return typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
}

/** Picks the one tenant of the namespace that accepts this issuer and one of the audiences. */
function tenantFor(token: string, dir: TenantDirectory): CompiledTenant {
  let payload: JWTPayload;
  try {
    const header = decodeProtectedHeader(token);
    if (typeof header.alg !== 'string' || header.alg === 'none' || header.alg.startsWith('HS')) throw invalid(`algorithm ${String(header.alg)} is not accepted`);
    payload = decodeJwt(token);
  } catch (err) {
    if (err instanceof PortcullisError) throw err;
    throw invalid('malformed token', err);
  }
  const candidates = (dir.byIssuer.get(String(payload.iss ?? '')) ?? []).filter((t) => audiences(payload).some((a) => t.jwt!.audiences.includes(a)));
  if (candidates.length === 0) throw new PortcullisError('UNKNOWN_ISSUER', 'no tenant accepts this token issuer and audience');
  if (candidates.length > 1) throw new PortcullisError('AMBIGUOUS_PRINCIPAL', 'token matches several tenants');
  return candidates[0]!;
}

function reasonOf(err: unknown): string {
  if (err instanceof DiscoveryError) return err.message;
  if (err instanceof joseErrors.JWTExpired) return 'token expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) return `claim ${err.claim} invalid: ${err.reason}`;
  if (err instanceof joseErrors.JWKSNoMatchingKey) return 'no key matches the token kid';
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'token algorithm not allowed';
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'signature verification failed';
  if (err instanceof joseErrors.JWKSTimeout || err instanceof joseErrors.JOSEError) return `token rejected (${(err as joseErrors.JOSEError).code})`;
  return 'token rejected';
}

/** What a tenant without a jwt block (opaque tokens only) counts as MFA: the default amr. */
const DEFAULT_MFA = { requiredAcr: new Set<string>(), mfaAmr: new Set(['mfa']) } as const;

/** Whether the token's (or introspection answer's) acr/amr say multi-factor, by the tenant's rules. */
export function hasMfa(tenant: CompiledTenant, claims: Readonly<Record<string, unknown>>): boolean {
  const rules = tenant.jwt ?? DEFAULT_MFA;
  if (typeof claims.acr === 'string' && rules.requiredAcr.has(claims.acr)) return true;
  const amr = claims.amr;
  return Array.isArray(amr) && amr.some((m) => typeof m === 'string' && rules.mfaAmr.has(m));
}

function toPrincipal(tenant: CompiledTenant, payload: JWTPayload): Principal {
  const subject = payload[tenant.jwt!.subjectClaim];
  if (typeof subject !== 'string' || subject === '') throw invalid(`token has no ${tenant.jwt!.subjectClaim} claim`);
  return { type: tenant.principalType, tenant, subject, method: 'jwt', claims: payload, spiffeId: '', mfa: hasMfa(tenant, payload) };
}

export class JwtIdentifier {
  constructor(private readonly cache: VerifiedTokenCache = new VerifiedTokenCache()) {}

  clearCache(): void {
    this.cache.clear();
  }

  async identify(token: string, dir: TenantDirectory, now: Date, signal?: AbortSignal): Promise<Principal> {
    if (token.length > MAX_TOKEN_BYTES) throw invalid('token too large');
    const nowMs = now.getTime();
    const digest = createHash('sha256').update(token).digest('base64url');
    const cached = this.cache.get(digest, nowMs);
    // The cached tenant must still be the one this namespace binds the token to (reloads, namespaces).
    if (cached && dir.byName.get(cached.tenant.name) === cached.tenant) return toPrincipal(cached.tenant, cached.payload);
    const tenant = tenantFor(token, dir);
    const jwt = tenant.jwt!;
    let payload: JWTPayload;
    try {
      // jose takes no signal: a key-set fetch the deadline outruns goes on and fills the cache.
      ({ payload } = await raceDeadline(jwtVerify(token, jwt.keys, {
        issuer: jwt.issuer,
        audience: [...jwt.audiences],
        algorithms: [...jwt.algorithms],
        clockTolerance: jwt.clockSkewSeconds,
        currentDate: now,
        requiredClaims: ['exp'],
      }), signal, 'while verifying the token'));
    } catch (err) {
      if (err instanceof DeadlineExceeded) throw err;
      throw invalid(reasonOf(err), err);
    }
    if (typeof payload.iat === 'number' && payload.iat * 1000 > nowMs + jwt.clockSkewSeconds * 1000) throw invalid('token issued in the future');
    const principal = toPrincipal(tenant, payload);
    this.cache.set(digest, { tenant, payload, until: Math.min((payload.exp ?? 0) * 1000 + jwt.clockSkewSeconds * 1000, nowMs + 300_000) });
    return principal;
  }
}
