import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KubernetesObject } from '@kubernetes/client-node';
import { PolicyValidation } from './validation.js';

function policy(name: string, generation: number, hosts: string[], created: string): KubernetesObject {
  return {
    apiVersion: 'portcullis.io/v1alpha1', kind: 'ApiPolicy',
    metadata: { name, namespace: 'c2g', generation, uid: name, creationTimestamp: new Date(created) },
    spec: { hosts, targetRefs: [{ kind: 'Service', name: 's' }], rules: [{ name: 'r', paths: ['/v1/x'], principals: { types: ['agency'] } }] },
  } as KubernetesObject;
}

function fixture(tenants: KubernetesObject[] = []): { items: KubernetesObject[]; v: PolicyValidation; changed: string[]; compiles: () => number } {
  const items: KubernetesObject[] = [];
  const changed: string[] = [];
  let lists = 0;
  const v = new PolicyValidation({ policies: { list: () => (lists++, items) }, tenants: { list: () => tenants } }, (k) => changed.push(k));
  return { items, v, changed, compiles: () => lists };
}

describe('policy validation (the engine over every cached object)', () => {
  test('a host claimed twice: the newer policy is not accepted, the older is; both are re-enqueued when it changes', () => {
    const { items, v, changed } = fixture();
    const old = policy('old', 1, ['a.example'], '2026-01-01T00:00:00Z');
    items.push(old);
    v.observe('ApiPolicy', old, 'add');
    assert.deepEqual(v.policyProblems('c2g/old'), []);
    const dup = policy('dup', 1, ['a.example'], '2026-01-02T00:00:00Z');
    items.push(dup);
    v.observe('ApiPolicy', dup, 'add');
    assert.match(v.policyProblems('c2g/dup').join('\n'), /already claimed by the older policy c2g\/old/);
    assert.deepEqual(v.policyProblems('c2g/old'), []);
    assert.ok(changed.includes('c2g/dup'));
    // The duplicate moves to another host: its problem clears, and it is re-enqueued for status.
    changed.length = 0;
    const moved = policy('dup', 2, ['b.example'], '2026-01-02T00:00:00Z');
    items[1] = moved;
    v.observe('ApiPolicy', moved, 'update');
    assert.deepEqual(v.policyProblems('c2g/dup'), []);
    assert.deepEqual(changed, ['c2g/dup']);
  });

  test('status-only updates (same generation) reuse the compile; a spec change or a delete recompiles', () => {
    const { items, v, compiles } = fixture();
    const p = policy('p', 1, ['a.example'], '2026-01-01T00:00:00Z');
    items.push(p);
    v.observe('ApiPolicy', p, 'add');
    v.policyProblems('c2g/p');
    const after = compiles();
    v.observe('ApiPolicy', { ...p, status: { conditions: [] } } as KubernetesObject, 'update');
    v.policyProblems('c2g/p');
    v.policyProblems('c2g/p');
    assert.equal(compiles(), after, 'no recompile for a status write');
    v.observe('ApiPolicy', policy('p', 2, ['a.example'], '2026-01-01T00:00:00Z'), 'update');
    v.policyProblems('c2g/p');
    assert.equal(compiles(), after + 1);
    items.length = 0;
    v.observe('ApiPolicy', p, 'delete');
    assert.deepEqual(v.policyProblems('c2g/p'), []);
    assert.equal(compiles(), after + 2);
  });

  test('an unknown tenant is reported on the policy, and tenants are validated without their Secrets', () => {
    const { items, v } = fixture();
    const p = policy('p', 1, ['a.example'], '2026-01-01T00:00:00Z');
    (p as { spec: { rules: { principals: unknown }[] } }).spec.rules[0]!.principals = { tenants: ['ghost'] };
    items.push(p);
    v.observe('ApiPolicy', p, 'add');
    assert.match(v.policyProblems('c2g/p').join('\n'), /unknown tenant "ghost"/);
    // A partner whose API-key Secret the operator cannot (and need not) read is still a tenant.
    const partner = { apiVersion: 'portcullis.io/v1alpha1', kind: 'Tenant', metadata: { name: 'ghost', namespace: 'c2g', generation: 1 }, spec: { type: 'partner', identity: { apiKeys: { secretRef: { name: 'unreadable' } } } } } as KubernetesObject;
    const withTenant = fixture([partner]);
    withTenant.items.push(p);
    assert.deepEqual(withTenant.v.tenantProblems('c2g/ghost'), []);
    assert.deepEqual(withTenant.v.policyProblems('c2g/p'), []);
  });
});
