#!/usr/bin/env node
// A development identity provider for the examples: it signs citizen tokens and serves the public
// JWKS on loopback. Its keys are generated on first use into examples/.keys/ (git-ignored); no key
// is ever committed.
//
//   node examples/dev-idp.mjs serve [--port 8089]          serve /.well-known/jwks.json, OIDC discovery
//                                                          (/.well-known/openid-configuration) and RFC 7662
//                                                          introspection (/introspect) of two demo opaque
//                                                          tokens, for examples/introspection
//   node examples/dev-idp.mjs jwks                         print the public JWKS
//   node examples/dev-idp.mjs cluster-tenant               print examples/policies' citizen-app Tenant with
//                                                          this JWKS inline (for a cluster: examples/cluster)
//   node examples/dev-idp.mjs token --sub ID [--amr mfa,pwd] [--acr A] [--aud records-api] [--ttl 3600] [--alg ES256|RS256]
//   node examples/dev-idp.mjs request FILE [same flags]    print FILE with {{TOKEN}} replaced
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { exportJWK, generateKeyPair, importJWK, SignJWT } from 'jose';
import { parseAllDocuments, stringify } from 'yaml';

export const ISSUER = 'https://id.c2g.example';
const KEY_DIR = process.env.PORTCULLIS_DEV_IDP_KEYS ?? join(dirname(fileURLToPath(import.meta.url)), '.keys');
const KEY_FILE = join(KEY_DIR, 'dev-idp-keys.json');

async function keys() {
  if (existsSync(KEY_FILE)) return JSON.parse(readFileSync(KEY_FILE, 'utf8'));
  const out = {};
  for (const alg of ['ES256', 'RS256']) {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const kid = `dev-${alg.toLowerCase()}`;
    out[alg] = { private: { ...(await exportJWK(privateKey)), kid, alg }, public: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
  }
  mkdirSync(KEY_DIR, { recursive: true, mode: 0o700 });
  writeFileSync(KEY_FILE, JSON.stringify(out), { mode: 0o600 });
  return out;
}

export async function jwks() {
  const k = await keys();
  return { keys: Object.values(k).map((x) => x.public) };
}

export async function token({ sub, amr = 'pwd', acr, aud = 'records-api', ttl = '3600', alg = 'ES256' }) {
  if (!sub) throw new Error('--sub is required');
  const k = (await keys())[alg];
  if (!k) throw new Error(`--alg must be ES256 or RS256`);
  const claims = { amr: amr.split(',').filter(Boolean), ...(acr ? { acr } : {}) };
  return new SignJWT(claims)
    .setProtectedHeader({ alg, kid: k.private.kid, typ: 'JWT' })
    .setIssuer(ISSUER)
    .setAudience(aud)
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(`${Number(ttl)}s`)
    .sign(await importJWK(k.private, alg));
}

/**
 * The citizen-app Tenant of examples/policies for a cluster: the same object, its jwksUri (a
 * loopback address only `make run` can reach) replaced by the public JWKS inline, which every
 * ext_authz pod has without a network call.
 */
export async function clusterTenant() {
  const file = join(dirname(fileURLToPath(import.meta.url)), 'policies', '10-tenants.yaml');
  const docs = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS());
  const tenant = docs.find((d) => d?.kind === 'Tenant' && d.metadata?.name === 'citizen-app');
  if (!tenant) throw new Error(`no citizen-app Tenant in ${file}`);
  const jwt = { ...tenant.spec.identity.jwt, jwks: await jwks() };
  delete jwt.jwksUri;
  tenant.spec.identity.jwt = jwt;
  return stringify(tenant);
}

const FLAGS = { sub: { type: 'string' }, amr: { type: 'string' }, acr: { type: 'string' }, aud: { type: 'string' }, ttl: { type: 'string' }, alg: { type: 'string' }, port: { type: 'string' } };

// examples/introspection: the client the Tenant authenticates as, and the two opaque tokens this
// provider knows (active for an hour as partner-42, or revoked at the provider). Demo values only.
const INTROSPECTION_CLIENT = `Basic ${Buffer.from('portcullis:demo-introspection-secret-not-a-secret').toString('base64')}`;
const ACTIVE_TOKEN = 'demo-opaque-token-active';

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

function introspect(req, res, issuer) {
  if (req.headers.authorization !== INTROSPECTION_CLIENT) return json(res, 401, { error: 'invalid_client' });
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    if (new URLSearchParams(body).get('token') !== ACTIVE_TOKEN) return json(res, 200, { active: false });
    const now = Math.floor(Date.now() / 1000);
    json(res, 200, { active: true, sub: 'partner-42', client_id: 'catalogue-reader', aud: 'catalogue', iss: issuer, iat: now, exp: now + 3600 });
  });
}

async function handler(issuer) {
  const keys = await jwks();
  return (req, res) => {
    if (req.method === 'GET' && req.url === '/.well-known/jwks.json') return json(res, 200, keys);
    if (req.method === 'GET' && req.url === '/.well-known/openid-configuration') {
      return json(res, 200, { issuer, jwks_uri: `${issuer}/.well-known/jwks.json`, introspection_endpoint: `${issuer}/introspect` });
    }
    if (req.method === 'POST' && req.url === '/introspect') return introspect(req, res, issuer);
    res.writeHead(404).end();
  };
}

async function main() {
  const { values, positionals } = parseArgs({ options: FLAGS, allowPositionals: true });
  const [cmd, file] = positionals;
  if (cmd === 'token') return console.log(await token(values));
  if (cmd === 'jwks') return console.log(JSON.stringify(await jwks()));
  if (cmd === 'cluster-tenant') return process.stdout.write(await clusterTenant());
  if (cmd === 'request') {
    if (!file) throw new Error('request needs a FILE');
    return console.log(readFileSync(file, 'utf8').replace('{{TOKEN}}', await token(values)).trimEnd());
  }
  if (cmd === 'serve') {
    const port = Number(values.port ?? 8089);
    createServer(await handler(`http://127.0.0.1:${port}`)).listen(port, '127.0.0.1', () => console.error(`dev-idp: JWKS on http://127.0.0.1:${port}/.well-known/jwks.json`));
    return;
  }
  console.error('usage: dev-idp.mjs serve [--port N] | jwks | cluster-tenant | token --sub ID [...] | request FILE --sub ID [...]');
  process.exitCode = 2;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) await main();
