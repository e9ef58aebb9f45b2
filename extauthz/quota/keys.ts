/**
 * Storage keys of quota counters. Three properties matter:
 * - isolation: the tenant (namespace/name) and the principal type are part of every key, so
 *   counters of different tenants or principal types can never collide;
 * - no personal data in clear: subjects, CEL key values and tenant identities are hashed
 *   (HMAC-SHA-256 with the deployment's hash key when one is configured, 128 bits kept);
 * - Redis Cluster: every key of one request carries the same hash tag {tenant.type}, so the one
 *   atomic script that charges them all runs on one slot.
 */
import { createHmac } from 'node:crypto';

export interface KeyParts {
  /** Namespace of the tenant (or of the policy, for anonymous requests). */
  namespace: string;
  /** Tenant name; empty for anonymous requests. */
  tenant: string;
  principalType: string;
  /** t for a tenant quota; r.<hash> for a rule's inline quota. */
  scope: string;
  quota: string;
  /** all, s.<hash(subject)> or x.<hash(CEL value)>. */
  partition: string;
}

/** Domain separation when no hash key is configured (still no clear text in keys). */
const DEFAULT_HASH_KEY = 'portcullis/quota/v1';

export class KeyHasher {
  /** Value → hash (deterministic): one HMAC per distinct tenant, rule and subject, not per request. */
  private readonly cache = new Map<string, string>();

  constructor(
    private readonly hashKey: string = DEFAULT_HASH_KEY,
    private readonly cacheSize = 10_000,
  ) {}

  hash(value: string): string {
    const hit = this.cache.get(value);
    if (hit !== undefined) return hit;
    const h = createHmac('sha256', this.hashKey).update(value).digest('base64url').slice(0, 22);
    if (this.cache.size >= this.cacheSize) this.cache.clear();
    this.cache.set(value, h);
    return h;
  }

  /** The hash tag: one per (tenant, principal type). */
  tag(namespace: string, tenant: string, principalType: string): string {
    return `${this.hash(`tenant\u0000${namespace}\u0000${tenant}`)}.${principalType}`;
  }

  key(p: KeyParts): string {
    return `pq:{${this.tag(p.namespace, p.tenant, p.principalType)}}:${p.scope}:${p.quota}:${p.partition}`;
  }

  ruleScope(policyKey: string, rule: string): string {
    return `r.${this.hash(`rule\u0000${policyKey}\u0000${rule}`).slice(0, 12)}`;
  }

  subjectPartition(subject: string): string {
    return `s.${this.hash(`subject\u0000${subject}`)}`;
  }

  valuePartition(value: string): string {
    return `x.${this.hash(`value\u0000${value}`)}`;
  }
}
