/**
 * OIDC discovery (OpenID Connect Discovery 1.0 §4) for a Tenant's jwt.issuerUrl: the document at
 * issuerUrl/.well-known/openid-configuration must name exactly the configured issuer; its
 * jwks_uri (https) gives the keys and its introspection_endpoint, when present, the default
 * introspection endpoint. Bounded (64 KiB, 5 s), refreshed every 10 minutes in the background
 * while the last good document keeps serving; with no good document yet every token is refused
 * (fail closed), and a failure is retried at most every 5 s, so an unreachable IdP is not
 * hammered once per Check.
 */
import type { JWTVerifyGetKey } from 'jose';
import { checkedUrl, fetchJsonObject, FetchJsonError } from './fetch-json.js';

export const DISCOVERY_LIMITS = { bytes: 64 * 1024, timeoutMs: 5_000, refreshMs: 600_000, retryMs: 5_000 } as const;

export interface DiscoveredConfig {
  issuer: string;
  jwksUri: URL;
  introspectionEndpoint?: URL;
}

export class DiscoveryError extends Error {}

/** The discovery document's URL for an issuer URL (a trailing slash is removed first, as §4.1 says). */
export function wellKnownUrl(issuerUrl: string): URL {
  return new URL(`${issuerUrl.replace(/\/+$/, '')}/.well-known/openid-configuration`);
}

/** Validates a discovery document against the configured issuer; throws DiscoveryError. */
export function parseDiscovery(doc: Record<string, unknown>, issuer: string, allowInsecureLoopback: boolean): DiscoveredConfig {
  if (doc.issuer !== issuer) throw new DiscoveryError('the discovery document names another issuer than the tenant\'s jwt.issuer');
  if (typeof doc.jwks_uri !== 'string') throw new DiscoveryError('the discovery document has no jwks_uri');
  const out: DiscoveredConfig = { issuer, jwksUri: asUrl(doc.jwks_uri, 'jwks_uri', allowInsecureLoopback) };
  const ie = doc.introspection_endpoint;
  if (ie !== undefined) {
    if (typeof ie !== 'string') throw new DiscoveryError('introspection_endpoint is not a string');
    out.introspectionEndpoint = asUrl(ie, 'introspection_endpoint', allowInsecureLoopback);
  }
  return out;
}

function asUrl(v: string, what: string, allowInsecureLoopback: boolean): URL {
  try {
    return checkedUrl(v, what, allowInsecureLoopback);
  } catch (err) {
    throw new DiscoveryError((err as Error).message, { cause: err });
  }
}

export interface DiscoveryOptions {
  allowInsecureLoopback: boolean;
  /** Key set for a jwks_uri (shared with the tenants that name jwksUri directly). */
  keySet: (uri: string) => JWTVerifyGetKey;
  clock?: () => number;
}

/** One issuer's discovery state; survives recompiles (JwksCache keeps it). */
export class OidcDiscovery {
  private config: DiscoveredConfig | undefined;
  private fetchedAt = 0;
  private failedAt = -Infinity;
  private failure: Error | undefined;
  private inflight: Promise<DiscoveredConfig> | undefined;
  private readonly clock: () => number;
  /** Verifies with the discovered jwks_uri's keys; the discovery runs first when needed. */
  readonly keys: JWTVerifyGetKey;

  constructor(
    readonly issuerUrl: string,
    readonly issuer: string,
    private readonly options: DiscoveryOptions,
  ) {
    this.clock = options.clock ?? Date.now;
    this.keys = async (header, token) => {
      const config = await this.current();
      return this.options.keySet(config.jwksUri.href)(header, token);
    };
  }

  /** The discovered configuration: the cached one (refreshed in the background when stale), else fetched now. */
  async current(): Promise<DiscoveredConfig> {
    const now = this.clock();
    if (this.config) {
      if (now - this.fetchedAt >= DISCOVERY_LIMITS.refreshMs && now - this.failedAt >= DISCOVERY_LIMITS.retryMs) this.refresh().catch(() => undefined);
      return this.config;
    }
    if (this.failure && now - this.failedAt < DISCOVERY_LIMITS.retryMs) throw this.failure;
    return this.refresh();
  }

  private refresh(): Promise<DiscoveredConfig> {
    this.inflight ??= this.fetch().finally(() => {
      this.inflight = undefined;
    });
    return this.inflight;
  }

  private async fetch(): Promise<DiscoveredConfig> {
    try {
      const doc = await fetchJsonObject(wellKnownUrl(this.issuerUrl), { timeoutMs: DISCOVERY_LIMITS.timeoutMs, maxBytes: DISCOVERY_LIMITS.bytes });
      const config = parseDiscovery(doc, this.issuer, this.options.allowInsecureLoopback);
      this.config = config;
      this.fetchedAt = this.clock();
      this.failure = undefined;
      return config;
    } catch (err) {
      this.failedAt = this.clock();
      const why = err instanceof FetchJsonError || err instanceof DiscoveryError ? err.message : 'failed';
      this.failure = new DiscoveryError(`OIDC discovery at ${this.issuerUrl} failed: ${why}`, { cause: err });
      throw this.failure;
    }
  }
}
