import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Raw } from '../../kube/objects.js';
import { affectsCompile } from './policy-source.js';

const policy = (meta: Record<string, unknown>, spec: unknown = { hosts: ['a.example'], rules: [] }, status?: unknown): Raw =>
  ({ apiVersion: 'portcullis.io/v1alpha1', kind: 'ApiPolicy', metadata: { name: 'p', namespace: 'ns', uid: 'u1', generation: 1, resourceVersion: '10', ...meta }, spec, ...(status ? { status } : {}) }) as Raw;
const secret = (meta: Record<string, unknown>, data: Record<string, string>): Raw => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's', namespace: 'ns', uid: 's1', resourceVersion: '5', ...meta }, data });

describe('kubernetes source: which informer events schedule a compile', () => {
  const base = policy({});
  const cases: [name: string, event: 'add' | 'update' | 'delete', obj: Raw, old: Raw | undefined, expected: boolean][] = [
    ['status write (generation kept)', 'update', policy({ resourceVersion: '11' }, base.spec, { observedGeneration: 1, conditions: [{ type: 'Ready', status: 'True' }] }), base, false],
    ['label added', 'update', policy({ resourceVersion: '12', labels: { team: 'x' } }), base, false],
    ['annotation changed', 'update', policy({ resourceVersion: '13', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}' } }), base, false],
    ['managed fields only', 'update', policy({ resourceVersion: '14', managedFields: [{ manager: 'kubectl' }] }), base, false],
    ['spec change (generation bumped)', 'update', policy({ resourceVersion: '15', generation: 2 }, { hosts: ['b.example'], rules: [] }), base, true],
    ['same name, new object (uid changed)', 'update', policy({ uid: 'u2', resourceVersion: '16' }), base, true],
    ['update with nothing to compare against', 'update', base, undefined, true],
    ['add', 'add', base, undefined, true],
    ['delete', 'delete', base, base, true],
    ['Secret data changed (no generation: resourceVersion decides)', 'update', secret({ resourceVersion: '6' }, { k: 'bmV3' }), secret({}, { k: 'b2xk' }), true],
    ['Secret resent unchanged', 'update', secret({}, { k: 'b2xk' }), secret({}, { k: 'b2xk' }), false],
  ];
  for (const [name, event, obj, old, expected] of cases) test(name, () => assert.equal(affectsCompile(event, obj, old), expected));
});
