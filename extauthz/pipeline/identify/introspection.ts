/**
 * OAuth 2.0 token introspection (RFC 7662) per tenant: opaque bearer tokens are identified by it,
 * and verified JWTs can be introspected as an additional check. The request is a form POST with
 * client_secret_basic, bounded by the tenant's timeout (each Check waits no longer than its deadline); the answer is
 * at most 64 KiB and must say `active` as a boolean. Results are cached by token digest no longer
 * than min(cacheSeconds, the token's exp), in a bounded LRU; concurrent Checks of one token share
 * one request. A failure is never cached.
 */
import { createHash } from 'node:crypto';
import { PortcullisError } from '../../errors.js';
import { fetchJsonObject, FetchJsonError } from '../../policy/fetch-json.js';
import { raceDeadline } from '../deadline.js';
import type { CompiledIntrospection, CompiledTenant } from '../../policy/tenants.js';

export const INTROSPECTION_LIMITS = { responseBytes: 64 * 1024, cacheEntries: 10_000 } as const;

/** The active token's claims, or null when the authorization server says it is not active. */
export type Introspected = Readonly<Record<string, unknown>> | null;

interface Entry {
  tenant: CompiledTenant;
  claims: Introspected;
  until: number;
}

function unavailable(why: string, cause?: unknown): PortcullisError {
  return new PortcullisError('INTROSPECTION_UNAVAILABLE', `token introspection failed: ${why}`, cause === undefined ? undefined : { cause });
}

/** An RFC 7662 answer as the claims of an active token, or null (inactive, expired, not yet valid). */
function interpretAnswer(doc: Record<string, unknown>, nowMs: number): Introspected {
  if (typeof doc.active !== 'boolean') throw unavailable('the answer has no boolean active member');
  if (!doc.active) return null;
  if (typeof doc.exp === 'number' && doc.exp * 1000 <= nowMs) return null;
  if (typeof doc.nbf === 'number' && doc.nbf * 1000 > nowMs) return null;
  return doc;
}

export class IntrospectionClient {
  private readonly cache = new Map<string, Entry>();
  private readonly inflight = new Map<string, Promise<Record<string, unknown>>>();

  constructor(private readonly maxEntries: number = INTROSPECTION_LIMITS.cacheEntries) {}

  /** The token's claims when active, null when not; throws INTROSPECTION_UNAVAILABLE when the endpoint fails. */
  async introspect(token: string, tenant: CompiledTenant, nowMs: number, signal?: AbortSignal): Promise<Introspected> {
    const key = `${tenant.key}\u0000${createHash('sha256').update(token).digest('base64url')}`;
    const hit = this.lookup(key, tenant, nowMs);
    if (hit !== undefined) return hit;
    // The shared request is bounded by the tenant's timeout only; each Check waits on it with its
    // own deadline, so the first caller's deadline never fails the others sharing the request.
    const doc = await raceDeadline(this.request(key, token, tenant.introspection!), signal, 'waiting for token introspection');
    const claims = interpretAnswer(doc, nowMs);
    this.store(key, { tenant, claims, until: this.until(tenant.introspection!, claims, nowMs) });
    return claims;
  }

  private lookup(key: string, tenant: CompiledTenant, nowMs: number): Introspected | undefined {
    const e = this.cache.get(key);
    if (!e) return undefined;
    this.cache.delete(key);
    // A recompiled tenant (new secret, endpoint, or cache setting) asks again.
    if (e.until <= nowMs || e.tenant !== tenant) return undefined;
    this.cache.set(key, e); // most recently used last
    return e.claims;
  }

  /** No longer than cacheSeconds, nor past the token's exp. */
  private until(intro: CompiledIntrospection, claims: Introspected, nowMs: number): number {
    const exp = claims && typeof claims.exp === 'number' ? claims.exp * 1000 : Infinity;
    return Math.min(nowMs + intro.cacheMs, exp);
  }

  private store(key: string, e: Entry): void {
    if (e.tenant.introspection!.cacheMs === 0) return;
    if (this.cache.size >= this.maxEntries) {
      const oldest = this.cache.keys().next().value;
      if (oldest !== undefined) this.cache.delete(oldest);
    }
    this.cache.set(key, e);
  }

  private request(key: string, token: string, intro: CompiledIntrospection): Promise<Record<string, unknown>> {
    let p = this.inflight.get(key);
    if (!p) {
      p = this.post(token, intro).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  private async post(token: string, intro: CompiledIntrospection): Promise<Record<string, unknown>> {
    let endpoint = intro.endpoint;
    try {
      endpoint ??= (await intro.discovery!.current()).introspectionEndpoint;
    } catch (err) {
      throw unavailable('OIDC discovery failed', err);
    }
    if (!endpoint) throw unavailable('the discovery document names no introspection_endpoint');
    try {
      return await fetchJsonObject(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: intro.authorization },
        body: `token=${encodeURIComponent(token)}&token_type_hint=access_token`,
        timeoutMs: intro.timeoutMs,
        maxBytes: INTROSPECTION_LIMITS.responseBytes,
      });
    } catch (err) {
      throw unavailable(err instanceof FetchJsonError ? err.message : 'request failed', err);
    }
  }
}
