/**
 * The benchmark workload, generated at run time into a temporary folder (keys included, JWKS
 * inline, nothing committed): consumers with RS256 / ES256 JWTs and MFA rules, agencies over
 * mTLS (SPIFFE) with purpose rules, partners with API keys; N ApiPolicies (one host each) of
 * 3 CEL rules; every rule charges a quota set high enough never to reject.
 *
 * The same workload is written as OPA input (data.json + the Rego policy in opa-policy.ts) so
 * the OPA server decides the same requests with the same keys and rules.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { JWK } from 'jose';
import { generateKey, mintToken, type TestKey } from '../helpers/keys.js';
import type { CheckRequestInput } from '../../extauthz/pipeline/check-request.js';

export const NAMESPACE = 'bench';
export const AUDIENCE = 'bench-api';
export const ISSUERS = { rs: 'https://id-rs.bench.example', es: 'https://id-es.bench.example' } as const;
export const SPIFFE_PREFIX = 'spiffe://gov.example/ns/revenue/';
export const PURPOSES = ['tax-audit', 'statistics'];
const API_KEY = 'bench-partner-key-generated-per-run';

export interface Workload {
  dir: string;
  policies: number;
  /** Requests in the mix, in the proto3 JSON shape (ghz and the gRPC clients both take it). */
  requests: CheckRequestInput[];
  /** The same requests as an Istio sidecar sends them (sidecarShape): ~15 headers, peers, time. */
  sidecar: CheckRequestInput[];
  /** Which principal kind each request stands for (same order as requests). */
  kinds: string[];
  keys: { rs: TestKey; es: TestKey };
  remove(): void;
}

export function host(i: number): string {
  return `api-${i}.bench.example`;
}

function yamlJson(doc: unknown): string {
  // JSON is YAML; one document per '---'.
  return JSON.stringify(doc, null, 1);
}

function jwtTenant(name: string, issuer: string, jwk: JWK, alg: string): unknown {
  return {
    apiVersion: 'portcullis.io/v1alpha1', kind: 'Tenant', metadata: { name, namespace: NAMESPACE },
    spec: {
      type: 'consumer-app',
      identity: { jwt: { issuer, audiences: [AUDIENCE], jwks: { keys: [jwk] }, algorithms: [alg], mfaAmr: ['mfa', 'hwk'] } },
      quotas: [{ name: 'burst', limit: 1_000_000_000, per: '1s', algorithm: 'token-bucket', key: 'principal' }],
    },
  };
}

function tenants(keys: Workload['keys']): unknown[] {
  const digest = createHash('sha256').update(API_KEY).digest('hex');
  return [
    jwtTenant('citizen-rs', ISSUERS.rs, keys.rs.publicJwk, 'RS256'),
    jwtTenant('citizen-es', ISSUERS.es, keys.es.publicJwk, 'ES256'),
    {
      apiVersion: 'portcullis.io/v1alpha1', kind: 'Tenant', metadata: { name: 'dept-revenue', namespace: NAMESPACE },
      spec: {
        type: 'agency', identity: { mtls: { spiffeIds: [`${SPIFFE_PREFIX}*`] } },
        attributes: { jurisdiction: 'EU', clearance: 'secret' }, purposes: PURPOSES,
        quotas: [{ name: 'daily', limit: 1_000_000_000_000, per: '24h', algorithm: 'fixed-window', key: 'tenant' }],
      },
    },
    {
      apiVersion: 'portcullis.io/v1alpha1', kind: 'Tenant', metadata: { name: 'partner-acme', namespace: NAMESPACE },
      spec: {
        type: 'partner', identity: { apiKeys: { secretRef: { name: 'partner-keys' } } },
        quotas: [{ name: 'partner-daily', limit: 1_000_000_000_000, per: '24h', algorithm: 'sliding-window', key: 'tenant' }],
      },
    },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'partner-keys', namespace: NAMESPACE }, type: 'Opaque', stringData: { 'k-2026': digest } },
  ];
}

/** The three CEL rules of every policy (the Rego in opa-policy.ts mirrors them). */
export const RULES = [
  {
    name: 'citizen-own-record', methods: ['GET'], paths: ['/v1/citizens/{id}/records'], principals: { types: ['consumer'] },
    requireMfa: true, when: "principal.subject == params.id && principal.claims.acr == 'urn:loa:high'", quotas: [{ name: 'burst' }],
  },
  {
    name: 'agency-stats', methods: ['GET'], paths: ['/v1/stats/**'], principals: { types: ['agency'] },
    when: "request.headers['x-purpose-of-use'] in tenant.purposes && tenant.attributes.jurisdiction == 'EU'", quotas: [{ name: 'daily' }],
  },
  {
    name: 'partner-datasets', methods: ['GET', 'HEAD'], paths: ['/v1/datasets/{ds}'], principals: { types: ['partner'] },
    when: "params.ds.startsWith('open-') && size(params.ds) < 64", quotas: [{ name: 'partner-daily' }],
  },
];

export function policy(i: number): unknown {
  return {
    apiVersion: 'portcullis.io/v1alpha1', kind: 'ApiPolicy', metadata: { name: `api-${i}`, namespace: NAMESPACE },
    spec: { targetRefs: [{ kind: 'Service', name: `api-${i}` }], hosts: [host(i)], defaultAction: 'deny', rules: RULES },
  };
}

function req(h: string, path: string, headers: Record<string, string>, principal?: string): CheckRequestInput {
  return {
    attributes: {
      ...(principal ? { source: { principal } } : {}),
      request: { http: { method: 'GET', host: h, path, headers } },
    },
  };
}

/** Writes policies 0..n-1 as YAML files (JSON documents) into dir. */
export function writePolicies(dir: string, n: number, keys: Workload['keys']): void {
  writeFileSync(join(dir, '00-namespace.yaml'), tenants(keys).map(yamlJson).join('\n---\n'));
  const chunk = 500;
  for (let start = 0; start < n; start += chunk) {
    const docs: string[] = [];
    for (let i = start; i < Math.min(n, start + chunk); i++) docs.push(yamlJson(policy(i)));
    writeFileSync(join(dir, `10-policies-${String(start).padStart(5, '0')}.yaml`), docs.join('\n---\n'));
  }
}

async function consumerRequests(keys: Workload['keys'], policies: number, users: number): Promise<[CheckRequestInput, string][]> {
  const out: [CheckRequestInput, string][] = [];
  const exp = 24 * 3600;
  for (let u = 0; u < users; u++) {
    const which = u % 2 === 0 ? 'rs' : 'es';
    const sub = String(10_000_000_000 + u);
    const token = await mintToken(keys[which], { iss: ISSUERS[which], aud: AUDIENCE, sub, expOffset: exp, claims: { acr: 'urn:loa:high', amr: ['pwd', 'mfa'] } });
    out.push([req(host(u % policies), `/v1/citizens/${sub}/records`, { authorization: `Bearer ${token}` }), which === 'rs' ? 'consumer RS256' : 'consumer ES256']);
  }
  return out;
}

/** The request mix: 40 % consumers (half RS256, half ES256), 30 % agencies, 30 % partners. */
export async function requestMix(keys: Workload['keys'], policies: number, size = 100): Promise<{ requests: CheckRequestInput[]; kinds: string[] }> {
  const consumers = await consumerRequests(keys, policies, Math.round(size * 0.4));
  const pairs: [CheckRequestInput, string][] = [];
  const third = Math.round(size * 0.3);
  for (let i = 0; i < third; i++) {
    pairs.push([req(host((i * 7) % policies), `/v1/stats/income/${2000 + (i % 25)}`, { 'x-purpose-of-use': PURPOSES[i % 2]! }, `${SPIFFE_PREFIX}sa/reporting-${i % 5}`), 'agency mTLS']);
    pairs.push([req(host((i * 11) % policies), `/v1/datasets/open-${i % 9}`, { 'x-api-key': API_KEY }), 'partner API key']);
  }
  // Interleave so every window of the round robin sees the whole mix.
  const all: [CheckRequestInput, string][] = [];
  for (let i = 0; i < Math.max(consumers.length, pairs.length); i++) {
    if (consumers[i]) all.push(consumers[i]!);
    if (pairs[i]) all.push(pairs[i]!);
  }
  return { requests: all.map(([r]) => r), kinds: all.map(([, k]) => k) };
}

const hex = (n: number, seed: number): string => createHash('sha256').update(`${seed}:${n}`).digest('hex').slice(0, n);

/**
 * A request as an Istio sidecar's ext_authz filter sends it: pseudo-headers, x-request-id,
 * W3C traceparent and B3 headers, XFCC from the ingress gateway, user agent, forwarding headers;
 * source and destination peers with addresses, request time, protocol, scheme and size. The
 * request's own headers (credentials, purpose of use) and source principal are kept.
 */
export function sidecarShape(r: CheckRequestInput, i: number): CheckRequestInput {
  const http = r.attributes!.request!.http!;
  const traceId = hex(32, i);
  const headers: Record<string, string> = {
    ':authority': http.host!, ':method': http.method!, ':path': http.path!, ':scheme': 'https',
    'x-request-id': `${hex(8, i)}-${hex(4, i + 1)}-4${hex(3, i + 2)}-a${hex(3, i + 3)}-${hex(12, i + 4)}`,
    traceparent: `00-${traceId}-${hex(16, i + 5)}-01`,
    'x-b3-traceid': traceId, 'x-b3-spanid': hex(16, i + 6), 'x-b3-parentspanid': hex(16, i + 7), 'x-b3-sampled': '1',
    'x-forwarded-client-cert': `By=spiffe://cluster.local/ns/bench/sa/api-${i % 50};Hash=${hex(64, i + 8)};Subject="";URI=spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account`,
    'user-agent': 'Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36 c2g-app/4.2.1',
    accept: 'application/json', 'accept-encoding': 'gzip, deflate, br',
    'x-forwarded-proto': 'https', 'x-forwarded-for': `203.0.113.${i % 250}`, 'x-envoy-attempt-count': '1',
    ...http.headers,
  };
  const source = r.attributes!.source;
  return {
    attributes: {
      source: { address: { socketAddress: { address: `10.244.${i % 8}.${(i * 7) % 250}`, portValue: 40000 + i } }, ...(source?.principal ? { principal: source.principal } : {}) },
      destination: { address: { socketAddress: { address: '10.244.9.17', portValue: 8080 } }, principal: 'spiffe://cluster.local/ns/bench/sa/api' },
      request: {
        time: '2026-12-01T09:00:00.123456Z',
        http: { id: String(1_000_000 + i), method: http.method!, headers, path: http.path!, host: http.host!, scheme: 'https', protocol: 'HTTP/1.1', size: '0' },
      },
    },
  };
}

export async function generateKeys(): Promise<Workload['keys']> {
  return { rs: await generateKey('RS256', 'bench-rs'), es: await generateKey('ES256', 'bench-es') };
}

export async function createWorkload(policies: number, mixSize = 100): Promise<Workload> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-'));
  const keys = await generateKeys();
  writePolicies(dir, policies, keys);
  const { requests, kinds } = await requestMix(keys, policies, mixSize);
  const sidecar = requests.map(sidecarShape);
  return { dir, policies, requests, sidecar, kinds, keys, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export const API_KEY_DIGEST = (): string => createHash('sha256').update(API_KEY).digest('hex');
