import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CowMap } from './cow-map.js';

/** A seeded generator, so a failing sequence can be replayed. */
function lcg(seed: number): () => number {
  let s = seed;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

describe('CowMap', () => {
  test('behaves as a Map under random sets and deletes, insertion order included', () => {
    for (const seed of [1, 2, 3, 42]) {
      const rand = lcg(seed);
      const model = new Map<string, number>();
      let map = CowMap.empty<number>();
      for (let round = 0; round < 50; round++) {
        map = map.update((w) => {
          for (let op = 0; op < 40; op++) {
            const key = `ns/k-${Math.floor(rand() * 300)}`;
            if (rand() < 0.3) assert.equal(w.delete(key), model.delete(key));
            else {
              const v = Math.floor(rand() * 1000);
              w.set(key, v);
              model.set(key, v);
            }
            assert.equal(w.get(key), model.get(key));
          }
        });
        assert.equal(map.size, model.size);
        assert.deepEqual([...map], [...model], `seed ${seed} round ${round}`);
        for (const k of ['ns/k-0', 'ns/k-1', 'ns/k-299', 'absent']) {
          assert.equal(map.get(k), model.get(k));
          assert.equal(map.has(k), model.has(k));
        }
      }
    }
  });

  test('an update leaves every earlier version as it was', () => {
    const a = CowMap.from([['x', 1], ['y', 2]]);
    const b = a.update((w) => {
      w.set('x', 10);
      w.delete('y');
      w.set('z', 3);
    });
    assert.deepEqual([...a], [['x', 1], ['y', 2]]);
    assert.deepEqual([...b], [['x', 10], ['z', 3]]);
    assert.equal(a.update(() => undefined), a, 'an update that writes nothing is the same version');
    assert.equal(a.update((w) => void w.delete('absent')), a);
  });

  test('an editor publishes once; writes after done() are refused', () => {
    const a = CowMap.from([['x', 1]]);
    const e = a.edit();
    e.set('y', 2);
    const b = e.done();
    assert.throws(() => e.set('z', 3), /after done/);
    assert.deepEqual([...b], [['x', 1], ['y', 2]]);
    assert.deepEqual([...a], [['x', 1]]);
  });

  test('keys, values and forEach follow the same order as entries', () => {
    const m = CowMap.from([['b', 2], ['a', 1], ['c', 3]]).update((w) => w.set('a', 9));
    assert.deepEqual([...m.keys()], ['b', 'a', 'c']);
    assert.deepEqual([...m.values()], [2, 9, 3]);
    const seen: string[] = [];
    m.forEach((v, k) => seen.push(`${k}=${v}`));
    assert.deepEqual(seen, ['b=2', 'a=9', 'c=3']);
  });
});
