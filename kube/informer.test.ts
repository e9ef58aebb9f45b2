import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import { KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import { ResilientInformer, withoutManagedFields, type ChangeEvent } from './informer.js';
import { WatchRefused, type WatchDone, type WatchEvent, type WatchTransport } from './watch.js';

/** A watch transport the test drives: each watch either fails at once or stays open until ended. */
class FakeWatch implements WatchTransport {
  readonly opened: { params: Record<string, unknown>; onEvent: WatchEvent; done: WatchDone }[] = [];
  readonly refuse: unknown[] = [];
  async watch(_path: string, params: Record<string, unknown>, onEvent: WatchEvent, done: WatchDone): Promise<AbortController> {
    const err = this.refuse.shift();
    if (err !== undefined) done(err);
    else this.opened.push({ params, onEvent, done });
    return new AbortController();
  }
  get last(): (typeof this.opened)[number] {
    return this.opened.at(-1)!;
  }
}

const obj = (ns: string, name: string, rv: string, target = ''): KubernetesObject & { spec: { target: string } } => ({ metadata: { namespace: ns, name, resourceVersion: rv }, spec: { target } });
type Obj = ReturnType<typeof obj>;

interface Harness {
  informer: ResilientInformer<Obj>;
  watch: FakeWatch;
  lists: number;
  listResult: (() => KubernetesListObject<Obj>) | Error[];
  events: [ChangeEvent, string, string | undefined][];
  errors: unknown[];
}

function harness(items: Obj[] = [obj('a', 'p1', '1', 'svc1')]): Harness {
  const kc = new KubeConfig();
  kc.loadFromClusterAndUser({ name: 'c', server: 'https://127.0.0.1:1', skipTLSVerify: true }, { name: 'u' });
  const watch = new FakeWatch();
  const h: Harness = { watch, lists: 0, listResult: () => ({ metadata: { resourceVersion: '10' }, items }), events: [], errors: [] } as unknown as Harness;
  h.informer = new ResilientInformer<Obj>({
    kubeConfig: kc,
    path: '/apis/x/v1/things',
    watch,
    list: async () => {
      h.lists++;
      if (Array.isArray(h.listResult)) {
        const e = h.listResult.shift();
        if (e) throw e;
        return { metadata: { resourceVersion: '10' }, items };
      }
      return h.listResult();
    },
    indexes: { target: (o) => [`${o.metadata?.namespace}/${o.spec.target}`] },
    onChange: (o, ev, old) => h.events.push([ev, o.metadata?.name ?? '', old?.metadata?.resourceVersion]),
    onError: (e) => h.errors.push(e),
  });
  return h;
}

/** Lets promise chains started by a timer run to their next await. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise<void>((r) => setImmediate(r));
}

describe('ResilientInformer (client-node 2.x ListWatch)', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(() => mock.timers.reset());

  test('a failing list is retried with exponential backoff (250 ms doubling), then served', async () => {
    const h = harness();
    h.listResult = [new Error('connection refused'), new Error('connection refused'), new Error('connection refused')];
    const started = h.informer.start();
    await settle();
    assert.equal(h.lists, 1);
    mock.timers.tick(249);
    await settle();
    assert.equal(h.lists, 1, 'no retry before the first backoff step');
    const steps = [1, 500, 1000];
    for (const [i, ms] of steps.entries()) {
      mock.timers.tick(ms);
      await settle();
      assert.equal(h.lists, i + 2, `attempt ${i + 2} after ${ms} ms more`);
    }
    await started;
    assert.equal(h.informer.synced, true);
    assert.equal(h.errors.length, 3);
    assert.equal(h.informer.get('p1', 'a')?.metadata?.resourceVersion, '1');
    await h.informer.stop();
  });

  test('the backoff resets after a successful list and watch', async () => {
    const h = harness();
    h.listResult = [new Error('down'), new Error('down'), new Error('down')];
    const started = h.informer.start();
    for (const ms of [0, 250, 500, 1000]) {
      mock.timers.tick(ms);
      await settle();
    }
    await started;
    // The watch breaks (API server gone); the restart comes after the *first* step again.
    h.watch.refuse.push(new Error('ECONNREFUSED'));
    h.watch.last.done(new Error('socket hang up'));
    await settle();
    const opened = h.watch.opened.length;
    mock.timers.tick(249);
    await settle();
    assert.equal(h.watch.opened.length, opened, 'not before 250 ms');
    mock.timers.tick(1);
    await settle();
    // That retry was refused too: the next one waits 500 ms.
    mock.timers.tick(499);
    await settle();
    assert.equal(h.watch.opened.length, opened);
    mock.timers.tick(1);
    await settle();
    assert.equal(h.watch.opened.length, opened + 1, 'watch re-opened');
    assert.equal(h.lists, 4, 'resumed from the resourceVersion: no relist');
    assert.equal(h.watch.last.params.resourceVersion, '10');
    await h.informer.stop();
  });

  test('a refused list honours Retry-After instead of the backoff', async () => {
    const h = harness();
    h.listResult = [Object.assign(new Error('too many requests'), { code: 429, headers: { 'Retry-After': '7' } })];
    const started = h.informer.start();
    await settle();
    mock.timers.tick(6999);
    await settle();
    assert.equal(h.lists, 1, 'waits the 7 s the server asked for');
    mock.timers.tick(1);
    await settle();
    await started;
    assert.equal(h.lists, 2);
    await h.informer.stop();
  });

  test('a refused watch honours Retry-After and keeps serving the cache meanwhile', async () => {
    const h = harness();
    await h.informer.start();
    h.watch.last.onEvent('ADDED', obj('a', 'p2', '11'), {});
    h.watch.refuse.push(new WatchRefused(503, 3000));
    h.watch.last.done(null); // clean close: ListWatch reconnects at once, and is refused
    await settle();
    assert.equal(h.errors.length, 1);
    assert.deepEqual(h.informer.list().map((o) => o.metadata?.name).sort(), ['p1', 'p2'], 'cache kept while down');
    const opened = h.watch.opened.length;
    mock.timers.tick(2999);
    await settle();
    assert.equal(h.watch.opened.length, opened);
    mock.timers.tick(1);
    await settle();
    assert.equal(h.watch.opened.length, opened + 1);
    assert.equal(h.watch.last.params.resourceVersion, '11');
    await h.informer.stop();
  });

  test('410 Gone relists and reports what vanished as deletes', async () => {
    let items = [obj('a', 'p1', '1'), obj('a', 'p2', '2')];
    const h = harness();
    h.listResult = () => ({ metadata: { resourceVersion: '20' }, items });
    await h.informer.start();
    items = [obj('a', 'p1', '1'), obj('b', 'p3', '19')];
    h.events.length = 0;
    h.watch.last.done(new WatchRefused(410, undefined));
    await settle();
    assert.deepEqual(h.events, [['delete', 'p2', '2'], ['add', 'p3', undefined]]);
    assert.equal(h.errors.length, 0, '410 is routine, not an error');
    assert.equal(h.informer.list('a').length, 1);
    await h.informer.stop();
  });

  const cases: { name: string; events: [string, Obj][]; index: string; want: string[] }[] = [
    { name: 'an added object is indexed', events: [['ADDED', obj('a', 'p2', '11', 'svc1')]], index: 'a/svc1', want: ['p1', 'p2'] },
    { name: 'an update moves it to its new value', events: [['MODIFIED', obj('a', 'p1', '12', 'svc2')]], index: 'a/svc1', want: [] },
    { name: 'a delete removes it', events: [['DELETED', obj('a', 'p1', '13', 'svc1')]], index: 'a/svc1', want: [] },
    { name: 'values are per namespace', events: [['ADDED', obj('b', 'p9', '11', 'svc1')]], index: 'a/svc1', want: ['p1'] },
  ];
  for (const c of cases) {
    test(`index: ${c.name}`, async () => {
      const h = harness();
      await h.informer.start();
      for (const [phase, o] of c.events) h.watch.last.onEvent(phase, o, {});
      assert.deepEqual(h.informer.byIndex('target', c.index).map((o) => o.metadata?.name).sort(), c.want);
      await h.informer.stop();
    });
  }

  test('updates carry the object they replace', async () => {
    const h = harness();
    await h.informer.start();
    h.watch.last.onEvent('MODIFIED', obj('a', 'p1', '12'), {});
    h.watch.last.onEvent('DELETED', obj('a', 'p1', '12'), {});
    assert.deepEqual(h.events.slice(1), [['update', 'p1', '1'], ['delete', 'p1', '12']]);
    assert.equal(h.informer.get('p1', 'a'), undefined);
    await h.informer.stop();
  });

  test('transform: the cache and the handlers only ever see transformed objects (listed and watched)', async () => {
    const seen: string[] = [];
    const watch = new FakeWatch();
    const informer = new ResilientInformer<Obj>({
      kubeConfig: new KubeConfig(), path: '/x', watch, list: async () => ({ metadata: { resourceVersion: '10' }, items: [obj('a', 'p1', '1', 'private-1')] }),
      transform: (o) => ({ ...o, spec: { target: `reduced(${o.spec.target.length})` } }),
      onChange: (o) => seen.push(o.spec.target),
    });
    await informer.start();
    watch.last.onEvent('ADDED', obj('a', 'p2', '11', 'private-22'), {});
    watch.last.onEvent('MODIFIED', obj('a', 'p2', '12', 'private-333'), {});
    watch.last.onEvent('BOOKMARK', { metadata: { resourceVersion: '13' } }, {});
    assert.deepEqual(seen, ['reduced(9)', 'reduced(10)', 'reduced(11)']);
    assert.deepEqual(informer.list().map((o) => o.spec.target).sort(), ['reduced(11)', 'reduced(9)']);
    assert.ok(!JSON.stringify(informer.list()).includes('private'), 'no original value in the cache');
    await informer.stop();
  });
  describe('managedFields', () => {
    const managed = (ns: string, name: string, rv: string): Obj => ({ ...obj(ns, name, rv, 'svc1'), metadata: { namespace: ns, name, resourceVersion: rv, labels: { team: 'x' }, managedFields: [{ manager: 'kubectl', operation: 'Update', fieldsV1: { 'f:spec': {} } }] } });
    const informerOf = (opts: { keepManagedFields?: boolean; transform?: (o: Obj) => Obj } = {}): { informer: ResilientInformer<Obj>; watch: FakeWatch; seen: Obj[] } => {
      const watch = new FakeWatch();
      const seen: Obj[] = [];
      const informer = new ResilientInformer<Obj>({
        kubeConfig: new KubeConfig(), path: '/x', watch, list: async () => ({ metadata: { resourceVersion: '10' }, items: [managed('a', 'p1', '1')] }),
        onChange: (o) => seen.push(o), ...opts,
      });
      return { informer, watch, seen };
    };

    test('are dropped from listed and watched objects by default; everything else is kept', async () => {
      const { informer, watch, seen } = informerOf();
      await informer.start();
      watch.last.onEvent('ADDED', managed('a', 'p2', '11'), {});
      watch.last.onEvent('MODIFIED', managed('a', 'p2', '12'), {});
      assert.equal(seen.length, 3);
      for (const o of [...seen, ...informer.list()]) {
        assert.equal(o.metadata?.managedFields, undefined);
        assert.deepEqual(o.metadata?.labels, { team: 'x' });
        assert.equal(o.spec.target, 'svc1');
      }
      assert.equal(informer.get('p2', 'a')?.metadata?.resourceVersion, '12');
      await informer.stop();
    });

    test('keepManagedFields keeps them; a transform receives the object without them', async () => {
      const kept = informerOf({ keepManagedFields: true });
      await kept.informer.start();
      assert.equal(kept.informer.get('p1', 'a')?.metadata?.managedFields?.length, 1);
      await kept.informer.stop();
      const given: unknown[] = [];
      const t = informerOf({ transform: (o) => (given.push(o.metadata?.managedFields), o) });
      await t.informer.start();
      t.watch.last.onEvent('ADDED', managed('a', 'p2', '11'), {});
      assert.deepEqual(given, [undefined, undefined]);
      await t.informer.stop();
    });

    test('withoutManagedFields copies: the argument is left as it was, an object without them is returned as is', () => {
      const o = managed('a', 'p1', '1');
      const out = withoutManagedFields(o);
      assert.equal(o.metadata?.managedFields?.length, 1);
      assert.deepEqual(out, { ...o, metadata: { namespace: 'a', name: 'p1', resourceVersion: '1', labels: { team: 'x' } } });
      assert.equal(withoutManagedFields(out), out);
    });
  });
});
