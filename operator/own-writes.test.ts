import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { OwnWrites } from './own-writes.js';

describe('OwnWrites', () => {
  test('the event of our own write is recognised once; a later one is not', async () => {
    const own = new OwnWrites();
    let requeued = 0;
    await own.track('p', async () => '7', () => requeued++);
    assert.equal(own.observe('p', '7'), true);
    assert.equal(own.observe('p', '7'), false, 'consumed');
    assert.equal(own.observe('p', '8'), false);
    assert.equal(requeued, 0);
    assert.equal(own.size, 0);
  });

  const races: { name: string; seen: string[]; rv: string | undefined; requeued: number }[] = [
    { name: 'our event arrives before our answer', seen: ['7'], rv: '7', requeued: 0 },
    { name: 'a foreign change arrives during our write', seen: ['6'], rv: '7', requeued: 1 },
    { name: 'both, in any order', seen: ['7', '6'], rv: '7', requeued: 1 },
    { name: 'the write failed: whatever was seen counts', seen: ['6'], rv: undefined, requeued: 1 },
    { name: 'nothing seen', seen: [], rv: '7', requeued: 0 },
  ];
  for (const c of races) {
    test(`in flight: ${c.name}`, async () => {
      const own = new OwnWrites();
      let requeued = 0;
      await own
        .track('p', async () => {
          for (const rv of c.seen) assert.equal(own.observe('p', rv), true, 'deferred while in flight');
          if (c.rv === undefined) throw new Error('409');
          return c.rv;
        }, () => requeued++)
        .catch(() => undefined);
      assert.equal(requeued, c.requeued);
      // Our event, once seen during the write, is not expected again.
      if (c.rv && c.seen.includes(c.rv)) assert.equal(own.observe('p', c.rv), false);
    });
  }

  test('keys are independent and forget drops the record', async () => {
    const own = new OwnWrites();
    await own.track('a', async () => '1', () => undefined);
    await own.track('b', async () => '1', () => undefined);
    own.forget('a');
    assert.equal(own.observe('a', '1'), false);
    assert.equal(own.observe('b', '1'), true);
  });
});
