import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { KubernetesObject } from '@kubernetes/client-node';
import { contains, unchanged } from './kube-client.js';
import type { GeneratedObject } from './translate.js';

const desired = {
  apiVersion: 'security.istio.io/v1',
  kind: 'AuthorizationPolicy',
  metadata: { name: 'portcullis-p1', namespace: 'n', labels: { 'app.kubernetes.io/managed-by': 'portcullis' } },
  spec: { action: 'CUSTOM', provider: { name: 'portcullis' }, rules: [{ to: [{ operation: { hosts: ['a.example'] } }] }] },
};

// A skipped apply must never leave a weakened child: every case where live differs in a field we
// own must say "not contained" (then the operator applies).
const cases: [string, unknown, boolean][] = [
  ['the stored object with server fields (status, managedFields, resourceVersion)', { ...structuredClone(desired), metadata: { ...desired.metadata, resourceVersion: '7', managedFields: [{}] }, status: { x: 1 } }, true],
  ['action changed to ALLOW', { ...structuredClone(desired), spec: { ...desired.spec, action: 'ALLOW' } }, false],
  ['provider removed', { ...structuredClone(desired), spec: { action: 'CUSTOM', rules: desired.spec.rules } }, false],
  ['a label removed', { ...structuredClone(desired), metadata: { ...desired.metadata, labels: {} } }, false],
  ['a rule added by someone else', { ...structuredClone(desired), spec: { ...desired.spec, rules: [...desired.spec.rules, { from: [] }] } }, false],
  ['a field added inside a rule', { ...structuredClone(desired), spec: { ...desired.spec, rules: [{ ...desired.spec.rules[0], when: [{ key: 'k', values: ['v'] }] }] } }, false],
  ['a host changed deep inside', { ...structuredClone(desired), spec: { ...desired.spec, rules: [{ to: [{ operation: { hosts: ['b.example'] } }] }] } }, false],
  ['a list where an object is expected', { ...structuredClone(desired), spec: [] }, false],
  ['nothing stored', undefined, false],
];
for (const [name, live, want] of cases) {
  test(`contains: ${name} → ${want}`, () => {
    assert.equal(contains(live, desired), want);
  });
}

test('contains: a desired field left undefined is not required', () => {
  assert.equal(contains({ a: 1 }, { a: 1, b: undefined }), true);
});

test('unchanged: a spec field we stopped setting still on the live object → apply (it must be removed)', () => {
  const live = structuredClone(desired) as unknown as Parameters<typeof unchanged>[0];
  const wanted = structuredClone(desired) as unknown as GeneratedObject & { spec: Record<string, unknown> };
  assert.equal(unchanged(live, wanted), true);
  delete wanted.spec['provider'];
  assert.equal(contains(live, wanted), true, 'contained: the reason unchanged also compares the spec back');
  assert.equal(unchanged(live, wanted), false);
});

test('unchanged: a shared object still carrying an earlier per-policy ownerReference or policy label is applied again (the apply removes them)', () => {
  const live = (extra: Record<string, unknown>): KubernetesObject => ({ ...structuredClone(desired), metadata: { ...desired.metadata, ...extra } }) as KubernetesObject;
  const owner = { apiVersion: 'portcullis.io/v1alpha1', kind: 'ApiPolicy', name: 'service-api', uid: 'u', controller: true };
  assert.equal(unchanged(live({}), desired as unknown as GeneratedObject), true);
  assert.equal(unchanged(live({ ownerReferences: [owner] }), desired as unknown as GeneratedObject), false);
  assert.equal(unchanged(live({ labels: { ...desired.metadata.labels, 'portcullis.io/policy': 'service-api' } }), desired as unknown as GeneratedObject), false);
});
