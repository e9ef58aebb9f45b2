/**
 * A standard policy set for tests, in namespace "t": a consumer app (JWT), two agencies (mTLS:
 * SPIFFE, and subjects through a trusted XFCC), a partner (API keys) and three ApiPolicies.
 */
import { createHash } from 'node:crypto';
import type { JWK } from 'jose';
import { AUDIENCE, ISSUER } from './keys.js';

export const NS = 't';
export const PARTNER_KEY = 'partner-key-for-tests-only';
export const HOSTS = { records: 'records.test.example', stats: 'stats.test.example', open: 'open.test.example' } as const;
export const REVENUE_SPIFFE = 'spiffe://gov.example/ns/revenue/sa/reporting';
export const HEALTH_SPIFFE = 'spiffe://gov.example/ns/health/sa/etl';

export function sha256Hex(v: string): string {
  return createHash('sha256').update(v).digest('hex');
}

/** The jwt identity block: an inline key set, or a JWKS URI. */
function jwtKeys(keys: JWK[] | string): string {
  return typeof keys === 'string' ? `jwksUri: ${keys}` : `jwks: ${JSON.stringify({ keys })}`;
}

export function tenantsYaml(keys: JWK[] | string): string {
  return `apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: citizen-app, namespace: ${NS} }
spec:
  type: consumer-app
  identity:
    jwt:
      issuer: ${ISSUER}
      audiences: [${AUDIENCE}]
      ${jwtKeys(keys)}
      algorithms: [RS256, ES256, EdDSA]
      requiredAcr: ["urn:loa:high"]
      clockSkewSeconds: 30
---
apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: dept-revenue, namespace: ${NS} }
spec:
  type: agency
  identity:
    mtls: { spiffeIds: ["spiffe://gov.example/ns/revenue/*"] }
  attributes: { jurisdiction: EU }
  purposes: [tax-audit, statistics]
---
apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: dept-health, namespace: ${NS} }
spec:
  type: agency
  identity:
    mtls:
      spiffeIds: ["spiffe://gov.example/ns/health/*"]
      subjects: ["CN=*,O=Health"]
      trustXfcc: true
  purposes: [statistics]
---
apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: partner-acme, namespace: ${NS} }
spec:
  type: partner
  identity:
    apiKeys: { secretRef: { name: partner-acme-keys } }
---
apiVersion: v1
kind: Secret
metadata: { name: partner-acme-keys, namespace: ${NS} }
stringData:
  key-1: ${sha256Hex(PARTNER_KEY)}
`;
}

export const POLICIES_YAML = `apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: records, namespace: ${NS}, creationTimestamp: "2026-01-01T00:00:00Z" }
spec:
  hosts: [${HOSTS.records}]
  rules:
    - name: no-admin
      effect: deny
      paths: ["/admin/**"]
    - name: citizen-own-record
      methods: [GET]
      paths: ["/v1/citizens/{id}/records"]
      principals: { types: [consumer] }
      requireMfa: true
      when: "principal.subject == params.id"
    - name: agency-tax-audit
      methods: [GET]
      paths: ["/v1/citizens/{id}/records"]
      principals: { types: [agency] }
      when: "request.headers['x-purpose-of-use'] == 'tax-audit' && 'tax-audit' in tenant.purposes"
---
apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: stats, namespace: ${NS}, creationTimestamp: "2026-01-01T00:00:00Z" }
spec:
  hosts: [${HOSTS.stats}]
  rules:
    - name: agency-aggregates
      methods: [GET]
      paths: ["/v1/stats/**"]
      principals: { types: [agency] }
      when: "request.headers['x-purpose-of-use'] in tenant.purposes"
---
apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: open, namespace: ${NS}, creationTimestamp: "2026-01-01T00:00:00Z" }
spec:
  hosts: [${HOSTS.open}, "*.${HOSTS.open}"]
  rules:
    - name: public-health
      methods: [GET, HEAD]
      paths: ["/healthz"]
      principals: { anonymous: true }
    - name: partner-read-only
      methods: [GET, HEAD]
      paths: ["/v1/datasets/**"]
      principals: { types: [partner] }
`;

export function standardFiles(keys: JWK[] | string): Record<string, string> {
  return { '10-tenants.yaml': tenantsYaml(keys), '20-policies.yaml': POLICIES_YAML };
}
