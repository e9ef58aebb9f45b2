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
  /** From the chain-start: the replica's instance id, its start time and the subject key id. */
  instance?: string;
  started?: string;
  subjectKeyId?: string;
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
  /** perChain only: the first problem of each chain that has one (a chain may be known only by a problem). */
  chainProblems?: Map<string, Problem>;
  /** perChain only: problems no chain can be named for (a malformed line; an incomplete last line). */
  unattributed?: Problem[];
  /** perChain only: the chains whose entries each file holds (a malformed line may belong to any of them). */
  chainsByFile?: Map<string, Set<string>>;
}

export interface VerifyOptions {
  keys: JWTVerifyGetKey;
  /** Treat an unverified tail or an unsealed chain as a failure (for logs closed cleanly). */
  requireSealed?: boolean;
  /**
   * Keep verifying the other chains after a chain's first problem, and report a problem per chain
   * (audit access-report). References between chains are then checked at the end, so files of
   * several replicas may come in any order.
   */
  perChain?: boolean;
  /**
   * Called with every chained entry the replay accepted (chain-starts, decisions, masking and
   * alert records, in file order), already parsed: what a reader of the trail may rely on, as far
   * as the chain's status (report) goes. perChain: also with the entries of a chain at and after
   * its first problem, with accepted false (they are not replayed, but a reader may list them as
   * unverified).
   */
  onEntry?: (entry: Readonly<Record<string, unknown>>, at: Location, accepted: boolean) => void;
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
  time?: string;
  instance?: string;
  subjectKeyId?: string;
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
  start: { instance?: string; started?: string; subjectKeyId?: string };
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
  /** The chain the problem belongs to when it is not the chain of the entry being read. */
  constructor(
    readonly problem: Problem,
    readonly chain?: string,
  ) {
    super(problem.message);
  }
}

type Gap = { chain: string; from: number; to: number };

const CHAINED_TYPES = new Set(['decision', 'masking', 'alert']);

function tailWarnings(chains: readonly ChainSummary[]): string[] {
  const out: string[] = [];
  for (const c of chains.filter((c) => c.unverifiedTail > 0)) out.push(`chain ${c.chain}: unverified tail of ${c.unverifiedTail} entries from ${c.tailFrom?.file}:${c.tailFrom?.line} (after the last checkpoint)`);
  for (const c of chains.filter((c) => !c.sealed && c.unverifiedTail === 0)) out.push(`chain ${c.chain}: no final checkpoint (the process stopped without closing the log, or the log was truncated)`);
  return out;
}

export class Verifier {
  private readonly chains = new Map<string, ChainState>();
  private readonly warnings: string[] = [];
  private problem: Problem | undefined;
  /** After the first problem: positions of records that would have filled a gap (reorder). */
  private gap: Gap | undefined;
  private incomplete: Location | undefined;
  // perChain mode: a problem per chain, the gaps behind them, references checked at the end.
  private readonly chainProblems = new Map<string, Problem>();
  private readonly gaps = new Map<string, Gap>();
  private readonly unattributed: Problem[] = [];
  private readonly chainsByFile = new Map<string, Set<string>>();
  private readonly references: { ref: ChainRef; at: Location; by: string }[] = [];

  constructor(private readonly opts: VerifyOptions) {}

  /** Feeds one line; `complete` is false for a last line without its newline. */
  async line(file: string, line: number, text: string, complete = true): Promise<void> {
    if (this.problem) return this.lookAhead(text);
    const e = parseEntry(text);
    if (!complete && this.lastLine(e, { file, line })) return;
    if (this.opts.perChain && e && this.skipped(e, { file, line })) return;
    try {
      await this.entry(e, { file, line });
    } catch (err) {
      if (!(err instanceof Found)) throw err;
      this.found(err, e);
      if (this.opts.perChain && e) this.rejected(e, { file, line });
    }
  }

  /** A last line without its newline: a cut write (not verified; true) or just a missing newline. */
  private lastLine(e: Entry | undefined, at: Location): boolean {
    if (e === undefined) this.incomplete = at;
    else this.warnings.push(`${at.file}:${at.line}: last line has no newline`);
    return this.incomplete !== undefined;
  }

  /** perChain: a chain with a problem is not replayed further; a later record may still show a reorder. */
  private skipped(e: Entry, at: Location): boolean {
    this.noteFile(at.file, e.chain);
    if (!this.chainProblems.has(e.chain)) return false;
    this.rejected(e, at);
    this.lookAheadChain(e);
    return true;
  }

  private rejected(e: Entry, at: Location): void {
    if (e.type !== 'checkpoint') this.opts.onEntry?.(e as unknown as Record<string, unknown>, at, false);
  }

  private found(err: Found, e: Entry | undefined): void {
    if (!this.opts.perChain) {
      this.problem = err.problem;
      return;
    }
    const chain = err.chain ?? e?.chain;
    if (chain === undefined) this.unattributed.push(err.problem);
    else if (!this.chainProblems.has(chain)) this.chainProblems.set(chain, err.problem);
    if (this.gap) this.gaps.set(this.gap.chain, this.gap);
    this.gap = undefined;
  }

  private noteFile(file: string, chain: string): void {
    let set = this.chainsByFile.get(file);
    if (!set) this.chainsByFile.set(file, (set = new Set()));
    set.add(chain);
  }

  private lookAheadChain(e: Entry): void {
    const gap = this.gaps.get(e.chain);
    const problem = this.chainProblems.get(e.chain);
    if (!gap || !problem || !CHAINED_TYPES.has(e.type) || e.seq < gap.from || e.seq > gap.to) return;
    this.chainProblems.set(e.chain, { ...problem, kind: 'reordered', message: `${problem.message}; seq ${e.seq} appears later: records were reordered` });
    this.gaps.delete(e.chain);
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
    if (this.opts.perChain && e.previous) this.references.push({ ref: e.previous, at, by: e.chain });
    else this.checkPrevious(e.previous ?? null, at);
    const hash = entryHash(e);
    const start = { ...(typeof e.instance === 'string' ? { instance: e.instance } : {}), ...(typeof e.time === 'string' ? { started: e.time } : {}), ...(typeof e.subjectKeyId === 'string' ? { subjectKeyId: e.subjectKeyId } : {}) };
    this.chains.set(e.chain, { seq: 0, hash, records: 0, verifiedThrough: -1, sealed: false, checkpoints: new Set(), recent: new Map([[0, { ...at, hash }]]), start });
    this.opts.onEntry?.(e as unknown as Record<string, unknown>, at, true);
  }

  /** perChain: every chain a chain-start names as its predecessor must be here, with that checkpoint. */
  private checkReferences(): void {
    for (const { ref, at, by } of this.references) {
      if (this.chainProblems.has(ref.chain)) continue;
      const prior = this.chains.get(ref.chain);
      if (!prior) {
        this.chainProblems.set(ref.chain, { ...at, kind: 'deleted', message: `chain ${by} continues chain ${ref.chain} (through seq ${ref.seq}), which is not among the files given: a file is missing` });
        continue;
      }
      if (prior.checkpoints.has(`${ref.seq}:${ref.hash}`)) continue;
      const kind = prior.seq < ref.seq ? 'truncated' : 'edited';
      this.chainProblems.set(ref.chain, { ...at, kind, message: `chain ${by} references checkpoint seq ${ref.seq} of chain ${ref.chain}, which is not in the files (chain ends at seq ${prior.seq})` });
    }
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
    this.opts.onEntry?.(e as unknown as Record<string, unknown>, at, true);
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

  private summaries(): ChainSummary[] {
    return [...this.chains].map(([chain, s]) => {
      const tailFrom = s.recent.get(s.verifiedThrough + 1);
      return { chain, ...s.start, records: s.records, verifiedThrough: s.verifiedThrough, head: s.seq, sealed: s.sealed, unverifiedTail: s.seq - s.verifiedThrough, ...(tailFrom ? { tailFrom: { file: tailFrom.file, line: tailFrom.line } } : {}) };
    });
  }

  report(): VerifyReport {
    if (this.opts.perChain) return this.perChainReport(this.summaries());
    const chains = this.summaries();
    const warnings = [...this.warnings];
    if (chains.length === 0) warnings.push('no audit entries found');
    if (this.incomplete) warnings.push(`${this.incomplete.file}:${this.incomplete.line}: incomplete last line (write cut short); not verified`);
    // After a problem the replay stopped: tails and seals say nothing more.
    if (!this.problem) warnings.push(...tailWarnings(chains));
    const problem = this.problem ?? (this.opts.requireSealed ? this.sealedProblem(chains) : undefined);
    return { intact: problem === undefined, ...(problem ? { problem } : {}), warnings, chains };
  }

  private perChainReport(chains: ChainSummary[]): VerifyReport {
    this.checkReferences();
    const unattributed = [...this.unattributed];
    if (this.incomplete) unattributed.push({ ...this.incomplete, kind: 'truncated', message: 'incomplete last line (a write cut short): the entry cannot be read' });
    const intact = this.chainProblems.size === 0 && unattributed.length === 0;
    return { intact, warnings: [...this.warnings], chains, chainProblems: new Map(this.chainProblems), unattributed, chainsByFile: this.chainsByFile };
  }

  private sealedProblem(chains: ChainSummary[]): Problem | undefined {
    if (this.incomplete) return { ...this.incomplete, kind: 'truncated', message: 'incomplete last line' };
    const open = chains.find((c) => !c.sealed);
    if (!open) return chains.length === 0 ? { file: '-', line: 0, kind: 'truncated', message: 'no audit entries' } : undefined;
    if (open.unverifiedTail > 0 && open.tailFrom) return { ...open.tailFrom, kind: 'unverified-tail', message: `${open.unverifiedTail} entries of chain ${open.chain} after its last checkpoint` };
    return { file: '-', line: 0, kind: 'truncated', message: `chain ${open.chain} has no final checkpoint` };
  }
}
