/**
 * Partners with API keys. Keys are stored only as SHA-256 digests; the presented key's digest is
 * compared with every stored digest in constant time (no early exit), so timing reveals nothing.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { PortcullisError } from '../../errors.js';
import type { CompiledTenant, TenantDirectory } from '../../policy/tenants.js';
import type { RequestContext } from '../context.js';
import type { Principal } from '../principal.js';

const MAX_KEY_BYTES = 512;

/** The API-key header present on the request, if any tenant of the namespace uses it. */
export function presentedApiKey(ctx: RequestContext, dir: TenantDirectory): { header: string; value: string } | undefined {
  for (const header of dir.apiKeyHeaders.keys()) {
    const value = ctx.headers[header];
    if (value !== undefined) return { header, value };
  }
  return undefined;
}

export function identifyApiKey(key: { header: string; value: string }, dir: TenantDirectory): Principal {
  if (key.value.length === 0 || key.value.length > MAX_KEY_BYTES) throw new PortcullisError('INVALID_API_KEY', 'API key is empty or too long');
  const digest = createHash('sha256').update(key.value).digest();
  let match: { tenant: CompiledTenant; id: string } | undefined;
  let count = 0;
  for (const tenant of dir.apiKeyHeaders.get(key.header) ?? []) {
    for (const d of tenant.apiKeys!.digests) {
      if (timingSafeEqual(d.digest, digest)) {
        match = { tenant, id: d.id };
        count++;
      }
    }
  }
  if (!match) throw new PortcullisError('INVALID_API_KEY', 'unknown API key');
  if (count > 1) throw new PortcullisError('AMBIGUOUS_PRINCIPAL', 'API key is registered more than once');
  const { tenant, id } = match;
  return { type: tenant.principalType, tenant, subject: id, method: 'api-key', claims: {}, spiffeId: '', mfa: false };
}
