/**
 * A count-min sketch per fixed window: counts for keys a hostile client chooses (its networks)
 * in a fixed 64 KiB (4 rows of 4096 counters), whatever the number of keys. An estimate is never below the true count (a
 * spray of other keys cannot hide a heavy hitter) and exceeds it only by collisions (about
 * keys-in-window / width per row, the minimum over four rows taken). Windows are aligned to the
 * epoch: at the start of each the counters return to zero.
 */
import { randomBytes } from 'node:crypto';

const DEPTH = 4;

export class WindowedSketch {
  private readonly counts: Uint32Array;
  private readonly seeds: Uint32Array;
  private readonly mask: number;
  private window = -1;

  /** width: counters per row, a power of two. */
  constructor(
    readonly windowMs: number,
    readonly width = 4096,
  ) {
    if (width < 16 || (width & (width - 1)) !== 0) throw new RangeError('width must be a power of two of at least 16');
    this.counts = new Uint32Array(DEPTH * width);
    this.mask = width - 1;
    const r = randomBytes(4 * DEPTH);
    this.seeds = new Uint32Array(DEPTH);
    for (let i = 0; i < DEPTH; i++) this.seeds[i] = r.readUInt32LE(4 * i);
  }

  /** The start (ms since the epoch) of the window `now` falls in. */
  windowStart(now: number): number {
    return Math.floor(now / this.windowMs) * this.windowMs;
  }

  /** Counts one event of `key` at `now`; returns the key's estimated count in the current window, and whether the window is a new one. */
  add(key: string, now: number): { estimate: number; newWindow: boolean } {
    const w = Math.floor(now / this.windowMs);
    const newWindow = w !== this.window;
    if (newWindow) {
      this.counts.fill(0);
      this.window = w;
    }
    let estimate = Infinity;
    for (let row = 0; row < DEPTH; row++) {
      let h = this.seeds[row]! ^ 0x811c9dc5;
      for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 16777619);
      h ^= h >>> 15;
      const at = row * this.width + ((h >>> 0) & this.mask);
      const c = ++this.counts[at]!;
      if (c < estimate) estimate = c;
    }
    return { estimate, newWindow };
  }
}
