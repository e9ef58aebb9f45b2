/**
 * Scale: compile time, memory and in-process Check latency with 10, 1,000 and 10,000
 * ApiPolicies. Each size runs in its own Node process (--expose-gc) so heap figures are not
 * polluted by the previous size:
 *
 *   node --expose-gc dist/test/bench/scale.js <policies> <iterations>   → one JSON line
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { compileFolder } from '../../extauthz/policy/folder-source.js';
import { runPipeline } from './phases.js';
import { fmt, percentile, type Table } from './table.js';
import { createWorkload } from './workload.js';

export interface ScalePoint {
  policies: number;
  compileMs: number;
  heapMB: number;
  rssMB: number;
  p50us: number;
  p99us: number;
}

function heapMB(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

export async function measureScale(policies: number, iterations: number): Promise<ScalePoint> {
  const w = await createWorkload(policies, 100);
  try {
    const before = heapMB();
    const t0 = process.hrtime.bigint();
    const result = compileFolder(w.dir);
    const compileMs = Number(process.hrtime.bigint() - t0) / 1e6;
    if (result.problems.length > 0) throw new Error(result.problems[0]!.format());
    const snapshot = result.snapshot;
    const heap = heapMB() - before;
    const run = await runPipeline(snapshot, w, iterations, true);
    const totals = [...(run.samples.get('total (check)') ?? [])].sort((a, b) => a - b);
    return { policies, compileMs, heapMB: heap, rssMB: process.memoryUsage().rss / 2 ** 20, p50us: percentile(totals, 50), p99us: percentile(totals, 99) };
  } finally {
    w.remove();
  }
}

export function scaleTable(sizes: number[], iterations: number): Table {
  const self = fileURLToPath(import.meta.url);
  const rows = sizes.map((n) => {
    const r = spawnSync(process.execPath, ['--expose-gc', self, String(n), String(iterations)], { encoding: 'utf8', maxBuffer: 1 << 20 });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    if (r.status !== 0 || !line.startsWith('{')) return [n.toLocaleString('en-US'), `failed: ${(r.stderr || line).split('\n')[0]}`, '', '', '', ''];
    const p = JSON.parse(line) as ScalePoint;
    return [p.policies.toLocaleString('en-US'), fmt(p.compileMs, 0), fmt(p.heapMB, 1), fmt(p.rssMB, 0), fmt(p.p50us, 1), fmt(p.p99us, 1)];
  });
  return {
    title: `Scale: ApiPolicies (3 CEL rules each), in process, ${iterations.toLocaleString('en-US')} Checks over the mix`,
    headers: ['policies', 'load+compile ms', 'snapshot heap MB', 'process RSS MB', 'Check p50 µs', 'Check p99 µs'],
    rows,
    notes: ['Compile time covers reading the YAML files, schema validation and compilation (what a reload costs); heap is the growth after a forced GC.'],
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const n = Number(process.argv[2] ?? 10);
  const it = Number(process.argv[3] ?? 2000);
  measureScale(n, it).then((p) => console.log(JSON.stringify(p)), (e: unknown) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exitCode = 1;
  });
}
