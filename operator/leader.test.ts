import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import type { V1Lease } from '@kubernetes/client-node';
import { LeaderElector, type LeaseApi } from './leader.js';

/** An in-memory Lease endpoint with the API server's semantics: resourceVersion CAS, 404, 409. */
class FakeLeases implements LeaseApi {
  lease: V1Lease | undefined;
  private rv = 0;
  down = false;
  private check(): void {
    if (this.down) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  }
  async readNamespacedLease(): Promise<V1Lease> {
    this.check();
    if (!this.lease) throw Object.assign(new Error('not found'), { code: 404 });
    return structuredClone(this.lease);
  }
  async createNamespacedLease(p: { body: V1Lease }): Promise<V1Lease> {
    this.check();
    if (this.lease) throw Object.assign(new Error('exists'), { code: 409 });
    return this.store(p.body);
  }
  async replaceNamespacedLease(p: { body: V1Lease }): Promise<V1Lease> {
    this.check();
    if (p.body.metadata?.resourceVersion !== this.lease?.metadata?.resourceVersion) throw Object.assign(new Error('conflict'), { code: 409 });
    return this.store(p.body);
  }
  /** Another replica renewing: a new resourceVersion with whatever renewTime its clock says. */
  renewAs(holder: string, renewTime: string): void {
    this.store({ metadata: { name: 'l', namespace: 'ns' }, spec: { holderIdentity: holder, leaseDurationSeconds: 15, renewTime: renewTime as never } });
  }
  private store(body: V1Lease): V1Lease {
    this.lease = structuredClone({ ...body, metadata: { ...body.metadata, resourceVersion: String(++this.rv) } });
    return structuredClone(this.lease);
  }
}

describe('LeaderElector', () => {
  let t = 0;
  let api: FakeLeases;
  let events: string[];
  const elector = (identity: string): LeaderElector =>
    new LeaderElector(undefined, { namespace: 'ns', name: 'l', identity, api, monotonic: () => t, onStartedLeading: () => events.push('start'), onStoppedLeading: () => events.push('stop') });
  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout'] }); // scheduled rounds never fire by themselves
    t = 0;
    api = new FakeLeases();
    events = [];
  });
  afterEach(() => mock.timers.reset());

  test('takes a Lease that does not exist yet', async () => {
    const e = elector('me');
    await e.tick();
    assert.equal(e.isLeader, true);
    assert.equal(api.lease?.spec?.holderIdentity, 'me');
    assert.deepEqual(events, ['start']);
  });

  test('a holder that keeps renewing keeps the Lease, whatever its clock wrote (renewTime years ago)', async () => {
    api.renewAs('other', '2001-01-01T00:00:00.000000Z');
    const e = elector('me');
    for (let i = 0; i < 20; i++) {
      await e.tick();
      t += 2000;
      api.renewAs('other', '2001-01-01T00:00:00.000000Z');
    }
    assert.equal(e.isLeader, false, '40 s of a changing Lease: never taken');
    assert.equal(api.lease?.spec?.holderIdentity, 'other');
  });

  test('a Lease unchanged for its duration is taken, even with a renewTime in the future', async () => {
    api.renewAs('other', '2999-01-01T00:00:00.000000Z');
    const e = elector('me');
    await e.tick(); // first sight: the 15 s start now
    t += 14_999;
    await e.tick();
    assert.equal(e.isLeader, false, 'not before 15 s unchanged');
    t += 2;
    await e.tick();
    assert.equal(e.isLeader, true);
    assert.equal(api.lease?.spec?.holderIdentity, 'me');
    assert.equal(api.lease?.spec?.leaseTransitions, 1);
  });

  test('a concurrent winner (409 on the swap) leaves us a follower', async () => {
    api.renewAs('other', '2001-01-01T00:00:00.000000Z');
    const e = elector('me');
    await e.tick();
    t += 16_000;
    const replace = api.replaceNamespacedLease.bind(api);
    api.replaceNamespacedLease = async (p) => {
      api.renewAs('third', '2001-01-01T00:00:00.000000Z'); // someone else got there first
      return replace(p);
    };
    await e.tick();
    assert.equal(e.isLeader, false);
    assert.equal(api.lease?.spec?.holderIdentity, 'third');
  });

  test('renewal failures: leading until the renew deadline (10 s), then stop', async () => {
    const e = elector('me');
    await e.tick();
    api.down = true;
    for (const step of [2000, 2000, 2000, 2000, 2000]) {
      t += step;
      await e.tick();
    }
    assert.equal(e.isLeader, true, '10 s without renewal: still within the deadline');
    t += 1;
    await e.tick();
    assert.equal(e.isLeader, false);
    assert.deepEqual(events, ['start', 'stop']);
  });

  test('stop() releases a held Lease for a fast hand-over', async () => {
    const e = elector('me');
    await e.tick();
    await e.stop();
    assert.equal(api.lease?.spec?.holderIdentity, undefined);
  });
});
