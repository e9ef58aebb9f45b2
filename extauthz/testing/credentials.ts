/**
 * Test credentials, minted in memory for `portcullis test`: suites describe principals (a JWT's
 * tenant and claims, an API key's tenant and id, a SPIFFE ID) and never hold a secret. Before
 * the folder compiles, every JWT tenant's key source (jwksUri or jwks) is replaced by the public
 * half of a throwaway key generated here, and every API-key tenant's Secret by the digests of
 * throwaway keys, one per key id the suites name. Nothing leaves the process; no network is used.
 * This rewriting happens only in the test command, on its own copy of the objects.
 */
import { createHash, randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { objectKey, type PolicySources, type SecretObject, type TenantObject } from '../policy/model.js';
import type { PrincipalSpec, Suite } from './suite.js';

/** Algorithms jose can generate a key pair for, in the order one is chosen from a tenant's allow-list. */
const GENERATABLE = ['ES256', 'RS256', 'EdDSA', 'ES384', 'PS256', 'RS384', 'PS384', 'ES512', 'RS512', 'PS512'] as const;
const DEFAULT_ALGORITHMS = ['RS256', 'ES256'];
export const DEFAULT_KEY_ID = 'test-key';
const TOKEN_LIFETIME_S = 300;

interface JwtKey {
  alg: string;
  kid: string;
  privateKey: CryptoKey;
  issuer: string;
  audience: string;
}

export class CredentialError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CredentialError';
  }
}

/** The minted keys of one run, and the sources rewritten to accept them. */
export class TestCredentials {
  private constructor(
    readonly sources: PolicySources,
    private readonly tenants: ReadonlyMap<string, TenantObject[]>,
    private readonly jwtKeys: ReadonlyMap<string, JwtKey>,
    private readonly apiKeys: ReadonlyMap<string, { header: string; keys: Map<string, string> }>,
  ) {}

  /** Generates the keys the suites need and rewrites copies of the sources to trust them. */
  static async forSources(sources: PolicySources, suites: readonly Suite[]): Promise<TestCredentials> {
    const byName = new Map<string, TenantObject[]>();
    for (const t of sources.tenants) {
      for (const n of [t.metadata.name, objectKey(t)]) byName.set(n, [...(byName.get(n) ?? []), t]);
    }
    const jwtKeys = new Map<string, JwtKey>();
    const tenants: TenantObject[] = [];
    for (const t of sources.tenants) {
      const jwt = t.spec.identity.jwt;
      if (!jwt) {
        tenants.push(t);
        continue;
      }
      const key = await mintKey(t, jwt.algorithms ?? DEFAULT_ALGORITHMS);
      jwtKeys.set(objectKey(t), { ...key.key, issuer: jwt.issuer, audience: jwt.audiences[0]! });
      const replaced = { ...jwt, jwks: { keys: [key.publicJwk] } as never };
      delete replaced.jwksUri;
      // No discovery either (jwks wins over it anyway), unless introspection needs the document for its endpoint.
      if (!t.spec.identity.introspection) delete replaced.issuerUrl;
      tenants.push({ ...t, spec: { ...t.spec, identity: { ...t.spec.identity, jwt: replaced } } });
    }
    const { secrets, apiKeys } = apiKeySecrets(sources, suites, byName);
    return new TestCredentials({ ...sources, tenants, secrets }, byName, jwtKeys, apiKeys);
  }

  /** The one tenant a suite names ("name" or "namespace/name"). */
  tenant(ref: string): TenantObject {
    const found = this.tenants.get(ref) ?? [];
    if (found.length === 0) throw new CredentialError(`no Tenant ${ref} in the policy folder`);
    if (found.length > 1) throw new CredentialError(`Tenant ${ref} exists in several namespaces: name it namespace/name`);
    return found[0]!;
  }

  /** Request headers and peer for a described principal, at time `now`. */
  async present(p: PrincipalSpec | undefined, now: Date): Promise<{ headers: Record<string, string>; spiffe?: string }> {
    if (!p) return { headers: {} };
    if (p.spiffe) return { headers: {}, spiffe: p.spiffe };
    if (p.apiKey) {
      const t = this.tenant(p.apiKey.tenant);
      const entry = this.apiKeys.get(objectKey(t));
      const value = entry?.keys.get(p.apiKey.id ?? DEFAULT_KEY_ID);
      if (!entry || value === undefined) throw new CredentialError(`Tenant ${p.apiKey.tenant} has no API keys`);
      return { headers: { [entry.header]: value } };
    }
    const jwt = p.jwt!;
    const t = this.tenant(jwt.tenant);
    const key = this.jwtKeys.get(objectKey(t));
    if (!key) throw new CredentialError(`Tenant ${jwt.tenant} has no JWT identity`);
    const s = Math.floor(now.getTime() / 1000);
    const claims = { iss: key.issuer, aud: key.audience, iat: s, exp: s + (jwt.expiresIn ?? TOKEN_LIFETIME_S), ...(jwt.claims ?? {}) };
    const token = await new SignJWT(claims).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'JWT' }).sign(key.privateKey);
    return { headers: { authorization: `Bearer ${token}` } };
  }
}

async function mintKey(t: TenantObject, algorithms: readonly string[]): Promise<{ key: Omit<JwtKey, 'issuer' | 'audience'>; publicJwk: JWK }> {
  const alg = GENERATABLE.find((a) => algorithms.includes(a));
  if (!alg) throw new CredentialError(`Tenant ${objectKey(t)}: none of its algorithms (${algorithms.join(', ')}) can be minted for tests`);
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = `portcullis-test-${randomBytes(6).toString('hex')}`;
  return { key: { alg, kid, privateKey }, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

/** Every key id the suites name per tenant key ("namespace/name"). */
function namedKeyIds(suites: readonly Suite[], byName: ReadonlyMap<string, TenantObject[]>): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const s of suites) {
    for (const c of s.cases) {
      const k = c.request.principal?.apiKey;
      const t = k ? byName.get(k.tenant) : undefined;
      if (!k || t?.length !== 1) continue;
      const key = objectKey(t[0]!);
      out.set(key, (out.get(key) ?? new Set()).add(k.id ?? DEFAULT_KEY_ID));
    }
  }
  return out;
}

/** The folder's Secrets with each API-key tenant's Secret replaced by digests of fresh keys. */
function apiKeySecrets(sources: PolicySources, suites: readonly Suite[], byName: ReadonlyMap<string, TenantObject[]>): { secrets: SecretObject[]; apiKeys: Map<string, { header: string; keys: Map<string, string> }> } {
  const ids = namedKeyIds(suites, byName);
  const replaced = new Map<string, SecretObject>();
  const apiKeys = new Map<string, { header: string; keys: Map<string, string> }>();
  for (const t of sources.tenants) {
    const ref = t.spec.identity.apiKeys;
    if (!ref) continue;
    const secretKey = `${t.metadata.namespace}/${ref.secretRef.name}`;
    const secret = replaced.get(secretKey) ?? { kind: 'Secret', metadata: { name: ref.secretRef.name, namespace: t.metadata.namespace }, values: {}, origin: { file: '(portcullis test)' } };
    const keys = new Map<string, string>();
    for (const id of ids.get(objectKey(t)) ?? [DEFAULT_KEY_ID]) {
      const value = `pt_${randomBytes(24).toString('base64url')}`;
      keys.set(id, value);
      secret.values[id] = createHash('sha256').update(value).digest('hex');
    }
    replaced.set(secretKey, secret);
    apiKeys.set(objectKey(t), { header: ref.header ?? 'x-api-key', keys });
  }
  const secrets = sources.secrets.filter((s) => !replaced.has(objectKey(s)));
  return { secrets: [...secrets, ...replaced.values()], apiKeys };
}
