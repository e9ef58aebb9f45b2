/**
 * Signing keys and tokens for tests, generated at test time (never committed). Claims are
 * written with explicit epoch seconds relative to a given time, so tests need no real clock.
 */
import { randomUUID } from 'node:crypto';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

export type TestAlg = 'RS256' | 'ES256' | 'EdDSA';

export interface TestKey {
  alg: TestAlg;
  kid: string;
  privateKey: CryptoKey;
  /** The public JWK with kid, alg and use set, as a JWKS serves it. */
  publicJwk: JWK;
  /** The public key as SPKI PEM (for the HS256-with-public-key forgery). */
  publicPem: string;
}

export async function generateKey(alg: TestAlg, kid = `${alg.toLowerCase()}-${randomUUID().slice(0, 8)}`): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' };
  return { alg, kid, privateKey, publicJwk, publicPem: await exportSPKI(publicKey) };
}

export interface MintOptions {
  /** Reference time; iat defaults to it and exp to it plus one hour. */
  now?: Date;
  iss?: string;
  aud?: string | string[];
  sub?: string;
  /** Seconds relative to now; null leaves the claim out. */
  iatOffset?: number | null;
  expOffset?: number | null;
  nbfOffset?: number;
  /** Overrides the kid in the protected header. */
  kid?: string;
  claims?: JWTPayload;
}

export const ISSUER = 'https://id.test.example';
export const AUDIENCE = 'records-api';

function times(o: MintOptions): JWTPayload {
  const now = Math.floor((o.now ?? new Date()).getTime() / 1000);
  const out: JWTPayload = {};
  if (o.iatOffset !== null) out.iat = now + (o.iatOffset ?? 0);
  if (o.expOffset !== null) out.exp = now + (o.expOffset ?? 3600);
  if (o.nbfOffset !== undefined) out.nbf = now + o.nbfOffset;
  return out;
}

export async function mintToken(key: TestKey, o: MintOptions = {}): Promise<string> {
  const payload: JWTPayload = { iss: o.iss ?? ISSUER, aud: o.aud ?? AUDIENCE, sub: o.sub ?? 'citizen-1', ...times(o), ...(o.claims ?? {}) };
  return new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid: o.kid ?? key.kid, typ: 'JWT' }).sign(key.privateKey);
}

function b64url(v: unknown): string {
  return Buffer.from(JSON.stringify(v)).toString('base64url');
}

/** An unsecured JWT (alg: none) with an empty signature. */
export function unsecuredToken(payload: JWTPayload, kid?: string): string {
  return `${b64url({ alg: 'none', typ: 'JWT', ...(kid ? { kid } : {}) })}.${b64url(payload)}.`;
}

/** The classic key-confusion forgery: HS256 with the issuer's public key as the HMAC secret. */
export async function hmacWithPublicKey(key: TestKey, payload: JWTPayload): Promise<string> {
  return new SignJWT(payload).setProtectedHeader({ alg: 'HS256', kid: key.kid, typ: 'JWT' }).sign(new TextEncoder().encode(key.publicPem));
}
