/**
 * Mutation tests: logs written by the real trail, every kind of tampering applied at random
 * positions, and verify must catch all of them (and point near the change) while accepting every
 * untouched log.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet } from 'jose';
import { canonicalJson, entryHash } from './canonical.js';
import type { SigningKey } from './keys.js';
import { newKey, writeLog } from './test-helpers.js';
import { verifyFiles } from './verify-files.js';
import type { VerifyReport } from './verify.js';

/** A small deterministic PRNG, so a failure can be replayed from its seed. */
function rng(seed: number): (n: number) => number {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

type Lines = string[];
interface Mutation {
  lines: Lines;
  /** 1-based lines the report may point at. */
  window: [number, number];
  /** Another range that is as right (a duplicated line reported at its original). */
  alsoAt?: [number, number];
}

const parse = (l: string): Record<string, unknown> => JSON.parse(l) as Record<string, unknown>;
const indexesOf = (lines: Lines, pred: (e: Record<string, unknown>) => boolean): number[] => lines.flatMap((l, i) => (pred(parse(l)) ? [i] : []));
const chained = (e: Record<string, unknown>): boolean => e.type !== 'checkpoint';

const MUTATIONS: Record<string, (lines: Lines, r: (n: number) => number, other: SigningKey) => Mutation> = {
  edited(lines, r) {
    const i = r(lines.length);
    const e = parse(lines[i]!);
    const field = e.type === 'decision' ? ['decision', 'tenant', 'rule', 'requestId', 'prev', 'seq'][r(6)]! : e.type === 'checkpoint' ? ['seq', 'hash', 'final'][r(3)]! : ['instance', 'kid', 'prev'][r(3)]!;
    const v = e[field];
    e[field] = typeof v === 'number' ? v + 1 : typeof v === 'boolean' ? !v : v === 'allow' ? 'deny' : v === 'deny' ? 'allow' : `${String(v)}x`;
    const out = [...lines];
    out[i] = JSON.stringify(e);
    // The predecessor is reported when the edit is to `prev`; a checkpoint in between is skipped.
    return { lines: out, window: [i - 1, i + 2] };
  },
  inserted(lines, r) {
    const from = r(lines.length);
    const src = lines[from]!;
    const at = r(lines.length + 1);
    const out = [...lines.slice(0, at), src, ...lines.slice(at)];
    // The copy and its original are identical, so either may be the one reported: a duplicated
    // chain-start is caught where the second of the two appears, which can be the original.
    const original = from < at ? from : from + 1;
    return { lines: out, window: [at, at + 2], alsoAt: [original, original + 2] };
  },
  deleted(lines, r) {
    const candidates = indexesOf(lines, chained);
    const i = candidates[r(candidates.length)]!;
    return { lines: lines.filter((_, k) => k !== i), window: [i, i + 1] };
  },
  reordered(lines, r) {
    const i = r(lines.length);
    let j = r(lines.length);
    while (j === i || lines[j] === lines[i]) j = r(lines.length);
    const out = [...lines];
    [out[i], out[j]] = [out[j]!, out[i]!];
    return { lines: out, window: [Math.min(i, j), Math.min(i, j) + 2] };
  },
  truncated(lines, r) {
    const text = lines.join('\n') + '\n';
    const cut = r(text.length - 1);
    return { lines: text.slice(0, cut).split('\n'), window: [0, Infinity] };
  },
  'bad-signature'(lines, r) {
    const cps = indexesOf(lines, (e) => e.type === 'checkpoint');
    const i = cps[r(cps.length)]!;
    const e = parse(lines[i]!);
    const jws = String(e.jws);
    const k = jws.length - 2 - r(20);
    e.jws = jws.slice(0, k) + (jws[k] === 'A' ? 'B' : 'A') + jws.slice(k + 1);
    const out = [...lines];
    out[i] = JSON.stringify(e);
    return { lines: out, window: [i + 1, i + 1] };
  },
  'unknown-key'(lines, r, other) {
    const cps = indexesOf(lines, (e) => e.type === 'checkpoint');
    const i = cps[r(cps.length)]!;
    const e = parse(lines[i]!);
    e.jws = other.signCompact({ chain: e.chain, seq: e.seq, hash: e.hash, time: e.time, final: e.final });
    e.kid = other.kid;
    const out = [...lines];
    out[i] = JSON.stringify(e);
    return { lines: out, window: [i + 1, i + 1] };
  },
  /** An attacker who edits a record and recomputes every later hash: only the signatures catch it. */
  'edited-rehashed'(lines, r) {
    const recs = indexesOf(lines, (e) => e.type === 'decision');
    const i = recs[r(recs.length)]!;
    const out = [...lines];
    const first = parse(out[i]!);
    first.decision = first.decision === 'allow' ? 'deny' : 'allow';
    let prevHash = '';
    const chain = first.chain;
    for (let k = i; k < out.length; k++) {
      const e = k === i ? first : parse(out[k]!);
      if (e.chain !== chain || e.type === 'chain-start') break;
      if (e.type === 'checkpoint') continue;
      if (k > i) e.prev = prevHash;
      out[k] = canonicalJson(e);
      prevHash = entryHash(e);
    }
    const nextCp = out.findIndex((l, k) => k > i && parse(l).type === 'checkpoint');
    return { lines: out, window: [i + 1, nextCp + 1] };
  },
};

void describe('audit verify: mutation tests', () => {
  let dir: string;
  let key: SigningKey;
  let other: SigningKey;
  let base: Lines;
  let keys: ReturnType<typeof createLocalJWKSet>;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-audit-'));
    key = newKey('EdDSA');
    other = newKey('EdDSA');
    keys = createLocalJWKSet(key.jwks());
    // Two runs of one replica in one file: the second chain references the first's last checkpoint.
    const [file] = await writeLog(dir, key, [{ records: 40, checkpointEvery: 7 }, { records: 25, checkpointEvery: 10 }]);
    base = readFileSync(file!, 'utf8').trimEnd().split('\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const check = async (lines: Lines, name: string): Promise<VerifyReport> => {
    const f = join(dir, `${name}.log`);
    writeFileSync(f, lines.length === 0 ? '' : lines.join('\n') + (lines.at(-1) === '' ? '' : '\n'));
    return verifyFiles([f], { keys, requireSealed: true });
  };

  void test('the untouched log verifies', async () => {
    const r = await check(base, 'untouched');
    assert.equal(r.intact, true, JSON.stringify(r.problem));
    assert.equal(r.chains.length, 2);
    assert.ok(r.chains.every((c) => c.sealed && c.unverifiedTail === 0));
  });

  for (const [kind, mutate] of Object.entries(MUTATIONS)) {
    void test(`${kind}: caught at every random position`, async () => {
      for (let seed = 1; seed <= 40; seed++) {
        const m = mutate(base, rng(seed * 7919 + kind.length), other);
        if (m.lines.join('\n') === base.join('\n')) continue;
        const r = await check(m.lines, `${kind}-${seed}`);
        assert.equal(r.intact, false, `${kind} seed ${seed} not detected`);
        const line = r.problem!.line;
        const within = (w: [number, number] | undefined): boolean => w !== undefined && line >= w[0] && line <= w[1];
        if (Number.isFinite(m.window[1]) && r.problem!.file !== '-') assert.ok(within(m.window) || within(m.alsoAt), `${kind} seed ${seed}: reported line ${line}, expected ${m.window[0]}..${m.window[1]} (${r.problem!.kind}: ${r.problem!.message})`);
      }
    });
  }

  void test('reports the kind for the plain cases', async () => {
    const recs = indexesOf(base, (e) => e.type === 'decision');
    const i = recs[5]!;
    const swapped = [...base];
    [swapped[i], swapped[i + 1]] = [swapped[i + 1]!, swapped[i]!];
    const cases: [string, Lines, string][] = [
      ['deleted', base.filter((_, k) => k !== i), 'deleted'],
      ['duplicate', [...base.slice(0, i + 1), base[i]!, ...base.slice(i + 1)], 'inserted'],
      ['swap', swapped, parse(base[i + 1]!).type === 'decision' ? 'reordered' : 'deleted'],
      ['final checkpoint dropped', base.slice(0, -1), 'truncated|unverified-tail'],
      ['bad JSON', [...base.slice(0, i), '{"v":1,', ...base.slice(i + 1)], 'edited'],
    ];
    for (const [name, lines, kind] of cases) {
      const r = await check(lines, `kind-${name}`);
      assert.ok(kind.split('|').includes(r.problem?.kind ?? ''), `${name}: ${JSON.stringify(r.problem)}`);
    }
  });

  void test('a crashed chain (no final checkpoint) passes by default with an unverified tail, and fails --require-sealed', async () => {
    // The crash is in the last chain (a cut in the first would break the second chain's link to it
    // instead); where its periodic checkpoints fall depends on timing, so without one the tail is
    // the whole last chain after its start.
    const start = base.findLastIndex((l) => parse(l).type === 'chain-start');
    const found = base.findLastIndex((l, i) => i > start && parse(l).type === 'checkpoint' && parse(l).final !== true && parse(base[i + 1] ?? '{}').type === 'decision');
    const cut = found > start ? found : start;
    const lines = [...base.slice(0, cut + 1), ...base.slice(cut + 1).filter((l) => parse(l).type !== 'checkpoint')];
    const f = join(dir, 'crashed.log');
    writeFileSync(f, lines.join('\n') + '\n');
    const lenient = await verifyFiles([f], { keys });
    assert.equal(lenient.intact, true, JSON.stringify(lenient.problem));
    assert.ok(lenient.warnings.some((w) => w.includes('unverified tail')));
    const strict = await verifyFiles([f], { keys, requireSealed: true });
    assert.equal(strict.problem?.kind, 'unverified-tail');
    // A crash before the last chain's first checkpoint: all of it is the unverified tail.
    const early = join(dir, 'crashed-early.log');
    writeFileSync(early, [...base.slice(0, start + 1), ...base.slice(start + 1).filter((l) => parse(l).type !== 'checkpoint')].join('\n') + '\n');
    const r = await verifyFiles([early], { keys });
    assert.equal(r.intact, true, JSON.stringify(r.problem));
    assert.ok(r.warnings.some((w) => w.includes('unverified tail')));
  });
});

void describe('audit verify: untouched logs of every shape', () => {
  const shapes: [string, 'EdDSA' | 'ES256', { records: number; checkpointEvery: number; maxFileBytes?: number }[]][] = [
    ['one record', 'EdDSA', [{ records: 1, checkpointEvery: 1000 }]],
    ['no records', 'ES256', [{ records: 0, checkpointEvery: 5 }]],
    ['checkpoint every record', 'ES256', [{ records: 30, checkpointEvery: 1 }]],
    ['rotated across files', 'EdDSA', [{ records: 120, checkpointEvery: 9, maxFileBytes: 8192 }]],
    ['three restarts with rotation', 'EdDSA', [{ records: 30, checkpointEvery: 4, maxFileBytes: 6000 }, { records: 10, checkpointEvery: 4, maxFileBytes: 6000 }, { records: 50, checkpointEvery: 13, maxFileBytes: 6000 }]],
  ];
  for (const [name, alg, runs] of shapes) {
    void test(name, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'portcullis-audit-'));
      try {
        const key = newKey(alg);
        const files = await writeLog(dir, key, runs);
        const r = await verifyFiles(files, { keys: createLocalJWKSet(key.jwks()), requireSealed: true });
        assert.equal(r.intact, true, JSON.stringify(r.problem));
        assert.equal(r.chains.length, runs.length);
        assert.equal(r.chains.reduce((n, c) => n + c.records, 0), runs.reduce((n, x) => n + x.records, 0));
        if (runs.some((x) => x.maxFileBytes)) assert.ok(files.length > 1, 'expected rotation');
        // A rotated file missing from the middle is caught.
        if (files.length > 2) {
          const r2 = await verifyFiles([files[0]!, ...files.slice(2)], { keys: createLocalJWKSet(key.jwks()), requireSealed: true });
          assert.equal(r2.intact, false);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
