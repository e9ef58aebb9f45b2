import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { KubeConfig, type KubernetesListObject } from '@kubernetes/client-node';
import { ResilientInformer } from './informer.js';
import { ConvertedObjects, decisionView, SourceConverter, sourcesFrom, type Raw } from './objects.js';
import type { WatchDone, WatchEvent, WatchTransport } from './watch.js';

const policy = (ns: string, name: string, rv: string, spec: unknown = { hosts: [`${name}.example`], rules: [] }): Raw =>
  ({ apiVersion: 'portcullis.io/v1alpha1', kind: 'ApiPolicy', metadata: { namespace: ns, name, uid: `u-${name}`, resourceVersion: rv, generation: 1 }, ...(spec ? { spec } : {}) }) as Raw;

/** One open watch the test feeds, and a way to end it (410: a relist follows). */
class FakeWatch implements WatchTransport {
  onEvent: WatchEvent = () => undefined;
  done: WatchDone = () => undefined;
  async watch(_path: string, _params: Record<string, unknown>, onEvent: WatchEvent, done: WatchDone): Promise<AbortController> {
    this.onEvent = onEvent;
    this.done = done;
    return new AbortController();
  }
}

describe('decisionView', () => {
  test('keeps what the conversions and fingerprints read, drops status, annotations, managedFields and the rest', () => {
    const created = new Date('2026-12-01T10:00:00Z');
    const o = {
      apiVersion: 'v1', kind: 'Secret',
      metadata: {
        name: 's', namespace: 'ns', uid: 'u', resourceVersion: '7', generation: 2, creationTimestamp: created, labels: { 'portcullis.io/api-keys': 'true' },
        annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"data":{"k":"c2VjcmV0"}}' }, managedFields: [{ manager: 'kubectl' }], ownerReferences: [{ name: 'x' }], finalizers: ['f'],
      },
      spec: { a: 1 }, data: { k: 'c2VjcmV0' }, stringData: { s: 'x' }, status: { conditions: [] }, type: 'Opaque',
    } as unknown as Raw;
    assert.deepEqual(decisionView(o), {
      apiVersion: 'v1', kind: 'Secret',
      metadata: { name: 's', namespace: 'ns', uid: 'u', resourceVersion: '7', generation: 2, creationTimestamp: created, labels: { 'portcullis.io/api-keys': 'true' } },
      spec: { a: 1 }, data: { k: 'c2VjcmV0' }, stringData: { s: 'x' },
    });
    assert.deepEqual(new SourceConverter().sourcesFrom([], [], [decisionView(o)]), sourcesFrom([], [], [o]), 'converts to the same source');
  });

  test('absent fields stay absent (no keys holding undefined)', () => {
    assert.deepEqual(Object.keys(decisionView({ metadata: { name: 'x' } })), ['metadata']);
    assert.deepEqual(decisionView({ metadata: { name: 'x' } }), { metadata: { name: 'x' } });
  });
});

describe('ConvertedObjects', () => {
  test('holds what sourcesFrom makes of the informer’s objects, in its order, after every kind of event', async () => {
    const watch = new FakeWatch();
    let items = [policy('a', 'p1', '1'), policy('a', 'p2', '2'), policy('b', 'p3', '3')];
    const converted = ConvertedObjects.policies();
    const informer = new ResilientInformer<Raw>({
      kubeConfig: new KubeConfig(), path: '/x', watch,
      list: async (): Promise<KubernetesListObject<Raw>> => ({ metadata: { resourceVersion: '10' }, items }),
      onChange: (o, event) => converted.changed(o, event),
    });
    const expected = (): unknown => sourcesFrom(informer.list(), [], []).policies;
    await informer.start();
    assert.deepEqual(converted.values(), expected());
    const steps: [string, Raw][] = [
      ['MODIFIED', policy('a', 'p1', '11', { hosts: ['changed.example'], rules: [] })],
      ['ADDED', policy('c', 'p4', '12')],
      ['MODIFIED', policy('a', 'p2', '13', null)], // no spec: left out, its place kept
      ['DELETED', policy('b', 'p3', '14')],
      ['MODIFIED', policy('a', 'p2', '15')], // spec back: in its old place, as in the informer
      ['ADDED', policy('b', 'p3', '16')], // re-created: at the end, as in the informer
    ];
    for (const [phase, o] of steps) {
      watch.onEvent(phase, o, {});
      assert.deepEqual(converted.values(), expected(), `after ${phase} ${o.metadata?.name}@${o.metadata?.resourceVersion}`);
    }
    assert.deepEqual(converted.values().map((p) => p.metadata.name), ['p1', 'p2', 'p4', 'p3']);
    // 410: the relist reports what vanished as deletes and the rest as updates.
    items = [policy('c', 'p4', '12'), policy('a', 'p5', '17')];
    watch.done(Object.assign(new Error('gone'), { statusCode: 410 }));
    for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
    assert.deepEqual(converted.values().map((p) => p.metadata.name), ['p4', 'p5']);
    assert.deepEqual(converted.values(), expected());
    await informer.stop();
  });

  test('the array is shared until the next change, and each object is converted once per event', () => {
    let conversions = 0;
    const converted = new ConvertedObjects<string>((raw) => (conversions++, raw.metadata?.name));
    converted.changed(policy('a', 'p1', '1'), 'add');
    converted.changed(policy('a', 'p2', '2'), 'add');
    const first = converted.values();
    assert.equal(converted.values(), first, 'no copy without a change');
    assert.equal(conversions, 2);
    converted.changed(policy('a', 'p1', '3'), 'delete');
    assert.notEqual(converted.values(), first);
    assert.deepEqual(converted.values(), ['p2']);
    assert.deepEqual(first, ['p1', 'p2'], 'an array handed out earlier is not changed');
    assert.equal(conversions, 2, 'a delete converts nothing');
  });
});
