/**
 * End-to-end load: a server as a child process, ghz (built from its Go module by
 * build-tools.sh) driving envoy.service.auth.v3.Authorization/Check over loopback with the
 * workload mix, fixed concurrency, fixed duration. Server CPU seconds come from
 * /proc/<pid>/stat (utime + stime, before and after the run); peak RSS from VmHWM.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { INCLUDE_DIRS, AUTH_PROTO, envoyProtos, fromProtoJson } from '../../proto/envoy.js';
import * as grpc from '@grpc/grpc-js';
import { fmt } from './table.js';

export interface ServerSpec {
  name: string;
  /** Command and arguments; the port placeholder {port} is replaced. */
  cmd: string;
  args: string[];
  /** Pin the server to these CPUs (taskset -c), e.g. "1". */
  cpus?: string;
}

export interface LoadResult {
  server: string;
  concurrency: number;
  rps: number;
  /** Calls answered OK in the run. */
  count: number;
  p50ms: number;
  p90ms: number;
  p99ms: number;
  errors: number;
  cpuSeconds: number;
  peakRssMB: number;
  error?: string;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** utime + stime of a process and all its threads, in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // fields 14 and 15; USER_HZ is 100 on Linux
}

export function peakRssMB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

export interface Running {
  child: ChildProcess;
  port: number;
  stop(): Promise<void>;
}

export async function startChild(spec: ServerSpec): Promise<Running> {
  const port = await freePort();
  const args = spec.args.map((a) => a.replace('{port}', String(port)));
  // taskset execs the server, so the child's pid (for /proc CPU figures) is the server's own.
  const child = spec.cpus ? spawn('taskset', ['-c', spec.cpus, spec.cmd, ...args], { stdio: ['ignore', 'ignore', 'pipe'] }) : spawn(spec.cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)));
  const stop = (): Promise<void> => new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
    setTimeout(() => child.kill('SIGKILL'), 3000).unref();
  });
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`${spec.name} exited: ${stderr}`);
    if (await canConnect(port)) return { child, port, stop };
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`${spec.name} did not listen on ${port}: ${stderr}`);
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    import('node:net').then(({ connect }) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => { s.destroy(); resolve(true); });
      s.once('error', () => resolve(false));
    }, () => resolve(false));
  });
}

interface GhzReport {
  count: number;
  rps: number;
  latencyDistribution: { percentage: number; latency: number }[] | null;
  statusCodeDistribution?: Record<string, number>;
  errorDistribution?: Record<string, number>;
}

export function ghzArgs(port: number, dataFile: string, run: { concurrency: number; durationS: number; rps?: number | undefined; connections?: number | undefined }): string[] {
  const { concurrency, durationS, rps, connections } = run;
  return [
    '--insecure', '--proto', AUTH_PROTO, '-i', INCLUDE_DIRS.join(','),
    '--call', 'envoy.service.auth.v3.Authorization.Check', '--data-file', dataFile,
    '-c', String(concurrency), '-z', `${durationS}s`, ...(rps ? ['-r', String(Math.round(rps))] : []),
    // Several connections, as several Envoys would open: SO_REUSEPORT spreads connections, not calls.
    ...(connections ? ['--connections', String(connections)] : []),
    '-O', 'json', `127.0.0.1:${port}`,
  ];
}

function pct(r: GhzReport, p: number): number {
  return (r.latencyDistribution?.find((d) => d.percentage === p)?.latency ?? NaN) / 1e6;
}

/** One ghz run against a running server; the server's CPU is measured over the run only. */
export interface GhzRun {
  name: string;
  dataFile: string;
  concurrency: number;
  durationS: number;
  /** Constant request rate instead of as fast as possible. */
  rps?: number;
  /** Pin ghz to these CPUs (taskset -c). */
  cpus?: string;
  /** gRPC connections ghz spreads the calls over (default 1). */
  connections?: number;
}

export function runGhz(ghz: string, target: Running, { name, dataFile, concurrency, durationS, rps, cpus, connections }: GhzRun): LoadResult {
  const pid = target.child.pid!;
  const cpu0 = cpuSeconds(pid);
  const args = ghzArgs(target.port, dataFile, { concurrency, durationS, rps, connections });
  const r = cpus ? spawnSync('taskset', ['-c', cpus, ghz, ...args], { encoding: 'utf8', maxBuffer: 64 << 20 }) : spawnSync(ghz, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  const cpu = cpuSeconds(pid) - cpu0;
  const base = { server: name, concurrency, cpuSeconds: cpu, peakRssMB: peakRssMB(pid) };
  if (r.status !== 0) return { ...base, rps: NaN, count: 0, p50ms: NaN, p90ms: NaN, p99ms: NaN, errors: NaN, error: (r.stderr || r.stdout).slice(0, 300) };
  const rep = JSON.parse(r.stdout) as GhzReport;
  const ok = rep.statusCodeDistribution?.OK ?? 0;
  return { ...base, rps: rep.rps, count: ok, p50ms: pct(rep, 50), p90ms: pct(rep, 90), p99ms: pct(rep, 99), errors: rep.count - ok };
}

export function writeDataFile(dir: string, requests: unknown[]): string {
  const file = join(dir, 'ghz-data.json');
  writeFileSync(file, JSON.stringify(requests));
  return file;
}

export function loadRow(r: LoadResult): string[] {
  if (r.error) return [r.server, String(r.concurrency), `failed: ${r.error.split('\n')[0]}`, '', '', '', '', '', ''];
  return [r.server, String(r.concurrency), fmt(r.rps, 0), fmt(r.p50ms, 2), fmt(r.p90ms, 2), fmt(r.p99ms, 2), String(r.errors), fmt(r.cpuSeconds, 1), fmt(r.peakRssMB, 0)];
}

export const LOAD_HEADERS = ['server', 'concurrency', 'RPS', 'p50 ms', 'p90 ms', 'p99 ms', 'errors', 'server CPU s', 'peak RSS MB'];

type Unary = (req: unknown, cb: (err: grpc.ServiceError | null, res: { status?: { code?: number } }) => void) => void;

/** Sends every request of the mix once; returns how many were allowed (status code 0). */
export async function probe(port: number, requests: readonly unknown[]): Promise<number> {
  const protos = envoyProtos() as unknown as { envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } } };
  const client = new protos.envoy.service.auth.v3.Authorization(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & { Check: Unary };
  let allowed = 0;
  for (const r of requests) {
    const res = await new Promise<{ status?: { code?: number } }>((ok, fail) => client.Check(fromProtoJson('envoy.service.auth.v3.CheckRequest', r), (e, v) => (e ? fail(e) : ok(v))));
    if ((res.status?.code ?? 0) === 0) allowed++;
  }
  client.close();
  return allowed;
}

