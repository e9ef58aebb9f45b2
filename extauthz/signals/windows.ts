/**
 * Fixed windows per key in a map of bounded size. Hostile clients choose the keys (networks,
 * principals), so the map never grows past maxKeys: a new key beyond it evicts one of the oldest
 * few entries, preferring one whose window has passed, else the one with the least weight (a
 * sprayed key seen once, never the heavy hitter an alert is about). Eviction scans a fixed number
 * of entries, so every operation is O(1).
 */

/** One key's counters in its current window. */
export abstract class WindowSlot {
  /** When the window began (ms since the epoch) and how long it lasts. */
  start: number;
  windowMs: number;
  /** An alert was raised for this key in this window: at most one per key and window. */
  alerted = false;

  constructor(now: number, windowMs: number) {
    this.start = now;
    this.windowMs = windowMs;
  }

  /** A new window from now on: counters back to zero. */
  restart(now: number, windowMs: number): void {
    this.start = now;
    this.windowMs = windowMs;
    this.alerted = false;
    this.clear();
  }

  protected abstract clear(): void;
  /** How much this key has seen: the eviction keeps the heaviest. */
  abstract weight(): number;
}

/** How many of the oldest entries an eviction looks at. */
const EVICTION_SCAN = 16;

export class KeyedWindows<S extends WindowSlot> {
  private readonly map = new Map<string, S>();
  /** Keys dropped to make room (a metric: a steady rise means someone sprays keys). */
  evictions = 0;

  constructor(
    readonly maxKeys: number,
    private readonly create: (now: number, windowMs: number) => S,
  ) {
    if (!(maxKeys >= 1)) throw new RangeError('maxKeys must be at least 1');
  }

  get size(): number {
    return this.map.size;
  }

  /** The key's slot in its current window: the same one, a restarted one once its window passed, or a new one. */
  slot(key: string, now: number, windowMs: number): S {
    let s = this.map.get(key);
    if (s !== undefined) {
      if (now - s.start >= s.windowMs || now < s.start) s.restart(now, windowMs);
      return s;
    }
    if (this.map.size >= this.maxKeys) this.evict(now);
    s = this.create(now, windowMs);
    this.map.set(key, s);
    return s;
  }

  /** The key's slot as it is, without counting or restarting anything (tests, metrics). */
  peek(key: string): S | undefined {
    return this.map.get(key);
  }

  private evict(now: number): void {
    let victim: string | undefined;
    let least = Infinity;
    let seen = 0;
    for (const [key, s] of this.map) {
      if (now - s.start >= s.windowMs) {
        victim = key;
        break;
      }
      // On a tie the younger one goes: an entry that has stayed the longest has kept up its count.
      const w = s.weight();
      if (w <= least) {
        least = w;
        victim = key;
      }
      if (++seen >= EVICTION_SCAN) break;
    }
    if (victim !== undefined) this.map.delete(victim);
    this.evictions++;
  }
}

export class CountSlot extends WindowSlot {
  count = 0;
  protected clear(): void {
    this.count = 0;
  }
  weight(): number {
    return this.count;
  }
}

export class RateSlot extends WindowSlot {
  requests = 0;
  denies = 0;
  protected clear(): void {
    this.requests = 0;
    this.denies = 0;
  }
  weight(): number {
    return this.denies;
  }
}

/** Distinct 32-bit resource hashes, at most `count` of them (the alert fires on reaching it). */
export class DistinctSlot extends WindowSlot {
  readonly ids = new Set<number>();
  protected clear(): void {
    this.ids.clear();
  }
  weight(): number {
    return this.ids.size;
  }
}
