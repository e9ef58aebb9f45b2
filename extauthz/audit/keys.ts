/**
 * The checkpoint signing key: Ed25519 (JWS EdDSA) or P-256 (ES256), read from a PEM or JWK file
 * (a mounted Kubernetes Secret is a file), or generated for this process when none is configured.
 * Signing uses node:crypto synchronously (tens of microseconds, only once per checkpoint); the
 * output is plain compact JWS that jose, or any JOSE library, verifies.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, type JsonWebKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { PortcullisError } from '../errors.js';
import { canonicalJson } from './canonical.js';

export type SigningAlg = 'EdDSA' | 'ES256';

export interface PublicJwk extends JsonWebKey {
  kid: string;
  alg: SigningAlg;
  use: 'sig';
}

export const CHECKPOINT_TYP = 'portcullis-audit-checkpoint+jws';

function algOf(key: KeyObject): SigningAlg {
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  throw new PortcullisError('USAGE', `audit signing key must be Ed25519 or P-256, got ${key.asymmetricKeyType ?? 'unknown'}`);
}

/** RFC 7638 JWK thumbprint (SHA-256, base64url) of the required public members. */
export function jwkThumbprint(jwk: JsonWebKey): string {
  const members = jwk.kty === 'OKP' ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x } : { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
  return createHash('sha256').update(canonicalJson(members)).digest('base64url');
}

export class SigningKey {
  readonly alg: SigningAlg;
  readonly kid: string;
  readonly publicJwk: PublicJwk;

  constructor(private readonly key: KeyObject) {
    this.alg = algOf(key);
    const jwk = createPublicKey(key).export({ format: 'jwk' });
    this.kid = jwkThumbprint(jwk);
    this.publicJwk = { ...jwk, kid: this.kid, alg: this.alg, use: 'sig' };
  }

  static generate(alg: SigningAlg = 'EdDSA'): SigningKey {
    const pair = alg === 'EdDSA' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    return new SigningKey(pair.privateKey);
  }

  /** A PEM (PKCS#8 or SEC1) or JWK file holding the private key. */
  static fromFile(file: string): SigningKey {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new PortcullisError('USAGE', `cannot read audit key file ${file}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const key = text.trimStart().startsWith('{') ? createPrivateKey({ key: JSON.parse(text) as JsonWebKey, format: 'jwk' }) : createPrivateKey(text);
      return new SigningKey(key);
    } catch (err) {
      if (err instanceof PortcullisError) throw err;
      throw new PortcullisError('USAGE', `audit key file ${file} is not a PEM or JWK private key: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Compact JWS over the canonical JSON of the payload. */
  signCompact(payload: object): string {
    const header = Buffer.from(JSON.stringify({ alg: this.alg, kid: this.kid, typ: CHECKPOINT_TYP })).toString('base64url');
    const input = `${header}.${Buffer.from(canonicalJson(payload)).toString('base64url')}`;
    const sig = this.alg === 'EdDSA' ? sign(null, Buffer.from(input), this.key) : sign('sha256', Buffer.from(input), { key: this.key, dsaEncoding: 'ieee-p1363' });
    return `${input}.${sig.toString('base64url')}`;
  }

  jwks(): { keys: PublicJwk[] } {
    return { keys: [this.publicJwk] };
  }
}

/** The HMAC key for subject pseudonyms: the file's bytes (a trailing newline is ignored). */
export function readSubjectKey(file: string): Buffer {
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch (err) {
    throw new PortcullisError('USAGE', `cannot read audit subject key file ${file}: ${(err as Error).message}`, { cause: err });
  }
  const key = raw.at(-1) === 0x0a ? raw.subarray(0, raw.length - 1) : raw;
  if (key.length < 16) throw new PortcullisError('USAGE', `audit subject key file ${file} must hold at least 16 bytes`);
  return key;
}
