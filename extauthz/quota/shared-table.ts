/**
 * Quota states in shared memory: a fixed-size open-addressing table in a SharedArrayBuffer,
 * guarded by one lock (Atomics), so every thread that holds the buffer charges the same counters
 * exactly — worker threads serving one port see one quota, not one per thread.
 *
 * Bounded by construction: capacity slots, a probe window of PROBE slots per key. A slot once
 * used is never emptied, only reused in place when its state has expired, so a key is always
 * found before the first never-used slot of its window (no tombstones, no rehash). When a new
 * key finds neither a free nor an expired slot in its window, the table is full for it and the
 * charge fails with QuotaBackendError: the quota's onBackendError decides, as for Redis.
 */
import { hash } from 'node:crypto';
import type { QuotaState } from './algorithms.js';
import { QuotaBackendError } from './backend.js';

const KEY_BYTES = 240;
/** Per slot: Int32 used, Int32 key length, key bytes, then Float64 a, t, p, expiresAt. */
const SLOT_BYTES = 8 + KEY_BYTES + 32;
const HEADER_BYTES = 8;
const PROBE = 64;
const LOCK = 0;
export const DEFAULT_CAPACITY = 1 << 18;

const encoder = new TextEncoder();

/** Keys longer than a slot holds are replaced by their SHA-256 (distinct keys stay distinct). */
function keyBytes(key: string): Uint8Array {
  const b = encoder.encode(key);
  return b.length <= KEY_BYTES ? b : encoder.encode(`#${hash('sha256', b, 'base64url')}`);
}

/** FNV-1a, 32 bits: spreads keys over the table (the keys are HMAC outputs already). */
function fnv(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const x of b) h = Math.imul(h ^ x, 0x01000193);
  return h >>> 0;
}

export interface SlotState {
  state: QuotaState;
  expiresAt: number;
}

export class SharedQuotaTable {
  readonly capacity: number;
  private readonly lock: Int32Array;
  private readonly ints: Int32Array;
  private readonly bytes: Uint8Array;
  private readonly view: DataView;

  /** A new table, or a view of one another thread created (pass its buffer). */
  constructor(bufferOrCapacity: SharedArrayBuffer | number = DEFAULT_CAPACITY) {
    const buffer = typeof bufferOrCapacity === 'number' ? new SharedArrayBuffer(HEADER_BYTES + bufferOrCapacity * SLOT_BYTES) : bufferOrCapacity;
    this.capacity = Math.floor((buffer.byteLength - HEADER_BYTES) / SLOT_BYTES);
    if (this.capacity < 1) throw new RangeError('a quota table needs at least one slot');
    this.lock = new Int32Array(buffer, 0, 2);
    this.ints = new Int32Array(buffer);
    this.bytes = new Uint8Array(buffer);
    this.view = new DataView(buffer);
  }

  get buffer(): SharedArrayBuffer {
    return this.bytes.buffer as SharedArrayBuffer;
  }

  /** Runs fn holding the table's lock (the critical section is a handful of slot reads and writes). */
  locked<T>(fn: () => T): T {
    while (Atomics.compareExchange(this.lock, LOCK, 0, 1) !== 0) Atomics.wait(this.lock, LOCK, 1, 1);
    try {
      return fn();
    } finally {
      Atomics.store(this.lock, LOCK, 0);
      Atomics.notify(this.lock, LOCK, 1);
    }
  }

  /** The stored state of key, expired or not (callers decide); call while locked. */
  get(key: string): SlotState | undefined {
    const slot = this.find(keyBytes(key), Number.POSITIVE_INFINITY).slot;
    return slot < 0 ? undefined : this.read(slot);
  }

  /** Stores key's state; call while locked. Throws QuotaBackendError when the key's window is full. */
  set(key: string, state: QuotaState, expiresAt: number, now: number): void {
    const k = keyBytes(key);
    const { slot, free } = this.find(k, now);
    const at = slot >= 0 ? slot : free;
    if (at < 0) throw new QuotaBackendError('quota table full: no free or expired slot for this key');
    if (slot < 0) this.claim(at, k);
    const off = this.offset(at) + 8 + KEY_BYTES;
    this.view.setFloat64(off, state.a, true);
    this.view.setFloat64(off + 8, state.t, true);
    this.view.setFloat64(off + 16, state.p, true);
    this.view.setFloat64(off + 24, expiresAt, true);
  }

  /** Live entries (not expired at now); a full scan, for tests and metrics. */
  live(now: number): number {
    let n = 0;
    for (let i = 0; i < this.capacity; i++) if (this.used(i) && this.read(i).expiresAt > now) n++;
    return n;
  }

  private offset(slot: number): number {
    return HEADER_BYTES + slot * SLOT_BYTES;
  }

  private used(slot: number): boolean {
    return this.ints[this.offset(slot) >> 2] === 1;
  }

  private read(slot: number): SlotState {
    const off = this.offset(slot) + 8 + KEY_BYTES;
    const v = this.view;
    return { state: { a: v.getFloat64(off, true), t: v.getFloat64(off + 8, true), p: v.getFloat64(off + 16, true) }, expiresAt: v.getFloat64(off + 24, true) };
  }

  private claim(slot: number, k: Uint8Array): void {
    const off = this.offset(slot);
    this.ints[off >> 2] = 1;
    this.ints[(off >> 2) + 1] = k.length;
    this.bytes.set(k, off + 8);
  }

  private matches(slot: number, k: Uint8Array): boolean {
    const off = this.offset(slot);
    if (this.ints[(off >> 2) + 1] !== k.length) return false;
    for (let i = 0; i < k.length; i++) if (this.bytes[off + 8 + i] !== k[i]) return false;
    return true;
  }

  /** The key's slot (or -1), and the first slot a new entry may take (never used, or expired at now). */
  private find(k: Uint8Array, now: number): { slot: number; free: number } {
    const start = fnv(k) % this.capacity;
    let free = -1;
    for (let i = 0; i < Math.min(PROBE, this.capacity); i++) {
      const slot = (start + i) % this.capacity;
      if (!this.used(slot)) return { slot: -1, free: free >= 0 ? free : slot };
      if (this.matches(slot, k)) return { slot, free };
      if (free < 0 && this.read(slot).expiresAt <= now) free = slot;
    }
    return { slot: -1, free };
  }
}
