/**
 * Phase 3, identify. Explicit credentials win over the transport: a bearer token, else an API
 * key, else the mTLS peer. A peer certificate bound to no tenant (an ingress gateway's own
 * identity, say) leaves the request anonymous rather than failing it; invalid explicit
 * credentials always fail with 401.
 */
import { PortcullisError } from '../../errors.js';
import type { TenantDirectory } from '../../policy/tenants.js';
import type { RequestContext } from '../context.js';
import type { Principal } from '../principal.js';
import { identifyApiKey, presentedApiKey } from './apikey.js';
import { audiences, hasMfa, JwtIdentifier, MAX_TOKEN_BYTES } from './jwt.js';
import { IntrospectionClient } from './introspection.js';
import type { CompiledTenant } from '../../policy/tenants.js';
import { identifyMtls } from './mtls.js';
import { forwardableSubject } from '../shape.js';
import { revokedKind, type RevocationKind } from '../../policy/revocation.js';

/**
 * A credential on its tenant's revocation list: 401 REVOKED. It carries the principal, so the
 * audit record names the tenant and the (pseudonymised) subject, and the kind for the metric;
 * the message never holds the revoked id.
 */
export class RevokedError extends PortcullisError {
  constructor(
    readonly principal: Principal,
    readonly kind: RevocationKind,
  ) {
    super('REVOKED', `credential revoked (${kind === 'api-key' ? 'API key id' : kind} on the tenant's revocation list)`);
  }
}

/** A compact JWS has exactly three dot-separated parts; anything else is an opaque token. */
function looksLikeJwt(token: string): boolean {
  let dots = 0;
  for (let i = token.indexOf('.'); i !== -1; i = token.indexOf('.', i + 1)) dots++;
  return dots === 2;
}

export class Identifier {
  constructor(
    readonly jwt: JwtIdentifier = new JwtIdentifier(),
    readonly introspection: IntrospectionClient = new IntrospectionClient(),
  ) {}

  async identify(ctx: RequestContext, dir: TenantDirectory, signal?: AbortSignal): Promise<Principal | undefined> {
    const p = await this.resolve(ctx, dir, signal);
    if (!p) return p;
    // After the verified-token cache too: a cached token revoked since is denied on its next Check.
    const rev = p.tenant.revocation;
    if (rev !== undefined) {
      const kind = revokedKind(rev, p, ctx.now.getTime());
      if (kind !== undefined) throw new RevokedError(p, kind);
    }
    // Checked here, before quotas are charged: the subject is forwarded upstream in a header.
    forwardableSubject(p.subject);
    return p;
  }

  /** An opaque token: the namespace's one introspecting tenant says whether it is active and whose it is. */
  private async opaque(token: string, dir: TenantDirectory, now: Date, signal?: AbortSignal): Promise<Principal> {
    if (token.length > MAX_TOKEN_BYTES) throw new PortcullisError('INVALID_TOKEN', 'token too large');
    if (dir.opaque.length > 1) throw new PortcullisError('AMBIGUOUS_PRINCIPAL', 'several tenants introspect opaque tokens in this namespace');
    const tenant = dir.opaque[0]!;
    const claims = await this.introspection.introspect(token, tenant, now.getTime(), signal);
    if (claims === null) throw new PortcullisError('TOKEN_INACTIVE', 'the introspection endpoint says the token is not active');
    forThisTenant(tenant, claims);
    const subjectClaim = tenant.jwt?.subjectClaim ?? 'sub';
    const subject = claims[subjectClaim];
    if (typeof subject !== 'string' || subject === '') throw new PortcullisError('INVALID_TOKEN', `the introspection answer has no ${subjectClaim}`);
    return { type: tenant.principalType, tenant, subject, method: 'opaque', claims, spiffeId: '', mfa: hasMfa(tenant, claims) };
  }

  /** The additional check of a verified JWT; with onError: allow an endpoint failure lets the verified token through. */
  private async checkJwt(token: string, p: Principal, now: Date, signal?: AbortSignal): Promise<void> {
    let claims;
    try {
      claims = await this.introspection.introspect(token, p.tenant, now.getTime(), signal);
    } catch (err) {
      if (err instanceof PortcullisError && err.code === 'INTROSPECTION_UNAVAILABLE' && p.tenant.introspection!.onError === 'allow') return;
      throw err;
    }
    if (claims === null) throw new PortcullisError('TOKEN_INACTIVE', 'the introspection endpoint says the token is not active');
  }

  private async resolve(ctx: RequestContext, dir: TenantDirectory, signal?: AbortSignal): Promise<Principal | undefined> {
    const authorization = ctx.headers.authorization;
    if (authorization !== undefined) {
      const m = /^Bearer +([A-Za-z0-9._~+/-]+=*)$/i.exec(authorization.trim());
      if (!m) throw new PortcullisError('INVALID_TOKEN', 'authorization header must be a Bearer token');
      const token = m[1]!;
      if (dir.opaque.length > 0 && !looksLikeJwt(token)) return this.opaque(token, dir, ctx.now, signal);
      const p = await this.jwt.identify(token, dir, ctx.now, signal);
      if (p.tenant.introspection?.jwt) await this.checkJwt(token, p, ctx.now, signal);
      return p;
    }
    const key = presentedApiKey(ctx, dir);
    if (key) return identifyApiKey(key, dir);
    return identifyMtls(ctx, dir);
  }
}

/**
 * An introspection answer that names an audience or issuer must name this tenant's (its
 * `jwt.audiences` and `jwt.issuer`, when it has them): an authorization server serving several
 * APIs says a token is active, not that it was issued for this one (RFC 7662 §4).
 */
function forThisTenant(tenant: CompiledTenant, claims: Readonly<Record<string, unknown>>): void {
  const jwt = tenant.jwt;
  if (!jwt) return;
  if (claims.iss !== undefined && claims.iss !== jwt.issuer) throw new PortcullisError('INVALID_TOKEN', 'the introspected token was issued by another issuer');
  if (claims.aud !== undefined && jwt.audiences.length > 0 && !audiences(claims).some((a) => jwt.audiences.includes(a))) {
    throw new PortcullisError('INVALID_TOKEN', 'the introspected token is for another audience');
  }
}
