/**
 * Partners with API keys. Keys are stored only as SHA-256 digests; the presented key's digest is
 * looked up in a Map built once per set of tenants. A hash-table lookup is not constant time, but
 * what its timing could leak is about the SHA-256 of the presented key, never the stored keys:
 * finding a stored key from it would need a preimage of SHA-256, so a scan of every digest with
 * timingSafeEqual (cost growing with the number of keys, on every request) buys nothing.
 */
import { hash } from 'node:crypto';
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

interface KeyEntry {
  tenant: CompiledTenant;
  id: string;
}

/** Hex digest → every tenant key with that digest, per tenants list (a new list per change, so never stale). */
const INDEX = new WeakMap<readonly CompiledTenant[], Map<string, KeyEntry[]>>();

function digestIndex(tenants: readonly CompiledTenant[]): Map<string, KeyEntry[]> {
  let index = INDEX.get(tenants);
  if (index) return index;
  index = new Map();
  for (const tenant of tenants) {
    for (const d of tenant.apiKeys!.digests) {
      const hex = d.digest.toString('hex');
      const list = index.get(hex);
      if (list) list.push({ tenant, id: d.id });
      else index.set(hex, [{ tenant, id: d.id }]);
    }
  }
  INDEX.set(tenants, index);
  return index;
}

const NO_TENANTS: readonly CompiledTenant[] = [];

export function identifyApiKey(key: { header: string; value: string }, dir: TenantDirectory): Principal {
  if (key.value.length === 0 || key.value.length > MAX_KEY_BYTES) throw new PortcullisError('INVALID_API_KEY', 'API key is empty or too long');
  const digest = hash('sha256', key.value, 'hex');
  const matches = digestIndex(dir.apiKeyHeaders.get(key.header) ?? NO_TENANTS).get(digest);
  if (!matches) throw new PortcullisError('INVALID_API_KEY', 'unknown API key');
  if (matches.length > 1) throw new PortcullisError('AMBIGUOUS_PRINCIPAL', 'API key is registered more than once');
  const { tenant, id } = matches[0]!;
  return { type: tenant.principalType, tenant, subject: id, method: 'api-key', claims: {}, spiffeId: '', mfa: false };
}
