/**
 * `audit access-report`: the citizen's access report (GDPR Art. 15). The audit files of every
 * replica are verified chain by chain (hash chain, signed checkpoints, references between a
 * replica's chains), and every decision record whose `resource` is the subject's keyed pseudonym
 * and whose `subject` is not is listed: when, which tenant, purpose, legal basis, decision, masks,
 * API and rule. A chain that cannot be verified is named with the reason, and its records are
 * marked unverified: the report never passes off incomplete data as complete.
 */
import type { JWTVerifyGetKey } from 'jose';
import { forEachLine } from './verify-files.js';
import { Verifier, type ChainSummary, type Problem, type VerifyReport } from './verify.js';
import type { Pseudonymizer } from './pseudonym.js';

export interface AccessReportOptions {
  /** The data subject's id, in clear (never written to the report). */
  subject: string;
  /** One pseudonymiser per subject key the trail may have used (a key rotation leaves two). */
  pseudonymizers: readonly Pseudonymizer[];
  /** The checkpoint signing keys the reader trusts. */
  keys: JWTVerifyGetKey;
  /** Accept chains without a final checkpoint when every record is covered by one (a live log). */
  allowOpen?: boolean;
}

export type ChainStatus = 'verified' | 'open' | 'unverified';

export interface ReportedChain {
  replica: string | null;
  chain: string;
  started: string | null;
  status: ChainStatus;
  /** Why the chain is open or unverified. */
  reason?: string;
  problem?: Problem;
  records: number;
  verifiedThrough: number;
  head: number;
  accesses: number;
}

export interface Access {
  time: string;
  replica: string | null;
  chain: string;
  seq: number;
  /** True only when the record's chain verified and a valid checkpoint covers the record. */
  verified: boolean;
  requestId: string | null;
  tenant: string | null;
  principalType: string | null;
  purpose: string | null;
  legalBasis: string | null;
  decision: string | null;
  code: string | null;
  masks: string[];
  /** The ext_proc outcome of the response (masked, blocked, passed), when a masking record follows. */
  masking: string | null;
  method: string | null;
  pathTemplate: string | null;
  policy: string | null;
  apiVersion: string | null;
  rule: string | null;
}

export interface AccessReport {
  /** Every chain verified (or open, with allowOpen) and nothing unattributable: the list is complete. */
  complete: boolean;
  subjectKeyIds: string[];
  files: string[];
  chains: ReportedChain[];
  /** Problems no chain can be named for (a malformed or cut line, no entries at all). */
  unattributed: Problem[];
  accesses: Access[];
}

/**
 * Each log's rotated files oldest first, then the live file: PATH.000001, PATH.000002, …, PATH.
 * Logs keep the order in which they were first named.
 */
export function orderLogFiles(files: readonly string[]): string[] {
  const logs = new Map<string, { n: number; file: string }[]>();
  for (const file of new Set(files)) {
    const m = /^(.*)\.(\d{6,})$/.exec(file);
    const base = m ? m[1]! : file;
    const list = logs.get(base) ?? [];
    list.push({ n: m ? Number(m[2]) : Number.POSITIVE_INFINITY, file });
    logs.set(base, list);
  }
  return [...logs.values()].flatMap((list) => list.sort((a, b) => a.n - b.n).map((e) => e.file));
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

/** Collects the subject's records from the entries the verifier accepted. */
class Collector {
  readonly accesses: Access[] = [];
  /** chain → the subject's pseudonym under that chain's subject key (null: a key not given). */
  private readonly pseudonymOf = new Map<string, string | null>();
  readonly unknownKey = new Map<string, string>();
  private readonly byRequest = new Map<string, Access>();
  private readonly pseudonyms: Map<string, string>;
  private readonly anyKey: Set<string>;

  constructor(subject: string, pseudonymizers: readonly Pseudonymizer[]) {
    this.pseudonyms = new Map(pseudonymizers.map((p) => [p.keyId, p.subject(subject) ?? '']));
    this.anyKey = new Set(this.pseudonyms.values());
  }

  /** Accepted or not: a rejected entry (its chain failed) is still listed, as unverified. */
  entry(e: Readonly<Record<string, unknown>>, accepted: boolean): void {
    const chain = e.chain as string;
    if (e.type === 'chain-start') return accepted ? this.chainStart(chain, str(e.subjectKeyId)) : undefined;
    if (e.type === 'masking') return this.masking(chain, e);
    if (e.type !== 'decision') return;
    // A chain whose chain-start is missing has no known key: any of the keys given may match.
    const mine = this.pseudonymOf.has(chain) ? this.pseudonymOf.get(chain) : this.anyKey.has(e.resource as string) ? (e.resource as string) : null;
    // Someone else's access to the subject's records: the subject's own accesses are left out.
    if (!mine || e.resource !== mine || e.subject === mine) return;
    const a = toAccess(e);
    this.accesses.push(a);
    if (a.requestId !== null) this.byRequest.set(`${chain}\n${a.requestId}`, a);
  }

  private chainStart(chain: string, keyId: string | null): void {
    const p = keyId === null ? undefined : this.pseudonyms.get(keyId);
    this.pseudonymOf.set(chain, p ?? null);
    if (p === undefined) this.unknownKey.set(chain, keyId ?? '(none)');
  }

  private masking(chain: string, e: Readonly<Record<string, unknown>>): void {
    const a = typeof e.requestId === 'string' ? this.byRequest.get(`${chain}\n${e.requestId}`) : undefined;
    if (a && typeof e.outcome === 'string') a.masking = a.masking === null || e.outcome === 'blocked' ? e.outcome : a.masking;
  }
}

function toAccess(e: Readonly<Record<string, unknown>>): Access {
  const chain = e.chain as string;
  return {
    time: str(e.time) ?? '',
    replica: null,
    chain,
    seq: e.seq as number,
    verified: false,
    requestId: str(e.requestId),
    tenant: str(e.tenant),
    principalType: str(e.principalType),
    purpose: str(e.purpose),
    legalBasis: str(e.legalBasis),
    decision: str(e.decision),
    code: str(e.code),
    masks: Array.isArray(e.masks) ? e.masks.filter((m): m is string => typeof m === 'string') : [],
    masking: null,
    method: str(e.method),
    pathTemplate: str(e.pathTemplate),
    policy: str(e.policy),
    apiVersion: str(e.apiVersion),
    rule: str(e.rule),
  };
}

function problemText(p: Problem): string {
  return `${p.kind} at ${p.file}:${p.line}: ${p.message}`;
}

/** The first reason a chain cannot be relied on, in order of gravity; undefined: none. */
function chainReason(c: ChainSummary, r: VerifyReport, collector: Collector, malformedIn: Map<string, Problem>): string | undefined {
  const problem = r.chainProblems?.get(c.chain);
  if (problem) return problemText(problem);
  const key = collector.unknownKey.get(c.chain);
  if (key !== undefined) return `its subjects are pseudonymised with subject key ${key}, which is not among the keys given: its records cannot be searched`;
  const malformed = malformedIn.get(c.chain);
  if (malformed) return `the file holding it has an unreadable line that may belong to it (${problemText(malformed)})`;
  if (c.unverifiedTail > 0) return `${c.unverifiedTail} entries after its last checkpoint (from ${c.tailFrom?.file}:${c.tailFrom?.line}) are not covered by a signature: the tail may have been edited or cut`;
  return undefined;
}

/** Chains whose files hold an unattributable problem (a malformed or cut line may be theirs). */
function malformedChains(r: VerifyReport): Map<string, Problem> {
  const out = new Map<string, Problem>();
  for (const p of r.unattributed ?? []) for (const chain of r.chainsByFile?.get(p.file) ?? []) if (!out.has(chain)) out.set(chain, p);
  return out;
}

function reportChains(r: VerifyReport, collector: Collector, allowOpen: boolean): ReportedChain[] {
  const malformedIn = malformedChains(r);
  const known = new Set(r.chains.map((c) => c.chain));
  const chains: ReportedChain[] = r.chains.map((c) => {
    const reason = chainReason(c, r, collector, malformedIn);
    const open = reason === undefined && !c.sealed;
    const status: ChainStatus = reason !== undefined ? 'unverified' : open ? (allowOpen ? 'open' : 'unverified') : 'verified';
    const why = reason ?? (open ? 'no final checkpoint: records written after the last one may be missing (the replica may still be running, or the file was cut after a checkpoint)' : undefined);
    const problem = r.chainProblems?.get(c.chain);
    return { replica: c.instance ?? null, chain: c.chain, started: c.started ?? null, status, ...(why ? { reason: why } : {}), ...(problem ? { problem } : {}), records: c.records, verifiedThrough: c.verifiedThrough, head: c.head, accesses: 0 };
  });
  // Chains known only from a problem: entries without their chain-start, a predecessor not given.
  for (const [chain, problem] of r.chainProblems ?? []) {
    if (!known.has(chain)) chains.push({ replica: null, chain, started: null, status: 'unverified', reason: problemText(problem), problem, records: 0, verifiedThrough: -1, head: -1, accesses: 0 });
  }
  return chains.sort((a, b) => (a.replica ?? '\uffff').localeCompare(b.replica ?? '\uffff') || (a.started ?? '').localeCompare(b.started ?? '') || a.chain.localeCompare(b.chain));
}

export async function accessReport(files: readonly string[], opts: AccessReportOptions): Promise<AccessReport> {
  const ordered = orderLogFiles(files);
  const collector = new Collector(opts.subject, opts.pseudonymizers);
  const v = new Verifier({ keys: opts.keys, perChain: true, onEntry: (e, _at, accepted) => collector.entry(e, accepted) });
  for (const file of ordered) await forEachLine(file, (text, line, complete) => v.line(file, line, text, complete));
  const r = v.report();
  const chains = reportChains(r, collector, opts.allowOpen === true);
  const byChain = new Map(chains.map((c) => [c.chain, c]));
  const unattributed = [...(r.unattributed ?? [])];
  if (chains.length === 0) unattributed.push({ file: '-', line: 0, kind: 'truncated', message: 'no audit entries found in the files given' });
  for (const a of collector.accesses) {
    const c = byChain.get(a.chain);
    a.replica = c?.replica ?? null;
    a.verified = c !== undefined && c.status !== 'unverified' && a.seq <= c.verifiedThrough;
    if (c) c.accesses++;
  }
  const order = new Map(chains.map((c, i) => [c.chain, i]));
  collector.accesses.sort((x, y) => (order.get(x.chain) ?? 0) - (order.get(y.chain) ?? 0) || x.seq - y.seq);
  const complete = unattributed.length === 0 && chains.every((c) => c.status !== 'unverified');
  return { complete, subjectKeyIds: opts.pseudonymizers.map((p) => p.keyId), files: ordered, chains, unattributed, accesses: collector.accesses };
}

/** JSON: the report as is (no subject id in it, only the subject key ids). */
export function reportJson(r: AccessReport): string {
  return JSON.stringify(r, null, 2);
}

function cell(v: string | null | undefined): string {
  // Values come from the trail: printable text only, bounded, so a forged record cannot garble the table.
  const s = (v ?? '-').replace(/[\p{Cc}]/gu, '?');
  return s.length > 60 ? `${s.slice(0, 59)}…` : s;
}

const COLUMNS: [string, (a: Access) => string | null][] = [
  ['time', (a) => a.time],
  ['tenant', (a) => a.tenant],
  ['purpose', (a) => a.purpose],
  ['legal basis', (a) => a.legalBasis],
  ['decision', (a) => (a.code ? `${a.decision ?? '-'} ${a.code}` : a.decision)],
  ['masks', (a) => (a.masks.length ? a.masks.join(' ') : 'none') + (a.masking ? ` (${a.masking})` : '')],
  ['API/policy', (a) => `${a.apiVersion ?? '-'} ${a.policy ?? '-'}`],
  ['rule', (a) => a.rule],
  ['', (a) => (a.verified ? '' : 'UNVERIFIED')],
];

function table(rows: Access[]): string[] {
  const cells = rows.map((a) => COLUMNS.map(([, f]) => cell(f(a))));
  const widths = COLUMNS.map(([h], i) => Math.max(h.length, ...cells.map((r) => r[i]!.length)));
  const line = (r: string[]): string => `  ${r.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`.trimEnd();
  return [line(COLUMNS.map(([h]) => h)), ...cells.map(line)];
}

function chainLine(c: ReportedChain): string {
  const head = `${c.replica ?? '(unknown replica)'} chain ${c.chain}: ${c.status.toUpperCase()}`;
  const counts = c.records > 0 ? `, ${c.records} records, ${c.accesses} about this subject` : '';
  return `${head}${counts}${c.reason ? ` — ${c.reason}` : ''}`;
}

/** A readable report: the verdict first, then per replica and chain the accesses in sequence order. */
export function reportTable(r: AccessReport): string {
  const unverified = r.chains.filter((c) => c.status === 'unverified');
  const out = [
    `Access report: ${r.accesses.length} decision(s) about this subject's records by others, in ${r.chains.length} chain(s) of ${new Set(r.chains.map((c) => c.replica)).size} replica(s)`,
    r.complete
      ? 'COMPLETE: every chain verified (hash chain and signed checkpoints).'
      : `INCOMPLETE: ${unverified.length} chain(s) could not be verified${r.unattributed.length ? ` and ${r.unattributed.length} problem(s) belong to no chain` : ''}; records may be missing or altered. Do not hand this report out as complete.`,
  ];
  for (const p of r.unattributed) out.push(`  unreadable: ${problemText(p)}`);
  for (const c of r.chains) {
    out.push('', chainLine(c));
    const rows = r.accesses.filter((a) => a.chain === c.chain);
    if (rows.length > 0) out.push(...table(rows));
  }
  return out.join('\n');
}
