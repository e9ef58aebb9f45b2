import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { KubernetesObject } from '@kubernetes/client-node';
import pino from 'pino';
import { TenantDirectory } from '../extauthz/policy/tenants.js';
import { GOLDEN_CONFIG } from '../test/helpers/golden.js';
import type { OperatorClient } from './kube-client.js';
import { NamespaceLocks } from './namespace-lock.js';
import type { ReconcilerDeps } from './reconcile.js';
import { SharedObjectsReconciler } from './shared-objects.js';
import { PolicyReconciler } from './reconcile.js';
import type { GeneratedObject } from './translate.js';
import type { PolicyValidation, Verdicts } from './validation.js';

// The pass's decisions (what is desired, what is deleted, when deletions are held) over plain
// in-memory caches; test/e2e/operator.test.ts runs the same pass against a real API server.

const lister = (items: KubernetesObject[]): { list: (ns?: string) => KubernetesObject[]; get: (name: string, ns?: string) => KubernetesObject | undefined } => ({
  list: (ns) => items.filter((i) => ns === undefined || i.metadata?.namespace === ns),
  get: (name, ns) => items.find((i) => i.metadata?.name === name && i.metadata?.namespace === ns),
});

function policy(name: string, rules: unknown[], service = 'api'): KubernetesObject {
  return { apiVersion: 'portcullis.io/v1alpha1', kind: 'ApiPolicy', metadata: { name, namespace: 'n', uid: `uid-${name}`, generation: 1 }, spec: { hosts: [`${name}.example`], targetRefs: [{ kind: 'Service', name: service }], rules } } as KubernetesObject;
}

/** A client that records what the pass writes; `live` is what the namespace holds. */
function recorder(live: string[]): { client: OperatorClient; applied: string[]; deleted: string[] } {
  const applied: string[] = [];
  const deleted: string[] = [];
  const client = {
    apply: async (o: GeneratedObject) => {
      applied.push(`${o.kind}/${o.metadata.name}`);
      return o;
    },
    mergePatch: async () => undefined,
    pruneShared: async (_ns: string, _enabled: ReadonlySet<string>, keep: readonly GeneratedObject[]) => {
      const gone = live.filter((l) => !keep.some((k) => `${k.kind}/${k.metadata.name}` === l));
      deleted.push(...gone);
      return gone;
    },
  } as unknown as OperatorClient;
  return { client, applied, deleted };
}

function deps(policies: KubernetesObject[], client: OperatorClient, refused: string[] = []): ReconcilerDeps {
  const validation = {
    policy: async (k: string): Promise<Verdicts> => ({ errors: refused.includes(k) ? ['POLICY_CEL: bad'] : [], warnings: [] }),
    directory: async () => new TenantDirectory(),
  } as unknown as PolicyValidation;
  const services = lister([{ apiVersion: 'v1', kind: 'Service', metadata: { name: 'api', namespace: 'n' }, spec: { selector: { app: 'api' } } } as KubernetesObject]);
  const none = lister([]);
  return {
    caches: { policies: lister(policies), tenants: none, services, targets: { httpRoutes: none, gateways: none, referenceGrants: none } },
    client,
    outputs: { ...GOLDEN_CONFIG, istio: true, envoyGateway: false },
    validation,
    locks: new NamespaceLocks(),
    log: pino({ level: 'silent' }),
  };
}

const plain = [{ name: 'r', principals: { types: ['consumer'] } }];
const masking = [{ name: 'm', principals: { types: ['consumer'] }, mask: [{ field: '$.x', action: 'redact' }] }];

describe('the namespace pass over shared Istio objects', () => {
  test('the union of what the policies need, written once each; the rest is deleted', async () => {
    const r = recorder(['AuthorizationPolicy/portcullis-service-api', 'EnvoyFilter/portcullis-service-gone', 'AuthorizationPolicy/portcullis-p1']);
    const out = await new SharedObjectsReconciler(deps([policy('p1', plain), policy('p2', masking), policy('p3', plain)], r.client)).reconcile('n');
    assert.deepEqual(out.desired, ['AuthorizationPolicy/portcullis-service-api', 'EnvoyFilter/portcullis-service-api']);
    assert.deepEqual(r.applied, out.desired, 'one apply per object, not per policy');
    assert.deepEqual(r.deleted, ['EnvoyFilter/portcullis-service-gone', 'AuthorizationPolicy/portcullis-p1'], 'unneeded and per-policy (earlier version) objects');
    assert.equal(out.held, undefined);
  });

  test('no policy left: everything generated in the namespace goes', async () => {
    const r = recorder(['AuthorizationPolicy/portcullis-service-api']);
    const out = await new SharedObjectsReconciler(deps([], r.client)).reconcile('n');
    assert.deepEqual([out.desired, r.deleted], [[], ['AuthorizationPolicy/portcullis-service-api']]);
  });

  test('a refused policy holds every deletion of its namespace and contributes nothing new', async () => {
    const r = recorder(['AuthorizationPolicy/portcullis-service-api', 'EnvoyFilter/portcullis-service-api']);
    const out = await new SharedObjectsReconciler(deps([policy('ok', plain), policy('bad', masking, 'other')], r.client, ['n/bad'])).reconcile('n');
    assert.deepEqual(out.desired, ['AuthorizationPolicy/portcullis-service-api']);
    assert.deepEqual(r.deleted, []);
    assert.match(out.held ?? '', /ApiPolicy n\/bad is refused/);
  });

  test('a shadow policy needs nothing', async () => {
    const shadow = policy('s', masking);
    (shadow as { spec: { mode?: string } }).spec.mode = 'shadow';
    const r = recorder(['EnvoyFilter/portcullis-service-api']);
    const out = await new SharedObjectsReconciler(deps([policy('p', plain), shadow], r.client)).reconcile('n');
    assert.deepEqual([out.desired, r.deleted], [['AuthorizationPolicy/portcullis-service-api'], ['EnvoyFilter/portcullis-service-api']]);
  });

  test('the union is read under the namespace lock: a policy cached while the pass waited is not pruned away', async () => {
    const r = recorder(['AuthorizationPolicy/portcullis-service-api', 'EnvoyFilter/portcullis-service-api']);
    const policies = [policy('p', plain)];
    const d = deps(policies, r.client);
    let release!: () => void;
    const gate = new Promise<void>((res) => (release = res));
    let entered!: () => void;
    const inside = new Promise<void>((res) => (entered = res));
    const held = d.locks.run('n', () => (entered(), gate)); // a policy reconcile writing
    await inside;
    const pass = new SharedObjectsReconciler(d).reconcile('n');
    policies.push(policy('masks', masking)); // it entered the cache meanwhile; its reconcile applied the EnvoyFilter
    release();
    await held;
    const out = await pass;
    assert.ok(out.desired.includes('EnvoyFilter/portcullis-service-api'));
    assert.deepEqual(r.deleted, []);
  });

  test('an apply the API server refuses fails the pass (it is retried), after every other object and the deletions it could make', async () => {
    const r = recorder(['EnvoyFilter/portcullis-service-gone']);
    const apply = (r.client as unknown as { apply: (o: GeneratedObject) => Promise<unknown> }).apply;
    (r.client as unknown as { apply: (o: GeneratedObject) => Promise<unknown> }).apply = async (o) => {
      if (o.kind === 'AuthorizationPolicy') throw Object.assign(new Error('Unprocessable'), { code: 422 });
      return apply(o);
    };
    await assert.rejects(new SharedObjectsReconciler(deps([policy('p', masking)], r.client)).reconcile('n'), /rejected by the API server/);
    assert.deepEqual(r.applied, ['EnvoyFilter/portcullis-service-api'], 'the refused AuthorizationPolicy does not stop the EnvoyFilter');
    assert.deepEqual(r.deleted, ['EnvoyFilter/portcullis-service-gone']);
  });
});

describe('a policy reconcile writes shared objects from the caches as they are under the lock', () => {
  test('a policy whose spec changed while its reconcile waited applies nothing and writes no status (its next reconcile does)', async () => {
    const r = recorder([]);
    let statusWrites = 0;
    Object.assign(r.client, { writeStatus: async () => (statusWrites++, true), prune: async () => 0, event: async () => undefined });
    const before = policy('p', masking);
    const after = { ...before, metadata: { ...before.metadata, generation: 2 } } as KubernetesObject;
    const d = deps([before], r.client);
    let reads = 0;
    d.caches.policies.get = () => (reads++ === 0 ? before : after); // the edit lands while the reconcile runs
    await new PolicyReconciler(d).reconcile('n/p');
    assert.deepEqual([r.applied, statusWrites], [[], 0]);
    // Unchanged: it applies and reports.
    const r2 = recorder([]);
    Object.assign(r2.client, { writeStatus: async () => (statusWrites++, true), prune: async () => 0, event: async () => undefined });
    await new PolicyReconciler(deps([before], r2.client)).reconcile('n/p');
    assert.deepEqual([r2.applied, statusWrites], [['AuthorizationPolicy/portcullis-service-api', 'EnvoyFilter/portcullis-service-api'], 1]);
  });
});
