/**
 * `audit verify`: replays the hash chains line by line and checks every checkpoint signature
 * against a JWKS the auditor trusts. The first inconsistency is reported by file and line with a
 * kind (edited, inserted, deleted, reordered, truncated, bad-signature, unknown-key). Records after
 * a chain's last checkpoint cannot be proven and are reported as an unverified tail.
 */
import { compactVerify, errors as joseErrors, type JWTVerifyGetKey } from 'jose';
import { entryHash } from './canonical.js';
import type { ChainRef } from './record.js';

export type TamperKind = 'edited' | 'inserted' | 'deleted' | 'reordered' | 'truncated' | 'bad-signature' | 'unknown-key' | 'unverified-tail';

export interface Location {
  file: string;
  line: number;
}

export interface Problem extends Location {
  kind: TamperKind;
  message: string;
}

export interface ChainSummary {
  chain: string;
  records: number;
  /** Highest seq covered by a valid checkpoint (-1: none). */
  verifiedThrough: number;
  head: number;
  sealed: boolean;
  /** Records after the last checkpoint, which no signature covers. */
  unverifiedTail: number;
  tailFrom?: Location;
}

export interface VerifyReport {
  intact: boolean;
  problem?: Problem;
  warnings: string[];
  chains: ChainSummary[];
}

export interface VerifyOptions {
  keys: JWTVerifyGetKey;
  /** Treat an unverified tail or an unsealed chain as a failure (for logs closed cleanly). */
  requireSealed?: boolean;
}

interface Entry {
  v: number;
  type: 'chain-start' | 'decision' | 'masking' | 'alert' | 'checkpoint';
  chain: string;
  seq: number;
  prev?: string | null;
  hash?: string;
  final?: boolean;
  jws?: string;
  previous?: ChainRef | null;
}

interface ChainState {
  seq: number;
  hash: string;
  records: number;
  verifiedThrough: number;
  sealed: boolean;
  checkpoints: Set<string>;
  /** seq → where and what, since the last checkpoint (bounded by the checkpoint interval). */
  recent: Map<number, Location & { hash: string }>;
}

const TYPES = new Set(['chain-start', 'decision', 'masking', 'alert', 'checkpoint']);

function parseEntry(text: string): Entry | undefined {
  let e: unknown;
  try {
    e = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!e || typeof e !== 'object' || Array.isArray(e)) return undefined;
  const o = e as Partial<Entry>;
  if (o.v !== 1 || !TYPES.has(o.type ?? '') || typeof o.chain !== 'string' || !Number.isInteger(o.seq) || (o.seq ?? -1) < 0) return undefined;
  return o as Entry;
}

class Found extends Error {
  constructor(readonly problem: Problem) {
    super(problem.message);
  }
}

export class Verifier {
  private readonly chains = new Map<string, ChainState>();
  private readonly warnings: string[] = [];
  private problem: Problem | undefined;
  /** After the first problem: positions of records that would have filled a gap (reorder). */
  private gap: { chain: string; from: number; to: number } | undefined;
  private incomplete: Location | undefined;

  constructor(private readonly opts: VerifyOptions) {}

  /** Feeds one line; `complete` is false for a last line without its newline. */
  async line(file: string, line: number, text: string, complete = true): Promise<void> {
    if (this.problem) return this.lookAhead(text);
    if (!complete) {
      if (parseEntry(text) === undefined) this.incomplete = { file, line };
      else this.warnings.push(`${file}:${line}: last line has no newline`);
      if (this.incomplete) return;
    }
    try {
      await this.entry(parseEntry(text), { file, line });
    } catch (err) {
      if (!(err instanceof Found)) throw err;
      this.problem = err.problem;
    }
  }

  /** A record that fills the gap reported as a deletion shows the records were reordered instead. */
  private lookAhead(text: string): void {
    const e = this.gap ? parseEntry(text) : undefined;
    if (!e || !this.gap || !this.problem || (e.type !== 'decision' && e.type !== 'masking' && e.type !== 'alert') || e.chain !== this.gap.chain) return;
    if (e.seq >= this.gap.from && e.seq <= this.gap.to) {
      this.problem = { ...this.problem, kind: 'reordered', message: `${this.problem.message}; seq ${e.seq} appears later: records were reordered` };
      this.gap = undefined;
    }
  }

  private async entry(e: Entry | undefined, at: Location): Promise<void> {
    if (!e) throw new Found({ ...at, kind: 'edited', message: 'not a valid audit entry (malformed or edited line)' });
    if (e.type === 'chain-start') return this.chainStart(e, at);
    const state = this.chains.get(e.chain);
    if (!state) throw new Found({ ...at, kind: 'deleted', message: `entry of chain ${e.chain} without its chain-start (deleted, or inserted from elsewhere)` });
    if (state.sealed) throw new Found({ ...at, kind: 'inserted', message: `entry after the final checkpoint of chain ${e.chain}` });
    if (e.type === 'checkpoint') return this.checkpoint(e, state, at);
    this.decision(e, state, at, entryHash(e));
  }

  private chainStart(e: Entry, at: Location): void {
    if (this.chains.has(e.chain)) throw new Found({ ...at, kind: 'inserted', message: `second chain-start for chain ${e.chain}` });
    if (e.seq !== 0 || e.prev !== null) throw new Found({ ...at, kind: 'edited', message: 'a chain-start must have seq 0 and prev null' });
    this.checkPrevious(e.previous ?? null, at);
    const hash = entryHash(e);
    this.chains.set(e.chain, { seq: 0, hash, records: 0, verifiedThrough: -1, sealed: false, checkpoints: new Set(), recent: new Map([[0, { ...at, hash }]]) });
  }

  /** A new chain points at the last checkpoint of the previous one; that checkpoint must be here. */
  private checkPrevious(ref: ChainRef | null, at: Location): void {
    if (!ref) return;
    const prior = this.chains.get(ref.chain);
    if (!prior) {
      this.warnings.push(`${at.file}:${at.line}: chain continues ${ref.chain} (through seq ${ref.seq}), which is not among the files given`);
      return;
    }
    if (prior.checkpoints.has(`${ref.seq}:${ref.hash}`)) return;
    const kind = prior.seq < ref.seq ? 'truncated' : 'edited';
    throw new Found({ ...at, kind, message: `the next chain references checkpoint seq ${ref.seq} of chain ${ref.chain}, which is not in the files (chain ends at seq ${prior.seq})` });
  }

  private decision(e: Entry, s: ChainState, at: Location, hash: string): void {
    const expected = s.seq + 1;
    if (e.seq > expected) {
      this.gap = { chain: e.chain, from: expected, to: e.seq - 1 };
      throw new Found({ ...at, kind: 'deleted', message: `records ${expected}..${e.seq - 1} of chain ${e.chain} are missing before this line` });
    }
    if (e.seq < expected) {
      const twin = s.recent.get(e.seq);
      const where = twin ? ` (also at ${twin.file}:${twin.line})` : '';
      throw new Found({ ...at, kind: 'inserted', message: `seq ${e.seq} of chain ${e.chain} comes again after seq ${s.seq}${where}` });
    }
    if (e.prev !== s.hash) {
      const pred = s.recent.get(s.seq) ?? at;
      throw new Found({ ...pred, kind: 'edited', message: `this entry does not hash to the prev of the next one (${at.file}:${at.line}): one of them was edited` });
    }
    s.seq = e.seq;
    s.hash = hash;
    s.records++;
    s.recent.set(e.seq, { ...at, hash });
  }

  private async checkpoint(e: Entry, s: ChainState, at: Location): Promise<void> {
    const payload = await this.signed(e, at);
    const head = s.recent.get(s.seq) ?? at;
    if (payload.seq <= s.verifiedThrough && !payload.final) throw new Found({ ...at, kind: 'inserted', message: `a second checkpoint for seq ${payload.seq}, already covered` });
    if (payload.seq > s.seq) throw new Found({ ...at, kind: 'deleted', message: `the checkpoint signs seq ${payload.seq} but the chain ends at seq ${s.seq}: records were deleted` });
    if (payload.seq < s.seq) throw new Found({ ...(s.recent.get(payload.seq + 1) ?? at), kind: 'inserted', message: `the checkpoint at ${at.file}:${at.line} signs seq ${payload.seq} but the chain is at seq ${s.seq}: entries were inserted` });
    // The chain up to here is consistent, so either this last entry was edited, or every entry since
    // the previous checkpoint was rewritten with recomputed hashes.
    if (payload.hash !== s.hash) throw new Found({ ...head, kind: 'edited', message: `this entry (or the chain since the previous checkpoint) does not match the signed checkpoint at ${at.file}:${at.line}` });
    s.verifiedThrough = s.seq;
    s.sealed = payload.final;
    s.checkpoints.add(`${payload.seq}:${payload.hash}`);
    s.recent = new Map(s.recent.has(s.seq) ? [[s.seq, head as Location & { hash: string }]] : []);
  }

  /** The JWS is the truth; the readable fields beside it must say the same. */
  private async signed(e: Entry, at: Location): Promise<{ chain: string; seq: number; hash: string; final: boolean }> {
    let payload: { chain?: unknown; seq?: unknown; hash?: unknown; final?: unknown };
    try {
      const r = await compactVerify(e.jws ?? '', this.opts.keys, { algorithms: ['EdDSA', 'ES256'] });
      payload = JSON.parse(new TextDecoder().decode(r.payload)) as typeof payload;
    } catch (err) {
      if (err instanceof joseErrors.JWKSNoMatchingKey) throw new Found({ ...at, kind: 'unknown-key', message: 'the checkpoint is signed with a key that is not in the JWKS' });
      throw new Found({ ...at, kind: 'bad-signature', message: `the checkpoint signature does not verify (${(err as Error).message})` });
    }
    const same = payload.chain === e.chain && payload.seq === e.seq && payload.hash === e.hash && (payload.final === true) === (e.final === true);
    if (!same || typeof payload.hash !== 'string' || typeof payload.seq !== 'number') throw new Found({ ...at, kind: 'edited', message: 'the checkpoint fields differ from what its signature covers' });
    return { chain: e.chain, seq: payload.seq, hash: payload.hash, final: payload.final === true };
  }

  report(): VerifyReport {
    const chains: ChainSummary[] = [...this.chains].map(([chain, s]) => {
      const tailFrom = s.recent.get(s.verifiedThrough + 1);
      return { chain, records: s.records, verifiedThrough: s.verifiedThrough, head: s.seq, sealed: s.sealed, unverifiedTail: s.seq - s.verifiedThrough, ...(tailFrom ? { tailFrom: { file: tailFrom.file, line: tailFrom.line } } : {}) };
    });
    const warnings = [...this.warnings];
    if (chains.length === 0) warnings.push('no audit entries found');
    if (this.incomplete) warnings.push(`${this.incomplete.file}:${this.incomplete.line}: incomplete last line (write cut short); not verified`);
    // After a problem the replay stopped: tails and seals say nothing more.
    for (const c of this.problem ? [] : chains.filter((c) => c.unverifiedTail > 0)) warnings.push(`chain ${c.chain}: unverified tail of ${c.unverifiedTail} entries from ${c.tailFrom?.file}:${c.tailFrom?.line} (after the last checkpoint)`);
    for (const c of this.problem ? [] : chains.filter((c) => !c.sealed && c.unverifiedTail === 0)) warnings.push(`chain ${c.chain}: no final checkpoint (the process stopped without closing the log, or the log was truncated)`);
    const problem = this.problem ?? (this.opts.requireSealed ? this.sealedProblem(chains) : undefined);
    return { intact: problem === undefined, ...(problem ? { problem } : {}), warnings, chains };
  }

  private sealedProblem(chains: ChainSummary[]): Problem | undefined {
    if (this.incomplete) return { ...this.incomplete, kind: 'truncated', message: 'incomplete last line' };
    const open = chains.find((c) => !c.sealed);
    if (!open) return chains.length === 0 ? { file: '-', line: 0, kind: 'truncated', message: 'no audit entries' } : undefined;
    if (open.unverifiedTail > 0 && open.tailFrom) return { ...open.tailFrom, kind: 'unverified-tail', message: `${open.unverifiedTail} entries of chain ${open.chain} after its last checkpoint` };
    return { file: '-', line: 0, kind: 'truncated', message: `chain ${open.chain} has no final checkpoint` };
  }
}
