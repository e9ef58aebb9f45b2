/**
 * A persistent map for snapshots that are derived from each other: the entries live in 256
 * shards chosen by a hash of the key, and an update copies only the shards it touches (plus the
 * 256-slot shard array). Copying a 10,000-entry Map costs ~5 ms and a one-policy edit used to copy
 * several; here it copies ~40 entries per touched shard, and every earlier version keeps reading
 * exactly what it read before.
 *
 * Iteration is in insertion order, as with Map (setting an existing key keeps its place): each
 * entry carries a sequence number, and the order is sorted once per version, when first asked
 * for. Lookups never pay for it.
 */

const SHARDS = 256;

interface Entry<V> {
  readonly seq: number;
  readonly value: V;
}

type Shard<V> = ReadonlyMap<string, Entry<V>>;

const NO_SHARD: Shard<never> = new Map();

/** FNV-1a over the UTF-16 code units: cheap, and stable across processes (no seed). */
function shardOf(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0) & (SHARDS - 1);
}

/**
 * Changes to one new version: each shard is copied the first time it is written, then written in
 * place; done() publishes the version, after which the editor refuses writes (its shards are the
 * published map's). Writes may be spread over many event-loop turns (a sliced reload).
 */
export interface CowEditor<V> {
  set(key: string, value: V): void;
  delete(key: string): boolean;
  get(key: string): V | undefined;
  done(): CowMap<V>;
}

/** An editor's writes, as an update() callback sees them. */
export type CowWriter<V> = Omit<CowEditor<V>, 'done'>;

export class CowMap<V> implements ReadonlyMap<string, V> {
  private ordered: [string, V][] | undefined;

  private constructor(
    private readonly shards: readonly Shard<V>[],
    readonly size: number,
    private readonly nextSeq: number,
  ) {}

  static empty<V>(): CowMap<V> {
    return new CowMap<V>(new Array<Shard<V>>(SHARDS).fill(NO_SHARD as Shard<V>), 0, 0);
  }

  static from<V>(entries: Iterable<readonly [string, V]>): CowMap<V> {
    return CowMap.empty<V>().update((w) => {
      for (const [k, v] of entries) w.set(k, v);
    });
  }

  get(key: string): V | undefined {
    return this.shards[shardOf(key)]!.get(key)?.value;
  }

  has(key: string): boolean {
    return this.shards[shardOf(key)]!.has(key);
  }

  /** A new version with fn's changes; this one is left as it was. */
  update(fn: (w: CowWriter<V>) => void): CowMap<V> {
    const e = this.edit();
    fn(e);
    return e.done();
  }

  /** An editor of the next version (nothing is copied until it writes). */
  edit(): CowEditor<V> {
    const shards = [...this.shards];
    const copied = new Set<number>();
    let size = this.size;
    let seq = this.nextSeq;
    let finished = false;
    const writable = (i: number): Map<string, Entry<V>> => {
      if (finished) throw new Error('CowMap editor used after done()');
      if (!copied.has(i)) {
        shards[i] = new Map(shards[i]);
        copied.add(i);
      }
      return shards[i] as Map<string, Entry<V>>;
    };
    return {
      get: (key) => shards[shardOf(key)]!.get(key)?.value,
      set: (key, value) => {
        const shard = writable(shardOf(key));
        const old = shard.get(key);
        if (!old) size++;
        shard.set(key, { seq: old ? old.seq : seq++, value });
      },
      delete: (key) => {
        const i = shardOf(key);
        if (!shards[i]!.has(key)) return false;
        writable(i).delete(key);
        size--;
        return true;
      },
      done: () => {
        finished = true;
        return copied.size === 0 ? this : new CowMap<V>(shards, size, seq);
      },
    };
  }

  private inOrder(): [string, V][] {
    if (!this.ordered) {
      const all: [number, string, V][] = [];
      for (const shard of this.shards) for (const [k, e] of shard) all.push([e.seq, k, e.value]);
      all.sort((a, b) => a[0] - b[0]);
      this.ordered = all.map(([, k, v]) => [k, v]);
    }
    return this.ordered;
  }

  *entries(): MapIterator<[string, V]> {
    for (const [k, v] of this.inOrder()) yield [k, v];
  }

  *keys(): MapIterator<string> {
    for (const [k] of this.inOrder()) yield k;
  }

  *values(): MapIterator<V> {
    for (const [, v] of this.inOrder()) yield v;
  }

  [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }

  forEach(fn: (value: V, key: string, map: ReadonlyMap<string, V>) => void): void {
    for (const [k, v] of this.inOrder()) fn(v, k, this);
  }
}
