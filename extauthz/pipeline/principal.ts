import type { PrincipalType } from '../policy/model.js';
import type { CompiledTenant } from '../policy/tenants.js';

/** Who is calling, bound to exactly one Tenant. */
export interface Principal {
  type: PrincipalType;
  tenant: CompiledTenant;
  /** The subject: JWT subject claim, SPIFFE ID or certificate subject, or API key id. */
  subject: string;
  /** opaque: an opaque bearer token identified by token introspection (RFC 7662). */
  method: 'jwt' | 'mtls' | 'api-key' | 'opaque';
  claims: Readonly<Record<string, unknown>>;
  spiffeId: string;
  /** The token proves multi-factor authentication (tenant requiredAcr / mfaAmr). */
  mfa: boolean;
}

/** The CEL view of a principal; anonymous requests see type "anonymous" and empty fields. */
export function principalCelValue(p: Principal | undefined): Record<string, unknown> {
  if (!p) return { type: 'anonymous', tenant: '', subject: '', claims: {}, spiffeId: '', method: 'none', mfa: false };
  return { type: p.type, tenant: p.tenant.name, subject: p.subject, claims: p.claims, spiffeId: p.spiffeId, method: p.method, mfa: p.mfa };
}
