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
import { JwtIdentifier } from './jwt.js';
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

export class Identifier {
  constructor(readonly jwt: JwtIdentifier = new JwtIdentifier()) {}

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

  private async resolve(ctx: RequestContext, dir: TenantDirectory, signal?: AbortSignal): Promise<Principal | undefined> {
    const authorization = ctx.headers.authorization;
    if (authorization !== undefined) {
      const m = /^Bearer +([A-Za-z0-9._~+/-]+=*)$/i.exec(authorization.trim());
      if (!m) throw new PortcullisError('INVALID_TOKEN', 'authorization header must be a Bearer token');
      return this.jwt.identify(m[1]!, dir, ctx.now, signal);
    }
    const key = presentedApiKey(ctx, dir);
    if (key) return identifyApiKey(key, dir);
    return identifyMtls(ctx, dir);
  }
}
