import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { randomBytes } from 'node:crypto';
import type { KubernetesObject } from '@kubernetes/client-node';
import { SecretStandIns } from './secret-stand-ins.js';
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

const errors = async (v: PolicyValidation, key: string): Promise<string> => (await v.policy(key)).errors.join('\n');

describe('policy validation (the engine over every cached object)', () => {
  test('a host claimed twice: the newer policy is refused, the older is not; the policy is re-enqueued when it clears', async () => {
    const { items, v, changed } = fixture();
    const old = policy('old', 1, ['a.example'], '2026-01-01T00:00:00Z');
    items.push(old);
    v.observe('ApiPolicy', old, 'add');
    assert.equal(await errors(v, 'c2g/old'), '');
    const dup = policy('dup', 1, ['a.example'], '2026-01-02T00:00:00Z');
    items.push(dup);
    v.observe('ApiPolicy', dup, 'add');
    assert.match(await errors(v, 'c2g/dup'), /c2g\/old/);
    assert.equal(await errors(v, 'c2g/old'), '');
    assert.ok(changed.includes('c2g/dup'));
    changed.length = 0;
    const moved = policy('dup', 2, ['b.example'], '2026-01-02T00:00:00Z');
    items[1] = moved;
    v.observe('ApiPolicy', moved, 'update');
    assert.equal(await errors(v, 'c2g/dup'), '');
    assert.deepEqual(changed, ['c2g/dup']);
  });

  test('status-only updates (same generation) reuse the compile; a spec change or a delete recompiles', async () => {
    const { items, v, compiles } = fixture();
    const p = policy('p', 1, ['a.example'], '2026-01-01T00:00:00Z');
    items.push(p);
    v.observe('ApiPolicy', p, 'add');
    await v.policy('c2g/p');
    const after = compiles();
    v.observe('ApiPolicy', { ...p, status: { conditions: [] } } as KubernetesObject, 'update');
    await Promise.all([v.policy('c2g/p'), v.policy('c2g/p')]);
    assert.equal(compiles(), after, 'no recompile for a status write');
    v.observe('ApiPolicy', policy('p', 2, ['a.example'], '2026-01-01T00:00:00Z'), 'update');
    await Promise.all([v.policy('c2g/p'), v.policy('c2g/p')]);
    assert.equal(compiles(), after + 1, 'concurrent callers share one recompile');
    items.length = 0;
    v.observe('ApiPolicy', p, 'delete');
    assert.equal(await errors(v, 'c2g/p'), '');
    assert.equal(compiles(), after + 2);
  });

  test('an unknown tenant is reported on the policy; tenants are validated without their Secrets', async () => {
    const { items, v } = fixture();
    const p = policy('p', 1, ['a.example'], '2026-01-01T00:00:00Z');
    (p as { spec: { rules: { principals: unknown }[] } }).spec.rules[0]!.principals = { tenants: ['ghost'] };
    items.push(p);
    v.observe('ApiPolicy', p, 'add');
    assert.match(await errors(v, 'c2g/p'), /unknown tenant "ghost"/);
    // A partner whose API-key Secret the operator cannot (and need not) read is still a tenant.
    const partner = { apiVersion: 'portcullis.io/v1alpha1', kind: 'Tenant', metadata: { name: 'ghost', namespace: 'c2g', generation: 1, uid: 't' }, spec: { type: 'partner', identity: { apiKeys: { secretRef: { name: 'unreadable' } } } } } as KubernetesObject;
    const withTenant = fixture([partner]);
    withTenant.items.push(p);
    assert.deepEqual((await withTenant.v.tenant('c2g/ghost')).errors, []);
    assert.equal(await errors(withTenant.v, 'c2g/p'), '');
  });

  test('a broken edit of a policy that compiled before: refused, and the last good generation is named', async () => {
    const { items, v } = fixture();
    const good = policy('p', 1, ['a.example'], '2026-01-01T00:00:00Z');
    items.push(good);
    v.observe('ApiPolicy', good, 'add');
    assert.equal(await errors(v, 'c2g/p'), '');
    const broken = policy('p', 2, ['a.example'], '2026-01-01T00:00:00Z');
    (broken as { spec: { rules: { when?: string }[] } }).spec.rules[0]!.when = 'principal.subject == ';
    items[0] = broken;
    v.observe('ApiPolicy', broken, 'update');
    const verdict = await v.policy('c2g/p');
    assert.match(verdict.errors.join('\n'), /POLICY_CEL/);
    assert.equal(verdict.servingGeneration, 1);
  });

  test('a tenant whose revocation ConfigMap is missing or malformed is refused (not Ready); a good one clears it', async () => {
    const tenant = {
      apiVersion: 'portcullis.io/v1alpha1', kind: 'Tenant',
      metadata: { name: 'acme', namespace: 'c2g', generation: 1, uid: 'acme' },
      spec: { type: 'partner', identity: { mtls: { spiffeIds: ['spiffe://acme.example/*'] } }, revocation: { configMapRef: { name: 'revoked', key: 'list.json' } } },
    } as KubernetesObject;
    const maps: KubernetesObject[] = [];
    const v = new PolicyValidation({ policies: { list: () => [] }, tenants: { list: () => [tenant] }, configMaps: { list: () => maps } });
    v.observe('Tenant', tenant, 'add');
    assert.match((await v.tenant('c2g/acme')).errors.join('\n'), /spec\/revocation.*ConfigMap c2g\/revoked not found/);
    maps.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'revoked', namespace: 'c2g', resourceVersion: '1' }, data: { 'list.json': '{"sub": [' } } as KubernetesObject);
    v.observeConfigMap();
    assert.match((await v.tenant('c2g/acme')).errors.join('\n'), /not valid JSON/);
    maps[0] = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'revoked', namespace: 'c2g', resourceVersion: '2' }, data: { 'list.json': '{"sub": ["spiffe://acme.example/x"]}' } } as KubernetesObject;
    v.observeConfigMap();
    assert.deepEqual((await v.tenant('c2g/acme')).errors, []);
  });
});

describe('tenants naming Secrets (verifySecrets: the stand-ins of the label-selected Secrets)', () => {
  const standIns = new SecretStandIns(randomBytes(32));
  const DIGEST = '60b8c0fed3b557ab29cc53d110c099c35794335974612a9bb7b75f25cbc18c9f';
  const tenant = {
    apiVersion: 'portcullis.io/v1alpha1', kind: 'Tenant',
    metadata: { name: 'acme', namespace: 'c2g', generation: 1, uid: 'acme' },
    spec: { type: 'partner', identity: { apiKeys: { secretRef: { name: 'acme-keys' } } }, revocation: { secretRef: { name: 'acme-revoked', key: 'list.json' } } },
  } as KubernetesObject;
  const secret = (name: string, rv: string, label: string, values: Record<string, string>): KubernetesObject =>
    standIns.reduce({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'c2g', uid: name, resourceVersion: rv, labels: { [label]: 'true' } }, data: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Buffer.from(v).toString('base64')])) });
  const keys = secret('acme-keys', '1', 'portcullis.io/api-keys', { 'demo-2026': DIGEST });
  const revoked = (rv: string, values: Record<string, string>): KubernetesObject => secret('acme-revoked', rv, 'portcullis.io/revocation', values);

  // Each step is the Secrets the API server's label selectors return, and what status must say.
  const steps: { name: string; secrets: KubernetesObject[]; problem?: string; message?: RegExp }[] = [
    { name: 'the revocation Secret is missing', secrets: [keys], problem: 'SecretNotFound', message: /\/spec\/revocation: POLICY_INVALID: revocation\.secretRef: Secret c2g\/acme-revoked not found \(in a cluster it needs the label portcullis\.io\/revocation=true\)/ },
    { name: 'it lacks the key', secrets: [keys, revoked('2', { 'other.json': '{}' })], problem: 'SecretKeyNotFound', message: /Secret c2g\/acme-revoked has no key list\.json/ },
    { name: 'the list is malformed', secrets: [keys, revoked('3', { 'list.json': '{"sub": ["citizen-1984"' })], problem: 'SecretInvalid', message: /revocation list in Secret c2g\/acme-revoked key list\.json: not valid JSON/ },
    { name: 'an entry is malformed', secrets: [keys, revoked('4', { 'list.json': '{"sub": ["citizen-1984", ""]}' })], problem: 'SecretInvalid', message: /Secret c2g\/acme-revoked key list\.json: sub\[1\]: an id must not be empty/ },
    { name: 'fixed', secrets: [keys, revoked('5', { 'list.json': '{"sub": ["citizen-1984"]}' })] },
    { name: 'the API-key Secret loses its label (the selector no longer returns it)', secrets: [revoked('5', { 'list.json': '{"sub": ["citizen-1984"]}' })], problem: 'SecretNotFound', message: /apiKeys\.secretRef: Secret c2g\/acme-keys not found \(in a cluster it needs the label portcullis\.io\/api-keys=true\)/ },
    { name: 'an API-key value is a raw key, not a digest', secrets: [secret('acme-keys', '6', 'portcullis.io/api-keys', { 'demo-2026': 'demo-partner-key-not-a-secret' }), revoked('5', { 'list.json': '{}' })], problem: 'SecretInvalid', message: /Secret c2g\/acme-keys key demo-2026: value must be a hex SHA-256 digest/ },
    { name: 'fixed again', secrets: [keys, revoked('5', { 'list.json': '{}' })] },
  ];

  test('each step refuses or accepts the tenant with the Secret problem as reason, naming the Secret and key, never a value', async () => {
    let current: KubernetesObject[] = [];
    const v = new PolicyValidation({ policies: { list: () => [] }, tenants: { list: () => [tenant] }, secrets: { list: () => current } });
    v.observe('Tenant', tenant, 'add');
    assert.equal(v.verifiesSecrets, true);
    for (const step of steps) {
      current = step.secrets;
      v.observeSecret();
      const verdict = await v.tenant('c2g/acme');
      const text = verdict.errors.join('\n');
      assert.equal(verdict.secretProblem, step.problem, `${step.name}: ${text}`);
      if (step.message) assert.match(text, step.message, step.name);
      else assert.deepEqual(verdict.errors, [], step.name);
      for (const value of ['citizen-1984', 'demo-partner-key-not-a-secret', DIGEST]) assert.ok(!text.includes(value), `${step.name}: no value in status`);
    }
  });

  test('without verifySecrets the same tenant compiles (its Secrets are not read), and says so', async () => {
    const v = new PolicyValidation({ policies: { list: () => [] }, tenants: { list: () => [tenant] } });
    v.observe('Tenant', tenant, 'add');
    assert.equal(v.verifiesSecrets, false);
    assert.deepEqual((await v.tenant('c2g/acme')).errors, []);
  });
});
