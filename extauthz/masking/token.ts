/**
 * The signed directive set that travels from ext_authz to ext_proc (and to upstream services)
 * in the x-portcullis-mask header and the dynamic metadata. It is a compact JWS (HS256, RFC 7515)
 * over {v, rid, iat, exp, masks, allowFields}: bound to one request id and a short lifetime, so
 * a copy cannot be forged, widened (fewer masks), replayed on another request, or kept for later.
 * Signing is synchronous (node:crypto) because the shape phase is; any JWS library, jose
 * included, can verify the same token with the same key.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { normalizeDirective, type MaskSpec } from './engine.js';

export const MASK_HEADER = 'x-portcullis-mask';
export const TOKEN_TYPE = 'portcullis-mask+jws';
export const MIN_KEY_BYTES = 32;

export interface DirectiveClaims extends MaskSpec {
  v: 1;
  /** The request id the directive was issued for. */
  rid: string;
  /** Issued at / expires, seconds since the epoch. */
  iat: number;
  exp: number;
}

export type DirectiveFailure = 'malformed' | 'signature' | 'expired' | 'not-yet-valid' | 'request-mismatch';

export class DirectiveError extends Error {
  constructor(
    readonly reason: DirectiveFailure,
    message: string,
  ) {
    super(message);
    this.name = 'DirectiveError';
  }
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString('base64url');
}

/** A signing key: at least 32 bytes, with a short id so keys can be told apart in logs. */
export class MaskKey {
  readonly id: string;
  private constructor(readonly secret: Buffer) {
    this.id = createHash('sha256').update(secret).digest('hex').slice(0, 12);
  }
  static from(secret: Buffer): MaskKey {
    if (secret.length < MIN_KEY_BYTES) throw new RangeError(`a mask signing key needs at least ${MIN_KEY_BYTES} bytes, got ${secret.length}`);
    return new MaskKey(Buffer.from(secret));
  }
  static generate(): MaskKey {
    return new MaskKey(randomBytes(32));
  }
  sign(data: string): Buffer {
    return createHmac('sha256', this.secret).update(data).digest();
  }
}

function headerSegment(key: MaskKey): string {
  return b64url(JSON.stringify({ alg: 'HS256', typ: TOKEN_TYPE, kid: key.id }));
}

/** The fixed tail of a payload for one directive set, serialised once at policy load. */
export function payloadTail(spec: MaskSpec): string {
  const body = JSON.stringify({ masks: spec.masks.map(normalizeDirective), ...(spec.allowFields ? { allowFields: spec.allowFields } : {}) });
  return body.slice(1);
}

export interface IssueOptions {
  /** Lifetime in seconds (default 60): long enough for the upstream to answer, short enough to be useless later. */
  ttlSeconds?: number;
}

/** Signs directive sets for ext_authz's shape phase. */
export class DirectiveIssuer {
  private readonly header: string;
  private readonly ttl: number;
  constructor(
    private readonly key: MaskKey,
    options: IssueOptions = {},
  ) {
    this.header = headerSegment(key);
    this.ttl = options.ttlSeconds ?? 60;
  }

  /** `tail` is payloadTail(spec), prepared when the policy compiled. */
  issue(tail: string, requestId: string, now: Date): string {
    const iat = Math.floor(now.getTime() / 1000);
    const payload = b64url(`{"v":1,"rid":${JSON.stringify(requestId)},"iat":${iat},"exp":${iat + this.ttl},${tail}`);
    const signingInput = `${this.header}.${payload}`;
    return `${signingInput}.${b64url(this.key.sign(signingInput))}`;
  }
}

export interface VerifyOptions {
  /** Allowed clock difference between issuer and verifier, seconds (default 5). */
  skewSeconds?: number;
  /** Longest lifetime accepted, seconds (default 300): a token minted with a longer one is refused. */
  maxTtlSeconds?: number;
}

function parseClaims(segment: string): DirectiveClaims {
  let c: unknown;
  try {
    c = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
  } catch {
    throw new DirectiveError('malformed', 'directive payload is not JSON');
  }
  const o = c as Partial<DirectiveClaims> | null;
  const ok = !!o && o.v === 1 && typeof o.rid === 'string' && Number.isInteger(o.iat) && Number.isInteger(o.exp) && Array.isArray(o.masks) && (o.allowFields === undefined || Array.isArray(o.allowFields));
  if (!ok) throw new DirectiveError('malformed', 'directive payload lacks v, rid, iat, exp or masks');
  return o as DirectiveClaims;
}

/** Verifies directive tokens in ext_proc (or an upstream service using the library). */
export class DirectiveVerifier {
  private readonly header: string;
  constructor(
    private readonly key: MaskKey,
    private readonly options: VerifyOptions = {},
  ) {
    this.header = headerSegment(key);
  }

  /** Checks signature, lifetime and request binding; throws DirectiveError, or returns the claims. */
  verify(token: string, requestId: string | undefined, now: Date): DirectiveClaims {
    const parts = token.split('.');
    if (parts.length !== 3) throw new DirectiveError('malformed', 'directive is not a compact JWS');
    const [header, payload, signature] = parts as [string, string, string];
    // The header is pinned byte for byte: no algorithm choice is left to the token.
    const expected = this.key.sign(`${this.header}.${payload}`);
    const given = Buffer.from(signature, 'base64url');
    if (header !== this.header || given.length !== expected.length || !timingSafeEqual(given, expected)) throw new DirectiveError('signature', 'directive signature does not verify');
    const claims = parseClaims(payload);
    this.checkTime(claims, now);
    if (requestId === undefined || claims.rid !== requestId) throw new DirectiveError('request-mismatch', 'directive was issued for another request');
    return claims;
  }

  private checkTime(c: DirectiveClaims, now: Date): void {
    const t = now.getTime() / 1000;
    const skew = this.options.skewSeconds ?? 5;
    if (c.exp - c.iat > (this.options.maxTtlSeconds ?? 300)) throw new DirectiveError('expired', 'directive lifetime exceeds the accepted maximum');
    if (t > c.exp + skew) throw new DirectiveError('expired', 'directive has expired');
    if (t < c.iat - skew) throw new DirectiveError('not-yet-valid', 'directive is issued in the future');
  }
}
