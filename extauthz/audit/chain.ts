/**
 * One replica's hash chain. Entries are serialised once, canonically (RFC 8785), and that same
 * text is both the line written and the input of the hash the next entry carries in `prev`.
 */
import { randomBytes } from 'node:crypto';
import { canonicalJson, sha256Hex } from './canonical.js';
import type { SigningKey } from './keys.js';
import { SCHEMA_VERSION, type ChainRef, type CheckpointEntry, type CheckpointPayload, type ChainedEntry, type DecisionFields, type MaskingFields, type AlertFields } from './record.js';

export interface Appended {
  seq: number;
  hash: string;
  line: string;
}

export interface ChainOptions {
  instance: string;
  key: SigningKey;
  subjectKeyId: string;
  /** The last checkpoint of this replica's previous chain, when one can be found. */
  previous: ChainRef | null;
  clock?: () => Date;
}

export class Chain {
  readonly id: string;
  private seq = -1;
  private headHash: string | null = null;
  private readonly clock: () => Date;

  constructor(private readonly opts: ChainOptions) {
    this.clock = opts.clock ?? (() => new Date());
    // Instance id + start time, plus a nonce so two processes started in the same millisecond
    // (CLI runs) never share a chain id.
    this.id = `${opts.instance}/${this.clock().toISOString()}/${randomBytes(3).toString('hex')}`;
  }

  get head(): { seq: number; hash: string | null } {
    return { seq: this.seq, hash: this.headHash };
  }

  private push(entry: ChainedEntry): Appended {
    const line = canonicalJson(entry);
    this.seq = entry.seq;
    this.headHash = sha256Hex(line);
    return { seq: this.seq, hash: this.headHash, line };
  }

  private next(): { v: typeof SCHEMA_VERSION; chain: string; seq: number; prev: string | null; time: string } {
    return { v: SCHEMA_VERSION, chain: this.id, seq: this.seq + 1, prev: this.headHash, time: this.clock().toISOString() };
  }

  start(): Appended {
    if (this.seq >= 0) throw new Error('chain already started');
    const o = this.opts;
    return this.push({ ...this.next(), type: 'chain-start', instance: o.instance, kid: o.key.kid, subjectKeyId: o.subjectKeyId, previous: o.previous });
  }

  append(fields: DecisionFields): Appended {
    if (this.seq < 0) throw new Error('chain not started');
    // Object.assign, not a spread: V8 builds `{ ...a, k: v, ...b }` on a slow path (≈14 µs for a
    // decision record against ≈2 µs); the canonical line sorts the keys, so the order is moot.
    return this.push(Object.assign(this.next(), { type: 'decision' as const }, fields));
  }

  appendMasking(fields: MaskingFields): Appended {
    if (this.seq < 0) throw new Error('chain not started');
    return this.push(Object.assign(this.next(), { type: 'masking' as const }, fields));
  }

  appendAlert(fields: AlertFields): Appended {
    if (this.seq < 0) throw new Error('chain not started');
    return this.push(Object.assign(this.next(), { type: 'alert' as const }, fields));
  }

  /** A signed checkpoint over the given chained entry (by default the current head). */
  checkpoint(final: boolean, at: { seq: number; hash: string } = { seq: this.seq, hash: this.headHash ?? '' }): CheckpointEntry {
    const payload: CheckpointPayload = { chain: this.id, seq: at.seq, hash: at.hash, time: this.clock().toISOString(), final };
    return { v: SCHEMA_VERSION, type: 'checkpoint', ...payload, kid: this.opts.key.kid, jws: this.opts.key.signCompact(payload) };
  }
}
