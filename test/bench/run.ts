/**
 * `make bench`: every benchmark, one table each, then the chart.
 *
 *   node dist/test/bench/run.js [--quick] [--markdown FILE] [--chart FILE]
 *
 * 1. CEL libraries (cel-compare.ts) and the CEL cost estimate vs time (cel-cost.ts)  2. per-phase cost in process (phases.ts)
 * 3. the Check codec (codec.ts)
 * 4. per core: every server pinned to one CPU, sidecar-shaped mix, interleaved rounds, and at half
 *    of its maximum throughput (percore.ts)
 * 5. load: Portcullis vs the no-op servers vs OPA, ghz at fixed concurrency and duration (load.ts)
 * 6. scale: 10 / 1,000 / 10,000 ApiPolicies (scale.ts)
 * 7. the other engineers' benchmarks when built: quota.js, masking.js, audit.js (own tables)
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { celCompare } from './cel-compare.js';
import { celCostTable } from './cel-cost.js';
import { writeChart } from './chart.js';
import { LOAD_HEADERS, loadRow, probe, runGhz, startChild, writeDataFile, type LoadResult, type ServerSpec } from './load.js';
import { writeOpaFiles } from './opa-policy.js';
import { loadSnapshot, phaseTable } from './phases.js';
import { scaleTable } from './scale.js';
import { buildTools } from './go-tools.js';
import { codecTable } from './codec.js';
import { perCoreBenchmark, workersBenchmark } from './percore.js';
import { fmt, formatMarkdown, formatText, type Table } from './table.js';
import { createWorkload, type Workload } from './workload.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../../..');
const quick = process.argv.includes('--quick');
const argValue = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
};

const CFG = quick
  ? { concurrency: [16], duration: 2, phaseIterations: 500, scale: [10, 1000], scaleIterations: 500, perCore: { rounds: 2, seconds: 2, concurrency: 16 } }
  : { concurrency: [1, 16, 64], duration: 10, phaseIterations: 5000, scale: [10, 1000, 10000], scaleIterations: 3000, perCore: { rounds: 5, seconds: 5, concurrency: 16 } };

const tables: Table[] = [];
function emit(t: Table): void {
  tables.push(t);
  console.log(`${formatText(t)}\n`);
}

function servers(w: Workload, tools: Record<string, string>, opaDir: string): ServerSpec[] {
  const node = process.execPath;
  const list: ServerSpec[] = [
    { name: 'Portcullis', cmd: node, args: [join(ROOT, 'dist/extauthz/cli/main.js'), 'serve', '--policies', w.dir, '--grpc-address', '127.0.0.1:{port}', '--http-address', '127.0.0.1:0', '--ext-proc-address', '127.0.0.1:0', '--log-level', 'silent', '--no-watch'] },
    { name: 'no-op grpc-js', cmd: node, args: [join(HERE, 'noop-server.js'), '{port}'] },
    { name: 'no-op grpc-js, no decode', cmd: node, args: [join(HERE, 'noop-server.js'), '{port}', '--no-decode'] },
  ];
  if (tools['opa-ext-authz']) {
    const f = writeOpaFiles(opaDir, w);
    list.push({ name: 'OPA (Rego, Go)', cmd: tools['opa-ext-authz'], args: ['-addr', '127.0.0.1:{port}', '-policy', f.policy, '-data', f.data] });
  }
  return list;
}

/** Starts one server, checks it allows the mix, runs every concurrency level; returns the probe line. */
async function loadOne(spec: ServerSpec, ghz: string, w: Workload & { dataFile: string }, results: LoadResult[]): Promise<string> {
  const { dataFile } = w;
  const running = await startChild(spec);
  try {
    const line = `${spec.name}: ${await probe(running.port, w.requests)}/${w.requests.length} of the mix allowed`;
    runGhz(ghz, running, { name: spec.name, dataFile, concurrency: 16, durationS: 1 }); // warm-up (JIT, token cache)
    for (const c of CFG.concurrency) results.push(runGhz(ghz, running, { name: spec.name, dataFile, concurrency: c, durationS: CFG.duration }));
    return line;
  } finally {
    await running.stop();
  }
}

async function loadBenchmark(w: Workload, tools: Record<string, string>): Promise<LoadResult[]> {
  const ghz = tools.ghz;
  if (!ghz) {
    emit({ title: 'Load', headers: ['result'], rows: [['ghz could not be built: see build-tools.sh output above']] });
    return [];
  }
  const opaDir = mkdtempSync(join(tmpdir(), 'portcullis-bench-opa-'));
  const dataFile = writeDataFile(opaDir, w.requests);
  const results: LoadResult[] = [];
  const probes: string[] = [];
  try {
    for (const spec of servers(w, tools, opaDir)) {
      probes.push(await loadOne(spec, ghz, { ...w, dataFile }, results));
    }
  } finally {
    rmSync(opaDir, { recursive: true, force: true });
  }
  emit({
    title: `Load: ghz, ${CFG.duration} s per level, 1 connection, mix of ${w.requests.length} requests over ${w.policies} policies`,
    headers: LOAD_HEADERS,
    rows: results.map(loadRow),
    notes: [...probes, `load average at the end: ${loadavg().map((l) => l.toFixed(2)).join(' ')} on ${cpus().length} CPUs (ghz shares them)`],
  });
  emit(ratioTable(results));
  return results;
}

function ratioTable(results: LoadResult[]): Table {
  const at = (server: string, c: number): LoadResult | undefined => results.find((r) => r.server.startsWith(server) && r.concurrency === c);
  const rows = CFG.concurrency.map((c) => {
    const p = at('Portcullis', c);
    const o = at('OPA', c);
    const n = at('no-op', c);
    const ratio = (a?: number, b?: number): string => (a && b ? `${fmt(a / b, 2)}×` : '–');
    return [String(c), ratio(p?.rps, o?.rps), ratio(p?.rps, n?.rps), ratio(p?.p99ms, o?.p99ms), ratio(p && p.cpuSeconds / p.rps, o && o.cpuSeconds / o.rps)];
  });
  return { title: 'Ratios', headers: ['concurrency', 'RPS Portcullis/OPA', 'RPS Portcullis/no-op', 'p99 Portcullis/OPA', 'CPU per request Portcullis/OPA'], rows };
}

/** Other engineers' benchmarks print their own tables; run each that exists. */
function otherBenchmarks(): void {
  for (const name of ['quota', 'masking', 'audit']) {
    const file = join(HERE, `${name}.js`);
    if (!existsSync(file)) {
      console.log(`== ${name}: not built (test/bench/${name}.ts absent)\n`);
      continue;
    }
    const r = spawnSync(process.execPath, [file, ...(quick ? ['--quick'] : [])], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 16 << 20 });
    console.log(r.stdout);
    tables.push({ title: `${name} (test/bench/${name}.ts)`, headers: ['output'], rows: r.stdout.trim().split('\n').map((l) => [l]) });
    if (r.status !== 0) console.log(`== ${name}: exited with ${r.status}\n`);
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  console.log(`Portcullis benchmarks (${quick ? 'quick' : 'full'}): Node ${process.version}, ${cpus().length}× ${cpus()[0]?.model ?? 'CPU'}, load average ${loadavg()[0]?.toFixed(2)}\n`);
  const tools = buildTools();
  for (const t of celCompare(quick)) emit(t);
  emit(celCostTable(quick));
  const w = await createWorkload(50, 100);
  try {
    emit(await phaseTable(loadSnapshot(w.dir), w, CFG.phaseIterations));
    emit(await codecTable(quick));
    for (const t of await perCoreBenchmark(w, tools, CFG.perCore)) emit(t);
    emit(await workersBenchmark(w, tools, CFG.perCore));
    const load = await loadBenchmark(w, tools);
    emit(scaleTable(CFG.scale, CFG.scaleIterations));
    otherBenchmarks();
    const chart = argValue('--chart') ?? join(ROOT, 'docs/benchmarks.png');
    if (load.length > 0) console.log(writeChart(load, chart, tools.gnuplot));
  } finally {
    w.remove();
  }
  const md = argValue('--markdown');
  if (md) writeFileSync(md, tables.map(formatMarkdown).join('\n\n') + '\n');
  console.log(`done in ${fmt((Date.now() - started) / 1000, 0)} s`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
