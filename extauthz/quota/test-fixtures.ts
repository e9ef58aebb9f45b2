/**
 * Policies and requests shared by the quota tests, the integration test and the benchmark:
 * two consumer apps whose API-key ids are the same ("user1"), and an agency on mTLS, so the
 * isolation between tenants and principal types can be exercised.
 */
import { createHash } from 'node:crypto';
import type { CheckRequestInput } from '../pipeline/check-request.js';

export const QUOTA_HOST = 'quota.test.example';
export const AGENCY_SPIFFE = 'spiffe://gov.example/ns/revenue/sa/reporting';
export const KEYS = { a1: 'key-app-a-user1-for-tests', a2: 'key-app-a-user2-for-tests', b1: 'key-app-b-user1-for-tests' } as const;

const sha = (v: string): string => createHash('sha256').update(v).digest('hex');

export interface QuotaFixtureOptions {
  burstLimit?: number;
  agencyDaily?: number;
  onBackendError?: 'deny' | 'allow';
  /** The consumer burst quota's onBackendError (default: onBackendError). */
  burstOnBackendError?: 'deny' | 'allow';
  /** The consumer apps' appliesTo quota per day (default 1000). */
  appTotal?: number;
}

export function quotaPolicyYaml(o: QuotaFixtureOptions = {}): string {
  const burst = `{ name: burst, limit: ${o.burstLimit ?? 3}, per: 1m, algorithm: token-bucket, key: principal, onBackendError: ${o.burstOnBackendError ?? o.onBackendError ?? 'deny'} }`;
  const app = (name: string, secret: string): string => `apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: ${name}, namespace: q }
spec:
  type: consumer-app
  identity: { apiKeys: { secretRef: { name: ${secret} } } }
  quotas:
    - ${burst}
    - { name: app-total, limit: ${o.appTotal ?? 1000}, per: 24h, algorithm: fixed-window, key: tenant, appliesTo: [consumer] }
---
`;
  return `${app('app-a', 'keys-a')}${app('app-b', 'keys-b')}apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: revenue, namespace: q }
spec:
  type: agency
  identity: { mtls: { spiffeIds: ["spiffe://gov.example/ns/revenue/*"] } }
  quotas:
    - { name: daily, limit: ${o.agencyDaily ?? 5}, per: 24h, algorithm: fixed-window, key: tenant, onBackendError: ${o.onBackendError ?? 'deny'} }
---
apiVersion: v1
kind: Secret
metadata: { name: keys-a, namespace: q }
stringData: { user1: ${sha(KEYS.a1)}, user2: ${sha(KEYS.a2)} }
---
apiVersion: v1
kind: Secret
metadata: { name: keys-b, namespace: q }
stringData: { user1: ${sha(KEYS.b1)} }
---
apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: quota-api, namespace: q }
spec:
  hosts: [${QUOTA_HOST}]
  defaultAction: deny
  rules:
    - name: consumer-read
      methods: [GET]
      paths: ["/v1/items/**"]
      principals: { types: [consumer] }
      quotas: [{ name: burst }]
    - name: consumer-bulk
      methods: [POST]
      paths: ["/v1/bulk"]
      principals: { types: [consumer] }
      quotas: [{ name: burst, cost: "int(request.headers['x-count'])" }]
    - name: consumer-per-ip
      methods: [GET]
      paths: ["/v1/inline/**"]
      principals: { types: [consumer] }
      quotas: [{ name: per-ip, limit: 2, per: 1m, algorithm: fixed-window, key: "request.sourceIp" }]
    - name: agency-read
      methods: [GET]
      paths: ["/v1/items/**"]
      principals: { types: [agency] }
      quotas: [{ name: daily }]
    # The consumer apps define burst, the agency does not: a load-time warning (a rule naming a
    # quota no tenant defines is refused), and the agency's requests fail closed at run time.
    - name: agency-missing-quota
      methods: [GET]
      paths: ["/v1/missing"]
      principals: { types: [agency, consumer] }
      quotas: [{ name: burst }]
`;
}

export interface Caller {
  apiKey?: string;
  spiffe?: string;
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  sourceIp?: string;
}

export function quotaRequest(c: Caller): CheckRequestInput {
  const headers = { ...(c.headers ?? {}), ...(c.apiKey ? { 'x-api-key': c.apiKey } : {}) };
  const source = {
    ...(c.spiffe ? { principal: c.spiffe } : {}),
    address: { socketAddress: { address: c.sourceIp ?? '192.0.2.10', portValue: 40000 } },
  };
  return { attributes: { source, request: { http: { method: c.method ?? 'GET', host: QUOTA_HOST, path: c.path ?? '/v1/items/1', headers } } } } as CheckRequestInput;
}
