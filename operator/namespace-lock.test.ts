import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NamespaceLocks } from './namespace-lock.js';

/** A promise with its resolver, to hold a lock holder open until the test releases it. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

describe('NamespaceLocks', () => {
  test('holders of one namespace run one at a time, in arrival order', async () => {
    const locks = new NamespaceLocks();
    const order: string[] = [];
    const first = gate();
    const a = locks.run('n', async () => {
      order.push('a start');
      await first.promise;
      order.push('a end');
    });
    const b = locks.run('n', async () => {
      order.push('b');
    });
    await Promise.resolve();
    await Promise.resolve();
    assert.deepEqual(order, ['a start'], 'b waits while a holds the lock');
    first.open();
    await Promise.all([a, b]);
    assert.deepEqual(order, ['a start', 'a end', 'b']);
  });

  test('other namespaces do not wait', async () => {
    const locks = new NamespaceLocks();
    const held = gate();
    const a = locks.run('n', () => held.promise);
    assert.equal(await locks.run('m', async () => 'ran'), 'ran');
    held.open();
    await a;
  });

  test('a failing holder releases the lock and its error reaches only its caller', async () => {
    const locks = new NamespaceLocks();
    const failing = locks.run('n', async () => {
      throw new Error('boom');
    });
    const next = locks.run('n', async () => 'next ran');
    await assert.rejects(failing, /boom/);
    assert.equal(await next, 'next ran');
  });

  test('no entry is left once the last holder is done', async () => {
    const locks = new NamespaceLocks();
    await Promise.all(['a', 'b', 'a', 'c'].map((ns) => locks.run(ns, async () => undefined)));
    assert.equal(locks.size, 0);
  });
});
