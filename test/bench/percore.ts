/**
 * CPU per Check on one core: every server pinned to the same CPU with taskset, ghz pinned to
 * another, the sidecar-shaped mix, 16 in flight, and the servers measured in interleaved rounds
 * of one run (this machine's state moves absolute figures by ±30 %; ratios within a round hold).
 * Then each server at half of its own maximum throughput, for the latency a sized deployment sees.
 *
 *   node dist/test/bench/percore.js [--quick] [--rounds N] [--seconds S]
 */
import { cpus, loadavg, tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { probe, runGhz, startChild, writeDataFile, type LoadResult, type Running, type ServerSpec } from './load.js';
import { writeOpaFiles } from './opa-policy.js';
import { fmt, type Table } from './table.js';
import { createWorkload, type Workload } from './workload.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../../..');

export interface PerCoreConfig {
  rounds: number;
  seconds: number;
  concurrency: number;
}

/** The server CPU and ghz CPU: different cores when there are two, nothing pinned on one. */
export function pinning(): { server?: string; ghz?: string } {
  return cpus().length >= 2 ? { server: '1', ghz: '0' } : {};
}

export function portcullisArgs(policyDir: string, extra: string[] = []): string[] {
  return [join(ROOT, 'dist/extauthz/cli/main.js'), 'serve', '--policies', policyDir, '--grpc-address', '127.0.0.1:{port}', '--http-address', '127.0.0.1:0', '--ext-proc-address', '127.0.0.1:0', '--log-level', 'silent', '--no-watch', ...extra];
}

export const NOOP = 'no-op grpc-js';
export const FLOOR = 'no-op grpc-js, no decode';

export function perCoreServers(w: Workload, tools: Record<string, string>, opaDir: string, pin?: string): ServerSpec[] {
  const node = process.execPath;
  const on = pin ? { cpus: pin } : {};
  const list: ServerSpec[] = [
    { name: 'Portcullis', cmd: node, args: portcullisArgs(w.dir, ['--workers', '1']), ...on },
    { name: NOOP, cmd: node, args: [join(HERE, 'noop-server.js'), '{port}'], ...on },
    { name: FLOOR, cmd: node, args: [join(HERE, 'noop-server.js'), '{port}', '--no-decode'], ...on },
  ];
  if (tools['opa-ext-authz']) {
    const f = writeOpaFiles(opaDir, w);
    list.push({ name: 'OPA (Rego, Go)', cmd: tools['opa-ext-authz'], args: ['-addr', '127.0.0.1:{port}', '-policy', f.policy, '-data', f.data], ...on });
  }
  return list;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const usPerCheck = (r: LoadResult): number => (r.count > 0 ? (r.cpuSeconds / r.count) * 1e6 : NaN);

/** What every ghz run of one benchmark shares. */
interface Bench {
  ghz: string;
  running: Map<string, Running>;
  dataFile: string;
  cfg: PerCoreConfig;
  ghzCpus?: string | undefined;
}

interface Rounds {
  names: string[];
  byServer: Map<string, LoadResult[]>;
}

function runRounds({ ghz, running, dataFile, cfg, ghzCpus }: Bench): Rounds {
  const names = [...running.keys()];
  const byServer = new Map(names.map((n) => [n, [] as LoadResult[]]));
  const pin = ghzCpus ? { cpus: ghzCpus } : {};
  for (const n of names) runGhz(ghz, running.get(n)!, { name: n, dataFile, concurrency: cfg.concurrency, durationS: 1, ...pin }); // warm-up
  for (let round = 0; round < cfg.rounds; round++) {
    // Rotate the order, so no server always runs right after the same neighbour.
    for (let i = 0; i < names.length; i++) {
      const n = names[(i + round) % names.length]!;
      byServer.get(n)!.push(runGhz(ghz, running.get(n)!, { name: n, dataFile, concurrency: cfg.concurrency, durationS: cfg.seconds, ...pin }));
    }
  }
  return { names, byServer };
}

/** Median over rounds of (server CPU per Check / reference CPU per Check) in the same round. */
function ratio(r: Rounds, name: string, ref: string): string {
  const a = r.byServer.get(name)!;
  const b = r.byServer.get(ref);
  if (!b) return '–';
  return `${fmt(median(a.map((x, i) => usPerCheck(x) / usPerCheck(b[i]!))), 2)}×`;
}

function roundsTable(r: Rounds, cfg: PerCoreConfig, probes: string[], load: string): Table {
  const rows = r.names.map((n) => {
    const list = r.byServer.get(n)!;
    const us = list.map(usPerCheck);
    return [n, fmt(median(list.map((x) => x.rps)), 0), fmt(median(us), 0), `${fmt(Math.min(...us), 0)}–${fmt(Math.max(...us), 0)}`, ratio(r, n, NOOP), ratio(r, n, FLOOR), fmt(median(list.map((x) => x.p99ms)), 2)];
  });
  return {
    title: `Per core: server pinned to one CPU (taskset), ghz on the other, sidecar-shaped mix, ${cfg.concurrency} in flight, ${cfg.rounds} interleaved rounds of ${cfg.seconds} s`,
    headers: ['server', 'max RPS (median)', 'CPU µs per Check (median)', 'range over rounds', `× ${NOOP}`, `× ${FLOOR}`, 'p99 ms at max'],
    rows,
    notes: [...probes, `× columns: median over rounds of the ratio within each round. ${load}`],
  };
}

function halfLoadTable({ ghz, running, dataFile, cfg, ghzCpus }: Bench, r: Rounds): Table {
  const rows = r.names.map((n) => {
    const target = median(r.byServer.get(n)!.map((x) => x.rps)) / 2;
    const x = runGhz(ghz, running.get(n)!, { name: n, dataFile, concurrency: cfg.concurrency, durationS: cfg.seconds, rps: target, ...(ghzCpus ? { cpus: ghzCpus } : {}) });
    return [n, fmt(target, 0), fmt(x.rps, 0), fmt(x.p50ms, 2), fmt(x.p90ms, 2), fmt(x.p99ms, 2), fmt(usPerCheck(x), 0)];
  });
  return {
    title: `At half of each server's maximum throughput (constant rate, ${cfg.concurrency} connections' worth in flight at most, ${cfg.seconds} s, same pinning)`,
    headers: ['server', 'target RPS', 'RPS', 'p50 ms', 'p90 ms', 'p99 ms', 'CPU µs per Check'],
    rows,
    notes: [`load average at the end: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`],
  };
}

const loadNote = (): string => `Load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} on ${cpus().length} CPUs.`;

/**
 * serve --workers 1 against --workers 2, nothing pinned, ghz over 16 connections (SO_REUSEPORT
 * spreads connections): on a 2-core machine ghz itself needs most of a core, so this shows what
 * the second worker costs and gains here, not the scaling a node with spare cores would show.
 */
export async function workersBenchmark(w: Workload, tools: Record<string, string>, cfg: PerCoreConfig): Promise<Table> {
  const ghz = tools.ghz;
  const title = 'Workers: serve --workers 1 and 2, nothing pinned, sidecar-shaped mix, 32 in flight over 16 connections';
  if (!ghz) return { title, headers: ['result'], rows: [['ghz could not be built: see build-tools.sh output above']] };
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-workers-'));
  const running = new Map<string, Running>();
  try {
    const dataFile = writeDataFile(dir, w.sidecar);
    for (const n of [1, 2]) {
      const name = `Portcullis --workers ${n}`;
      running.set(name, await startChild({ name, cmd: process.execPath, args: portcullisArgs(w.dir, ['--workers', String(n)]) }));
    }
    const names = [...running.keys()];
    const byServer = new Map(names.map((n) => [n, [] as LoadResult[]]));
    const run = (n: string, durationS: number): LoadResult => runGhz(ghz, running.get(n)!, { name: n, dataFile, concurrency: 32, connections: 16, durationS });
    for (const n of names) run(n, 1); // warm-up
    for (let round = 0; round < cfg.rounds; round++) for (let i = 0; i < names.length; i++) {
      const n = names[(i + round) % names.length]!;
      byServer.get(n)!.push(run(n, cfg.seconds));
    }
    const rows = names.map((n) => {
      const list = byServer.get(n)!;
      return [n, fmt(median(list.map((x) => x.rps)), 0), fmt(median(list.map(usPerCheck)), 0), fmt(median(list.map((x) => x.p99ms)), 2), String(list.reduce((e, x) => e + (Number.isNaN(x.errors) ? 0 : x.errors), 0)), fmt(Math.max(...list.map((x) => x.peakRssMB)), 0)];
    });
    return {
      title,
      headers: ['server', 'RPS (median)', 'CPU µs per Check (median, all threads)', 'p99 ms', 'errors', 'peak RSS MB'],
      rows,
      notes: [`${cpus().length} CPUs shared by the server and ghz; ${cfg.rounds} interleaved rounds of ${cfg.seconds} s. ${loadNote()}`],
    };
  } finally {
    for (const r of running.values()) await r.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function perCoreBenchmark(w: Workload, tools: Record<string, string>, cfg: PerCoreConfig): Promise<Table[]> {
  const ghz = tools.ghz;
  if (!ghz) return [{ title: 'Per core', headers: ['result'], rows: [['ghz could not be built: see build-tools.sh output above']] }];
  const pin = pinning();
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-core-'));
  const running = new Map<string, Running>();
  const loadBefore = loadNote();
  try {
    const dataFile = writeDataFile(dir, w.sidecar);
    const probes: string[] = [];
    for (const spec of perCoreServers(w, tools, dir, pin.server)) {
      const r = await startChild(spec);
      running.set(spec.name, r);
      if (!spec.name.startsWith('no-op')) probes.push(`${spec.name}: ${await probe(r.port, w.sidecar)}/${w.sidecar.length} of the sidecar mix allowed`);
    }
    const bench: Bench = { ghz, running, dataFile, cfg, ghzCpus: pin.ghz };
    const rounds = runRounds(bench);
    const first = roundsTable(rounds, cfg, probes, `Before: ${loadBefore} After: ${loadNote()}`);
    return [first, halfLoadTable(bench, rounds)];
  } finally {
    for (const r of running.values()) await r.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { formatText } = await import('./table.js');
  const { buildTools } = await import('./go-tools.js');
  const argv = process.argv.slice(2);
  const num = (flag: string, d: number): number => (argv.includes(flag) ? Number(argv[argv.indexOf(flag) + 1]) : d);
  const quick = argv.includes('--quick');
  const cfg = { rounds: num('--rounds', quick ? 2 : 5), seconds: num('--seconds', quick ? 2 : 5), concurrency: 16 };
  const w = await createWorkload(50, 100);
  try {
    const tools = buildTools();
    for (const t of await perCoreBenchmark(w, tools, cfg)) console.log(`${formatText(t)}\n`);
    console.log(`${formatText(await workersBenchmark(w, tools, cfg))}\n`);
  } finally {
    w.remove();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exitCode = 1;
  });
}
