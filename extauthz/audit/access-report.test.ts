/**
 * The citizen's access report on logs written by the real trail: two replicas, restarts and
 * rotation, then tampering of every kind. A clean log gives the complete list (the subject's own
 * accesses and other subjects' records left out); any tampering flags the chain it touched, with
 * the reason, and makes the report incomplete: never silently incomplete data.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet } from 'jose';
import type { CompiledPolicy } from '../policy/compile.js';
import type { Decision } from '../pipeline/decision.js';
import { main as run } from '../cli/main.js';
import { accessReport, orderLogFiles, reportTable, type AccessReport } from './access-report.js';
import { Chain } from './chain.js';
import { canonicalJson } from './canonical.js';
import { SigningKey } from './keys.js';
import { Pseudonymizer } from './pseudonym.js';
import { FileSink, findLastCheckpoint, rotatedFiles } from './sinks.js';
import { AuditTrail } from './trail.js';

const CITIZEN = 'citizen-1984';
const SUBJECT_KEY = Buffer.alloc(32, 5);
const POLICY = { version: 'v2', auditFailure: 'deny' } as unknown as CompiledPolicy;
const TAX_AUDIT = { name: 'tax-audit', legalBasis: 'Tax Code s. 12(3)', description: null };

interface Access {
  tenant: string;
  type: 'agency' | 'consumer' | 'partner';
  subject: string;
  resource: string;
  allowed?: boolean;
  code?: Decision['code'];
}

function decision(id: string, a: Access): Decision {
  const allowed = a.allowed ?? true;
  return {
    requestId: id,
    allowed,
    status: allowed ? 200 : 403,
    code: allowed ? null : (a.code ?? 'FORBIDDEN'),
    reason: '',
    policy: 'c2g/citizen-records',
    rule: a.type === 'consumer' ? 'citizen-reads-own-record' : 'agency-reads-record',
    principal: { type: a.type, tenant: a.tenant, namespace: 'c2g', subject: a.subject, method: a.type === 'consumer' ? 'jwt' : 'mtls' },
    headers: {},
    removeHeaders: [],
    responseHeaders: {},
    metadata: {},
    trace: [],
    audit: { method: 'GET', host: 'records.example', pathTemplate: '/v2/citizens/{id}/records', sourceIp: '198.51.100.7', masks: allowed ? ['$.records[*].taxId'] : [], ...(a.type === 'agency' && allowed ? { purpose: TAX_AUDIT } : {}), resource: a.resource },
  };
}

/** The accesses of one run; every fifth is an agency reading CITIZEN, the rest noise. */
function runAccesses(n: number, tenant: string): Access[] {
  return Array.from({ length: n }, (_, i): Access => {
    if (i % 5 === 0) return { tenant, type: 'agency', subject: `spiffe://gov.example/ns/${tenant}/sa/a`, resource: CITIZEN };
    if (i % 5 === 1) return { tenant: 'citizen-app', type: 'consumer', subject: CITIZEN, resource: CITIZEN };
    if (i % 5 === 2) return { tenant, type: 'agency', subject: `spiffe://gov.example/ns/${tenant}/sa/a`, resource: `citizen-${2000 + i}` };
    if (i % 5 === 3) return { tenant, type: 'agency', subject: `spiffe://gov.example/ns/${tenant}/sa/a`, resource: CITIZEN, allowed: false, code: 'PURPOSE_REQUIRED' };
    return { tenant: 'citizen-app', type: 'consumer', subject: `citizen-${3000 + i}`, resource: `citizen-${3000 + i}` };
  });
}

/** One replica: runs (restarts) into dir/audit.log, rotated past maxFileBytes, written by the real trail. */
async function writeReplica(dir: string, instance: string, key: SigningKey, log: { runs: Access[][]; maxFileBytes: number }): Promise<string[]> {
  const { runs, maxFileBytes } = log;
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'audit.log');
  let n = 0;
  for (const accesses of runs) {
    const sink = await FileSink.open(path, maxFileBytes);
    const pseudo = new Pseudonymizer(SUBJECT_KEY);
    const chain = new Chain({ instance, key, subjectKeyId: pseudo.keyId, previous: findLastCheckpoint(path) });
    // Strict mode, one record at a time: each record is its own write, so the log's shape
    // (a checkpoint every 6 records and before each rotation) does not depend on the machine's load.
    const trail = new AuditTrail({ chain, pseudonymizer: pseudo, sinks: [sink], mode: 'strict', checkpointEvery: 6, checkpointSeconds: 3600 });
    for (const a of accesses) await trail.record(decision(`${instance}-${n++}`, a), POLICY);
    await trail.close();
  }
  return [...rotatedFiles(path), path];
}

const expectedPerRun = (n: number): number => Array.from({ length: n }, (_, i) => i % 5).filter((k) => k === 0 || k === 3).length;

describe('audit access-report', () => {
  let root: string;
  let key: SigningKey;
  let keys: ReturnType<typeof createLocalJWKSet>;
  let a: string[];
  let b: string[];
  const RUNS_A = [runAccesses(23, 'dept-revenue'), runAccesses(17, 'dept-revenue')];
  const RUNS_B = [runAccesses(21, 'dept-health')];
  const EXPECTED = expectedPerRun(23) + expectedPerRun(17) + expectedPerRun(21);
  const pseudonymizers = [new Pseudonymizer(SUBJECT_KEY)];

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'portcullis-report-'));
    key = SigningKey.generate('EdDSA');
    keys = createLocalJWKSet(key.jwks());
    a = await writeReplica(join(root, 'a'), 'replica-a', key, { runs: RUNS_A, maxFileBytes: 6000 });
    b = await writeReplica(join(root, 'b'), 'replica-b', key, { runs: RUNS_B, maxFileBytes: 5000 });
    writeFileSync(join(root, 'jwks.json'), JSON.stringify(key.jwks()));
    writeFileSync(join(root, 'subject.key'), SUBJECT_KEY);
  });

  after(() => (process.env.KEEP ? console.log(root) : rmSync(root, { recursive: true, force: true })));

  /** A copy of both replicas' files with one change applied to one file's lines. */
  function tampered(name: string, change: (files: { a: string[]; b: string[] }) => void): string[] {
    const dir = join(root, name);
    const copy = (files: string[], sub: string): string[] =>
      files.map((f) => {
        mkdirSync(join(dir, sub), { recursive: true });
        const to = join(dir, sub, f.slice(f.lastIndexOf('/') + 1));
        copyFileSync(f, to);
        return to;
      });
    const files = { a: copy(a, 'a'), b: copy(b, 'b') };
    change(files);
    return [...files.a, ...files.b].filter((f) => readdirSync(join(f, '..')).includes(f.slice(f.lastIndexOf('/') + 1)));
  }

  const lines = (f: string): string[] => readFileSync(f, 'utf8').trimEnd().split('\n');
  const decisions = (f: string): number => lines(f).filter((l) => l.includes('"type":"decision"')).length;
  /** The replica's last file that holds decisions (rotation can leave the live file with a checkpoint only). */
  const lastWithDecisions = (files: string[]): string => files.filter((f) => decisions(f) > 2).at(-1)!;
  /**
   * Cuts a replica's log (all its files, in order) after the last checkpoint that is not the
   * final one, keeping `extra` records after it, as a truncation would. Rotation can put the
   * final checkpoint in any file, so the cut is found on the log as a whole.
   */
  const cutTail = (files: string[], extra: number): void => {
    const all = files.flatMap((file) => readFileSync(file, 'utf8').split('\n').filter((l) => l !== '').map((line) => ({ file, line })));
    const isCp = (l: string): boolean => l.includes('"type":"checkpoint"');
    const at = all.findLastIndex((e, i) => isCp(e.line) && !e.line.includes('"final":true') && all.slice(i + 1, i + 1 + extra).every((n) => n.line.includes('"type":"decision"')) && all.length > i + extra);
    assert.ok(at > 0, 'a checkpoint to cut after');
    const kept = all.slice(0, at + 1 + extra);
    for (const file of files) writeFileSync(file, kept.filter((e) => e.file === file).map((e) => e.line + '\n').join(''));
  };
  void test('every rotated file ends with a checkpoint (the tail cases below rely on it)', () => {
    for (const f of [...a.slice(0, -1), ...b.slice(0, -1)]) assert.ok(lines(f).at(-1)!.includes('"type":"checkpoint"'), f);
  });
  const put = (f: string, ls: string[]): void => writeFileSync(f, ls.join('\n') + '\n');
  const report = (files: string[]): Promise<AccessReport> => accessReport(files, { subject: CITIZEN, pseudonymizers, keys });
  const unverifiedChains = (r: AccessReport): string[] => r.chains.filter((c) => c.status === 'unverified').map((c) => c.chain);

  test('the generated log really is rotated, restarted and multi-replica', () => {
    assert.ok(a.length >= 3, `replica a has ${a.length} files`);
    assert.ok(b.length >= 2, `replica b has ${b.length} files`);
  });

  test('clean log: complete, every chain verified, exactly the accesses by others, in chain and sequence order', async () => {
    const r = await report([...b, ...a]);
    assert.equal(r.complete, true, reportTable(r));
    assert.deepEqual(r.chains.map((c) => [c.replica, c.status]), [['replica-a', 'verified'], ['replica-a', 'verified'], ['replica-b', 'verified']]);
    assert.equal(r.accesses.length, EXPECTED);
    assert.ok(r.accesses.every((x) => x.verified && x.principalType === 'agency'), 'only agencies, never the subject itself');
    assert.deepEqual(new Set(r.accesses.map((x) => x.tenant)), new Set(['dept-revenue', 'dept-health']));
    // Other subjects' records are not listed: every request id listed is one of the CITIZEN agency accesses.
    const ids = new Set(r.accesses.map((x) => x.requestId));
    assert.equal(ids.size, EXPECTED);
    const first = r.accesses[0]!;
    assert.deepEqual([first.purpose, first.legalBasis, first.decision, first.apiVersion, first.masks], ['tax-audit', 'Tax Code s. 12(3)', 'allow', 'v2', ['$.records[*].taxId']]);
    assert.ok(r.accesses.some((x) => x.decision === 'deny' && x.code === 'PURPOSE_REQUIRED'));
    for (const c of r.chains) {
      const seqs = r.accesses.filter((x) => x.chain === c.chain).map((x) => x.seq);
      assert.deepEqual(seqs, [...seqs].sort((p, q) => p - q));
    }
    assert.deepEqual([...new Set(r.accesses.map((x) => x.replica))], ['replica-a', 'replica-b']);
    assert.ok(!JSON.stringify(r).includes(CITIZEN), 'the subject id is never written');
  });

  test('files in any order: rotated files are put before the live file of each log', () => {
    const shuffled = [a.at(-1)!, ...b.slice().reverse(), ...a.slice(0, -1).reverse()];
    assert.deepEqual(orderLogFiles(shuffled), [...a, ...b]);
  });

  // name, change, expected reason, replica touched, records the change may take away (a cut or a missing file: any).
  const cases: [string, (f: { a: string[]; b: string[] }) => void, RegExp, 'a' | 'b', number][] = [
    ['a modified record', (f) => {
      const file = f.a[0]!;
      const ls = lines(file);
      const i = ls.findIndex((l) => l.includes('"decision":"allow"') && l.includes('"principalType":"agency"'));
      const e = JSON.parse(ls[i]!) as Record<string, unknown>;
      e.legalBasis = 'none';
      ls[i] = canonicalJson(e);
      put(file, ls);
    }, /^edited/, 'a', 0],
    ['a deleted record', (f) => {
      const file = lastWithDecisions(f.b);
      const ls = lines(file);
      const i = ls.findIndex((l, k) => k > 1 && l.includes('"type":"decision"'));
      put(file, ls.filter((_, k) => k !== i));
    }, /^(deleted|reordered)/, 'b', 1],
    ['reordered records', (f) => {
      const file = lastWithDecisions(f.a);
      const ls = lines(file);
      const i = ls.findIndex((l, k) => k > 1 && l.includes('"type":"decision"') && ls[k + 1]?.includes('"type":"decision"'));
      [ls[i], ls[i + 1]] = [ls[i + 1]!, ls[i]!];
      put(file, ls);
    }, /^(deleted|reordered|edited|inserted)/, 'a', 0],
    ['a truncated tail (records after the last checkpoint)', (f) => {
      // Two records after a checkpoint survive the cut: a tail no signature covers.
      cutTail(f.b, 2);
    }, /not covered by a signature/, 'b', EXPECTED],
    ['a tail cut after a checkpoint (no final checkpoint)', (f) => {
      cutTail(f.b, 0);
    }, /no final checkpoint/, 'b', EXPECTED],
    ['a missing rotated file', (f) => {
      rmSync(f.a[0]!);
      // The file held the start of the first run's chain (or all of it, caught through the next chain's link).
    }, /^deleted.*(without its chain-start|not among the files given)/, 'a', EXPECTED],
    ['a malformed line', (f) => {
      const file = f.b[0]!;
      const ls = lines(file);
      ls.splice(3, 1, '{"this is": not json');
      put(file, ls);
    }, /unreadable line|^(deleted|edited)/, 'b', 1],
  ];
  for (const [name, change, reason, replica, mayLose] of cases) {
    test(`tampering flagged per chain, with the reason, never silently: ${name}`, async () => {
      const r = await report(tampered(name.replace(/\W+/g, '-'), change));
      assert.equal(r.complete, false, reportTable(r));
      const flagged = r.chains.filter((c) => c.status === 'unverified');
      assert.ok(flagged.length >= 1);
      assert.ok(flagged.some((c) => reason.test(c.reason ?? '')), flagged.map((c) => c.reason).join('\n'));
      // The other replica's chains still verify: the flag is per chain.
      const other = replica === 'a' ? 'replica-b' : 'replica-a';
      assert.ok(r.chains.filter((c) => c.replica === other).every((c) => c.status === 'verified'), reportTable(r));
      // Records of a flagged chain are never presented as verified, and are not dropped either
      // (only those a deletion, a cut or a missing file took away are gone).
      const bad = new Set(unverifiedChains(r));
      assert.ok(r.accesses.filter((x) => bad.has(x.chain)).every((x) => !x.verified));
      assert.ok(r.accesses.filter((x) => !bad.has(x.chain)).every((x) => x.verified));
      assert.ok(r.accesses.length >= EXPECTED - mayLose && r.accesses.length <= EXPECTED, `${r.accesses.length} listed of ${EXPECTED}`);
      assert.match(reportTable(r), /INCOMPLETE: \d+ chain\(s\) could not be verified/);
    });
  }

  test('a forged file (a chain signed with a key the reader does not trust) is flagged and its accesses unverified', async () => {
    const forger = SigningKey.generate('EdDSA');
    const files = await writeReplica(join(root, 'forged'), 'replica-a', forger, { runs: [runAccesses(6, 'dept-revenue')], maxFileBytes: 1 << 20 });
    const r = await report([...a, ...b, ...files]);
    assert.equal(r.complete, false);
    const forged = r.chains.find((c) => c.reason?.startsWith('unknown-key'));
    assert.ok(forged, reportTable(r));
    assert.ok(r.accesses.filter((x) => x.chain === forged.chain).every((x) => !x.verified));
    assert.equal(r.accesses.filter((x) => x.verified).length, EXPECTED);
  });

  test('another subject key: the chains cannot be searched, and the report says so', async () => {
    const r = await accessReport([...a, ...b], { subject: CITIZEN, pseudonymizers: [new Pseudonymizer(Buffer.alloc(32, 6))], keys });
    assert.equal(r.complete, false);
    assert.equal(r.accesses.length, 0);
    assert.ok(r.chains.every((c) => c.status === 'unverified' && /not among the keys given/.test(c.reason ?? '')));
  });

  test('an open chain counts as unverified unless --allow-open', async () => {
    // Cut right after a checkpoint: every record left is covered, but there is no final checkpoint.
    const files = tampered('open', (f) => cutTail(f.b, 0));
    const strict = await report(files);
    assert.equal(strict.complete, false);
    const open = await accessReport(files, { subject: CITIZEN, pseudonymizers, keys, allowOpen: true });
    assert.equal(open.complete, true, reportTable(open));
    assert.ok(open.chains.some((c) => c.status === 'open'));
  });

  test('CLI: table and JSON, exit 0 when complete and 1 when a chain is unverified', async () => {
    const io = (): { out: string[]; err: string[]; io: { out: (s: string) => void; err: (s: string) => void } } => {
      const out: string[] = [];
      const err: string[] = [];
      return { out, err, io: { out: (s) => void out.push(s), err: (s) => void err.push(s) } };
    };
    const base = ['audit', 'access-report', '--subject', CITIZEN, '--subject-key-file', join(root, 'subject.key'), '--jwks', join(root, 'jwks.json')];
    const t = io();
    assert.equal(await run([...base, ...a, ...b], t.io), 0, t.err.join('\n'));
    assert.match(t.out.join('\n'), /COMPLETE: every chain verified/);
    assert.match(t.out.join('\n'), /dept-revenue\s+tax-audit\s+Tax Code s\. 12\(3\)\s+allow/);
    const j = io();
    assert.equal(await run([...base, '--format', 'json', ...a, ...b], j.io), 0);
    assert.equal((JSON.parse(j.out.join('')) as AccessReport).accesses.length, EXPECTED);
    const bad = io();
    assert.equal(await run([...base, ...a.slice(1), ...b], bad.io), 1);
    assert.match(bad.out.join('\n'), /INCOMPLETE/);
    const usage = io();
    assert.equal(await run(['audit', 'access-report', '--subject', CITIZEN, ...a], usage.io), 2);
  });
});
