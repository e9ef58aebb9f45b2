/**
 * Scale: load, compile, reload and edit costs with 10, 1,000 and 10,000 ApiPolicies, and the
 * latency of Checks that arrive while a reload or an edit is being compiled. Each size runs in
 * its own Node process (--expose-gc) so heap figures are not polluted by the previous size:
 *
 *   node --expose-gc dist/test/bench/scale.js <policies> <iterations>   → one JSON line
 *
 * What is measured (all in process, one event loop, as in `serve`):
 * - load: reading the YAML files and validating them against the CRD schemas (folder mode only);
 * - compile: PolicyStore.apply of every object, cold, in one go (what startup and the cluster
 *   source's first sync cost);
 * - sliced reload: the same cold compile through applyAsync (4 ms slices) while Checks run;
 * - one-policy edit: one ApiPolicy's generation changes at full size, store.apply until the new
 *   snapshot is swapped in; and the folder source's reload after one file (500 policies) changes;
 * - Check latency: 4 workers, each request "arrives" (setImmediate, as a socket read would) and
 *   is timed from arrival to decision, so time spent waiting behind a compile slice counts: idle,
 *   during the sliced cold reload, during back-to-back one-policy edits, and — for contrast —
 *   during the old model's synchronous full recompile.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { runInNewContext } from 'node:vm';
import { setFlagsFromString } from 'node:v8';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { FolderPolicySource } from '../../extauthz/policy/folder-source.js';
import { loadPolicyDir } from '../../extauthz/policy/load.js';
import type { ApiPolicyObject, PolicySources } from '../../extauthz/policy/model.js';
import type { PolicySnapshot } from '../../extauthz/policy/snapshot.js';
import { generationFingerprint, PolicyStore } from '../../extauthz/policy/store.js';
import { SchemaValidator } from '../../extauthz/policy/validate-schema.js';
import { DecisionPipeline } from '../../extauthz/pipeline/pipeline.js';
import { MemoryBackend, QuotaEnforcer } from '../../extauthz/quota/index.js';
import { fmt, percentile, type Table } from './table.js';
import { createWorkload, type Workload } from './workload.js';

export interface ScalePoint {
  policies: number;
  loadMs: number;
  compileMs: number;
  compileCpuMs: number;
  /** The same cold compile when every policy has a condition of its own (hand-written, not stamped from one template). */
  compileDistinctCpuMs: number;
  slicedReloadMs: number;
  /** Median of 10 one-policy edits, wall and CPU. */
  editMs: number;
  editCpuMs: number;
  folderEditMs: number;
  heapMB: number;
  rssMB: number;
  p50us: number;
  p99us: number;
  p99ReloadUs: number;
  p99EditUs: number;
  p99SyncReloadUs: number;
  /** The longest any one Check waited, arrival to decision: idle, during the sliced reload, during the edits. */
  maxUs: number;
  maxReloadUs: number;
  maxEditUs: number;
  /** The longest the sliced reload, and any of the edits, held the event loop at once (GC pauses inside included). */
  sliceReloadMs: number;
  sliceEditMs: number;
  /** The main thread's CPU time in those slices (the wall time includes time the machine ran other processes). */
  sliceReloadCpuMs: number;
  sliceEditCpuMs: number;
  /** Load average (1 min) when the size started and ended: wall times on a shared machine depend on it. */
  loadBefore: number;
  loadAfter: number;
}

const WORKERS = 4;

/**
 * A full collection, also when node was not started with --expose-gc (the smoke test runs this
 * in the test runner): without one, a collection between two readings makes the growth negative.
 */
const collect: () => void = (() => {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed) return exposed;
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
})();

function heapMB(): number {
  collect();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

const ms = (t0: number): number => performance.now() - t0;
/** CPU time of this process since `from` (user + system), ms: on a shared machine, closer to what the work costs than wall time. */
const cpuMs = (from: NodeJS.CpuUsage): number => {
  const d = process.cpuUsage(from);
  return (d.user + d.system) / 1000;
};
const median = (xs: number[]): number => p(xs, 50);

/** As the cluster source sees them: every object with a uid and a generation. */
function asCluster(sources: PolicySources): PolicySources {
  const stamp = <T extends { metadata: { name: string; namespace: string; uid?: string; generation?: number } }>(o: T): T => ({ ...o, metadata: { ...o.metadata, uid: `${o.metadata.namespace}/${o.metadata.name}`, generation: 1 } });
  return { policies: sources.policies.map(stamp), tenants: sources.tenants.map(stamp), secrets: sources.secrets };
}

/** Every policy with a first-rule condition of its own, as hand-written policies would have. */
function distinct(sources: PolicySources): PolicySources {
  const policies = sources.policies.map((p, i): ApiPolicyObject => ({ ...p, spec: { ...p.spec, rules: p.spec.rules.map((r, j) => (j === 0 ? { ...r, when: `${r.when ?? 'true'} && ${i} >= 0` } : r)) } }));
  return { ...sources, policies };
}

/** The same set with policy i at a new generation (its first rule's condition changed). */
function withEdit(sources: PolicySources, i: number, generation: number): PolicySources {
  const policies = [...sources.policies];
  const p = policies[i]!;
  const rules = p.spec.rules.map((r, j) => (j === 0 ? { ...r, when: `${r.when ?? 'true'} && ${generation} > 0` } : r));
  policies[i] = { ...p, metadata: { ...p.metadata, generation }, spec: { ...p.spec, rules } } satisfies ApiPolicyObject;
  return { ...sources, policies };
}

interface Load {
  latencies: number[];
  stop(): Promise<void>;
}

/** WORKERS concurrent request streams against whatever snapshot is current; latency from arrival to decision. */
function startLoad(pipeline: DecisionPipeline, w: Workload): Load {
  const latencies: number[] = [];
  let running = true;
  let n = 0;
  const worker = async (): Promise<void> => {
    while (running) {
      const arrived = performance.now();
      await new Promise<void>((r) => setImmediate(r));
      await pipeline.check(w.requests[n++ % w.requests.length]!);
      latencies.push((performance.now() - arrived) * 1000);
    }
  };
  const workers = Array.from({ length: WORKERS }, worker);
  return {
    latencies,
    stop: async () => {
      running = false;
      await Promise.all(workers);
    },
  };
}

const p = (xs: number[], q: number): number => percentile([...xs].sort((a, b) => a - b), q);

async function during(pipeline: DecisionPipeline, w: Workload, work: () => Promise<unknown>): Promise<number[]> {
  const load = startLoad(pipeline, w);
  await new Promise((r) => setTimeout(r, 20)); // the streams are running before the work starts
  await work();
  await load.stop();
  return load.latencies;
}

async function idle(pipeline: DecisionPipeline, w: Workload, checks: number): Promise<number[]> {
  const load = startLoad(pipeline, w);
  while (load.latencies.length < checks) await new Promise((r) => setTimeout(r, 5));
  await load.stop();
  return load.latencies;
}

/** The folder source's reload after one file of policies is rewritten (new condition in one policy). */
async function folderEdit(w: Workload): Promise<number> {
  const src = new FolderPolicySource(w.dir);
  if (src.reload().length > 0) throw new Error('workload folder does not load');
  const file = join(w.dir, '10-policies-00000.yaml');
  writeFileSync(file, readFileSync(file, 'utf8').replace("principal.claims.acr == 'urn:loa:high'", "principal.claims.acr == 'urn:loa:high' && true"));
  const t0 = performance.now();
  const problems = await src.reloadAsync();
  const elapsed = ms(t0);
  if (problems.length > 0) throw new Error(problems[0]!.format());
  return elapsed;
}

export async function measureScale(policies: number, iterations: number): Promise<ScalePoint> {
  const loadBefore = loadavg()[0] ?? 0;
  const w = await createWorkload(policies, 100);
  try {
    let t0 = performance.now();
    const loaded = loadPolicyDir(w.dir, new SchemaValidator());
    const loadMs = ms(t0);
    if (loaded.problems.length > 0) throw new Error(loaded.problems[0]!.format());
    const sources = asCluster(loaded.sources);
    const before = heapMB();
    const store = new PolicyStore({ fingerprint: generationFingerprint });
    t0 = performance.now();
    const cpu0 = process.cpuUsage();
    const first = store.apply(sources);
    const compileMs = ms(t0);
    const compileCpuMs = cpuMs(cpu0);
    if (first.problems.length > 0) throw new Error(first.problems[0]!.format());
    const heap = heapMB() - before;
    let snapshot: PolicySnapshot = first.snapshot;
    const pipeline = new DecisionPipeline({ snapshot: () => snapshot, quota: new QuotaEnforcer({ backend: new MemoryBackend() }) });
    for (const r of w.requests) await pipeline.check(r); // warm-up: JIT, every token verified once
    const base = await idle(pipeline, w, iterations);

    let slicedReloadMs = 0;
    let sliceReloadMs = 0;
    let sliceReloadCpuMs = 0;
    const reload = await during(pipeline, w, async () => {
      const t = performance.now();
      const { stats } = await new PolicyStore({ fingerprint: generationFingerprint }).applyAsync(sources);
      slicedReloadMs = ms(t);
      [sliceReloadMs, sliceReloadCpuMs] = [stats.longestSliceMs, stats.longestSliceCpuMs];
    });

    // One-policy edits: the swap latency (sync, nothing else running), then back to back under load.
    let generation = 1;
    const walls: number[] = [];
    const cpus: number[] = [];
    for (let k = 0; k < 10; k++) {
      const next = withEdit(sources, Math.floor(policies / 2), ++generation);
      t0 = performance.now();
      const c0 = process.cpuUsage();
      const edited = store.apply(next);
      walls.push(ms(t0));
      cpus.push(cpuMs(c0));
      if (edited.stats.policiesCompiled !== 1) throw new Error(`an edit compiled ${edited.stats.policiesCompiled} policies`);
      snapshot = edited.snapshot;
    }
    let current = sources;
    let sliceEditMs = 0;
    let sliceEditCpuMs = 0;
    const edits = await during(pipeline, w, async () => {
      for (let k = 0; k < 50; k++) {
        current = withEdit(current, (k * 7919) % policies, ++generation);
        const r = await store.applyAsync(current);
        snapshot = r.snapshot;
        sliceEditMs = Math.max(sliceEditMs, r.stats.longestSliceMs);
        sliceEditCpuMs = Math.max(sliceEditCpuMs, r.stats.longestSliceCpuMs);
        await new Promise((res) => setImmediate(res));
      }
    });

    // The old model for contrast: every change recompiled every policy in one synchronous call.
    const sync = await during(pipeline, w, async () => {
      new PolicyStore().apply(sources);
    });

    const folderEditMs = await folderEdit(w);
    const many = distinct(sources);
    const c1 = process.cpuUsage();
    const other = new PolicyStore({ fingerprint: generationFingerprint }).apply(many);
    const compileDistinctCpuMs = cpuMs(c1);
    if (other.problems.length > 0) throw new Error(other.problems[0]!.format());
    return {
      policies, loadMs, compileMs, compileCpuMs, compileDistinctCpuMs, slicedReloadMs, editMs: median(walls), editCpuMs: median(cpus), folderEditMs, heapMB: heap, rssMB: process.memoryUsage().rss / 2 ** 20,
      p50us: p(base, 50), p99us: p(base, 99), p99ReloadUs: p(reload, 99), p99EditUs: p(edits, 99), p99SyncReloadUs: p(sync, 99),
      maxUs: Math.max(...base), maxReloadUs: Math.max(...reload), maxEditUs: Math.max(...edits), sliceReloadMs, sliceEditMs, sliceReloadCpuMs, sliceEditCpuMs, loadBefore, loadAfter: loadavg()[0] ?? 0,
    };
  } finally {
    w.remove();
  }
}

export const SCALE_HEADERS = [
  'policies', 'load avg', 'load YAML ms', 'compile ms (CPU)', 'distinct compile CPU ms', 'sliced reload ms', 'one-policy edit ms (CPU)', 'folder one-file edit ms', 'heap MB', 'RSS MB',
  'Check p50 µs', 'p99 / max idle µs', 'p99 / max during reload µs', 'p99 / max during edits µs', 'longest slice reload / edit ms (CPU)', 'p99 during sync recompile µs',
];

export function scaleRow(s: ScalePoint): string[] {
  const pm = (p99: number, max: number): string => `${fmt(p99, 0)} / ${fmt(max, 0)}`;
  return [
    s.policies.toLocaleString('en-US'), `${fmt(s.loadBefore, 1)}–${fmt(s.loadAfter, 1)}`, fmt(s.loadMs, 0), `${fmt(s.compileMs, 0)} (${fmt(s.compileCpuMs, 0)})`, fmt(s.compileDistinctCpuMs, 0), fmt(s.slicedReloadMs, 0), `${fmt(s.editMs, 1)} (${fmt(s.editCpuMs, 1)})`, fmt(s.folderEditMs, 0), fmt(s.heapMB, 1), fmt(s.rssMB, 0),
    fmt(s.p50us, 1), pm(s.p99us, s.maxUs), pm(s.p99ReloadUs, s.maxReloadUs), pm(s.p99EditUs, s.maxEditUs), `${fmt(s.sliceReloadMs, 1)} (${fmt(s.sliceReloadCpuMs, 1)}) / ${fmt(s.sliceEditMs, 1)} (${fmt(s.sliceEditCpuMs, 1)})`, fmt(s.p99SyncReloadUs, 0),
  ];
}

export function scaleTable(sizes: number[], iterations: number): Table {
  const self = fileURLToPath(import.meta.url);
  const rows = sizes.map((n) => {
    const r = spawnSync(process.execPath, ['--expose-gc', self, String(n), String(iterations)], { encoding: 'utf8', maxBuffer: 1 << 20 });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    if (r.status !== 0 || !line.startsWith('{')) return [n.toLocaleString('en-US'), '', `failed: ${(r.stderr || line).split('\n')[0]}`, ...SCALE_HEADERS.slice(3).map(() => '')];
    return scaleRow(JSON.parse(line) as ScalePoint);
  });
  return {
    title: `Scale: ApiPolicies (3 CEL rules each), in process, ${WORKERS} concurrent request streams`,
    headers: SCALE_HEADERS,
    rows,
    notes: [
      'load avg: the 1-minute load average when the size started and ended (2 cores, shared). load YAML: reading and schema-validating the folder (folder mode only).',
      'compile: PolicyStore.apply of every object, cold, one synchronous call (startup, first cluster sync); the workload stamps every policy from one template, so identical rules compile once.',
      'distinct compile: the same, every policy with a first-rule condition of its own (what hand-written policies cost); CPU time.',
      'sliced reload: the same cold compile through applyAsync (4 ms slices) while Checks run. one-policy edit: median of 10, one generation changes at full size, apply until the new snapshot is swapped in.',
      'Wall times on a shared machine include time other processes held the CPU; the CPU figures in brackets are this process\'s own CPU time for the same work.',
      'folder one-file edit: the folder source re-reads the one changed file (500 policies) and swaps. heap: growth after a forced GC for the compiled store.',
      'Check latencies are from arrival (setImmediate) to decision, so waiting behind a compile slice counts; max is the longest single Check (the stall). During edits: 50 one-policy edits back to back through applyAsync.',
      'longest slice: the longest the reload (or any edit) held the event loop at once, GC pauses inside it included; in brackets the main thread\'s CPU time in it (the wall time also counts time the machine gave other processes).',
      'The last column is the old model (every change recompiled everything synchronously), for contrast.',
    ],
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const n = Number(process.argv[2] ?? 10);
  const it = Number(process.argv[3] ?? 2000);
  measureScale(n, it).then((pt) => console.log(JSON.stringify(pt)), (e: unknown) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exitCode = 1;
  });
}
