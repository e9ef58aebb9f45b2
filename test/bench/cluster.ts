/**
 * Does the Node cluster module raise throughput? `portcullis serve` run by a cluster primary
 * that forks N workers sharing the gRPC port (the primary accepts and hands connections out round
 * robin), driven by ghz over several connections (so every worker gets some); CPU summed over every process.
 *
 *   node dist/test/bench/cluster.js [--workers 1,2] [--concurrency 16,64] [--connections 4] [--seconds 10]
 *
 * An experiment, not a serve option: each worker has its own in-memory quota counters (a limit
 * would be enforced per worker) and its own audit chain, so clustering needs --quota-backend redis.
 */
import cluster from 'node:cluster';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, ghzArgs, writeDataFile } from './load.js';
import { fmt } from './table.js';
import { createWorkload } from './workload.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../../..');

function cpuOf(pid: number): number {
  if (!existsSync(`/proc/${pid}/stat`)) return 0;
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

if (cluster.isPrimary && process.env.PORTCULLIS_CLUSTER_PRIMARY === '1') {
  // The server side: fork the CLI N times; they share the listening sockets.
  const n = Number(process.env.PORTCULLIS_CLUSTER_WORKERS ?? '2');
  cluster.setupPrimary({ exec: join(ROOT, 'dist/extauthz/cli/main.js'), args: process.argv.slice(2), silent: false });
  for (let i = 0; i < n; i++) cluster.fork();
  process.once('SIGTERM', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
    setTimeout(() => process.exit(0), 3000).unref();
  });
} else {
  void main();
}

/** One ghz run; the row's RPS, p50, p99 and CPU per Check over all the server's processes. */
interface Level {
  ghz: string;
  port: number;
  dataFile: string;
  c: number;
  connections: number;
  seconds: number;
  total: () => number;
}

function level({ ghz, port, dataFile, c, connections, seconds, total }: Level): string {
  const cpu0 = total();
  const r = spawnSync(ghz, [...ghzArgs(port, dataFile, { concurrency: c, durationS: seconds }), '--connections', String(connections)], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const cpu = total() - cpu0;
  if (r.status !== 0) return `failed: ${(r.stderr || r.stdout).slice(0, 200)}`;
  const rep = JSON.parse(r.stdout) as { rps: number; count: number; latencyDistribution: { percentage: number; latency: number }[] | null };
  const pct = (p: number): number => (rep.latencyDistribution?.find((d) => d.percentage === p)?.latency ?? NaN) / 1e6;
  return `${fmt(rep.rps, 0)}  ${fmt(pct(50), 2)}  ${fmt(pct(99), 2)}  ${fmt((cpu / rep.count) * 1e6, 0)}`;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const val = (n: string, d: string): string => {
    const i = argv.indexOf(n);
    return i >= 0 ? argv[i + 1]! : d;
  };
  const workers = val('--workers', '1,2').split(',').map(Number);
  const levels = val('--concurrency', '16,64').split(',').map(Number);
  const connections = Number(val('--connections', '4'));
  const seconds = Number(val('--seconds', '10'));
  const ghz = join(process.env.PORTCULLIS_CACHE ?? join(process.env.HOME ?? '', '.cache/portcullis'), 'bin/ghz-v0.93.0');
  const w = await createWorkload(50, 100);
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-cluster-'));
  const { spawn } = await import('node:child_process');
  try {
    const dataFile = writeDataFile(dir, w.requests);
    console.log('workers  concurrency  connections  RPS  p50 ms  p99 ms  CPU µs/Check (all processes)');
    for (const n of workers) {
      const port = await freePort();
      const child = spawn(process.execPath, [fileURLToPath(import.meta.url), 'serve', '--policies', w.dir, '--grpc-address', `127.0.0.1:${port}`, '--http-address', '127.0.0.1:0', '--ext-proc-address', '127.0.0.1:0', '--log-level', 'silent', '--no-watch'], {
        stdio: ['ignore', 'ignore', 'inherit'],
        env: { ...process.env, PORTCULLIS_CLUSTER_PRIMARY: '1', PORTCULLIS_CLUSTER_WORKERS: String(n) },
      });
      await new Promise((r) => setTimeout(r, 4000 + 1500 * n));
      const pids = (): number[] => [child.pid!, ...readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number)];
      const total = (): number => pids().reduce((a, p) => a + cpuOf(p), 0);
      spawnSync(ghz, [...ghzArgs(port, dataFile, { concurrency: 16, durationS: 2 }), '--connections', String(connections)], { encoding: 'utf8' });
      for (const c of levels) console.log(`${n}  ${c}  ${connections}  ${level({ ghz, port, dataFile, c, connections, seconds, total })}`);
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  } finally {
    w.remove();
    rmSync(dir, { recursive: true, force: true });
  }
}
