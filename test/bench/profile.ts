/**
 * Where a served Check spends its CPU: the load benchmark's Portcullis (same flags, same
 * workload) under ghz at one concurrency, optionally with `node --cpu-prof`, then the profile
 * aggregated by self time (function and file).
 *
 * Uses the sidecar-shaped mix (--minimal: the bare mix); the server is pinned to CPU 1 and ghz
 * to CPU 0 when there are two.
 *
 *   node dist/test/bench/profile.js [--noop] [--minimal] [--concurrency 16] [--seconds 10] [--cpu-prof] [--top 40] [-- extra serve flags]
 *
 * Prints RPS and server CPU per Check (utime + stime over the run / calls answered).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runGhz, startChild, writeDataFile, type Running } from './load.js';
import { fmt } from './table.js';
import { createWorkload } from './workload.js';
import { pinning } from './percore.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../../..');

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

/** Self time per function and per file (µs), from a V8 .cpuprofile. */
export function aggregate(profile: Profile): { total: number; byFunction: [string, number][]; byFile: [string, number][]; inclusive: [string, number][] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const fn = new Map<string, number>();
  const file = new Map<string, number>();
  const incl = new Map<string, number>();
  const nameOf = (n: Node): string => {
    const url = n.callFrame.url.replace(`file://${ROOT}/`, '').replace(/.*node_modules\//, 'nm/');
    return `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`;
  };
  let total = 0;
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const url = n.callFrame.url.replace(`file://${ROOT}/`, '').replace(/.*node_modules\//, 'nm/');
    const name = nameOf(n);
    if (n.callFrame.functionName === '(idle)') continue;
    total += us;
    fn.set(name, (fn.get(name) ?? 0) + us);
    const f = url || n.callFrame.functionName;
    file.set(f, (file.get(f) ?? 0) + us);
    // Inclusive: every distinct function on the stack of this sample.
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) seen.add(nameOf(byId.get(cur)!));
    for (const k of seen) incl.set(k, (incl.get(k) ?? 0) + us);
  }
  const sort = (m: Map<string, number>): [string, number][] => [...m].sort((a, b) => b[1] - a[1]);
  return { total, byFunction: sort(fn), byFile: sort(file), inclusive: sort(incl) };
}

/** [utime, stime] of a process in seconds. */
function userSys(pid: number): [number, number] {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return [Number(f[11]) / 100, Number(f[12]) / 100];
}

function printProfile(profDir: string, top: number, calls: number): void {
  const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
  if (!file) throw new Error('no .cpuprofile written (did the server exit on SIGTERM?)');
  const a = aggregate(JSON.parse(readFileSync(join(profDir, file), 'utf8')) as Profile);
  const line = ([f, us]: [string, number]): void => console.log(`${fmt((100 * us) / a.total, 1).padStart(6)} %  ${f}`);
  console.log(`\nsampled CPU (idle excluded): ${fmt(a.total / 1e6, 2)} s\n\nself time by file:`);
  a.byFile.slice(0, 25).forEach(line);
  console.log('\nself time by function:');
  a.byFunction.slice(0, top).forEach(line);
  // Per Check: the profile also covers start-up, so per-call figures come from the functions only a Check runs.
  const perCheck = ([f, us]: [string, number]): void => console.log(`${fmt((100 * us) / a.total, 1).padStart(6)} %  ${fmt(us / calls, 1).padStart(7)} µs/Check  ${f}`);
  console.log(`\ninclusive time by function over ${calls} Checks (PROFILE_DIST_ONLY=1: our code only):`);
  a.inclusive.filter(([f]) => !process.env.PROFILE_DIST_ONLY || f.includes('dist/')).slice(0, top).forEach(perCheck);
}

/** One ghz run after a warm-up; prints RPS and CPU per Check; returns the calls answered. */
function measure(ghz: string, running: Running, dataFile: string, { concurrency, seconds }: { concurrency: number; seconds: number }): number {
  const pin = pinning().ghz;
  const on = pin ? { cpus: pin } : {};
  runGhz(ghz, running, { name: 'warm-up', dataFile, concurrency: 16, durationS: 1, ...on });
  const t0 = userSys(running.child.pid!);
  const r = runGhz(ghz, running, { name: 'Portcullis', dataFile, concurrency, durationS: seconds, ...on });
  const t1 = userSys(running.child.pid!);
  if (r.error) throw new Error(r.error);
  const calls = r.count;
  console.log(`concurrency ${concurrency}: ${fmt(r.rps, 0)} RPS, p50 ${fmt(r.p50ms, 2)} ms, p99 ${fmt(r.p99ms, 2)} ms, server CPU ${fmt(r.cpuSeconds, 2)} s = ${fmt((r.cpuSeconds / calls) * 1e6, 0)} µs per Check (user ${fmt(((t1[0] - t0[0]) / calls) * 1e6, 0)} µs, system ${fmt(((t1[1] - t0[1]) / calls) * 1e6, 0)} µs), peak RSS ${fmt(r.peakRssMB, 0)} MB`);
  return calls;
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const sep = argv.indexOf('--');
  const own = sep >= 0 ? argv.slice(0, sep) : argv;
  const extra = sep >= 0 ? argv.slice(sep + 1) : [];
  const val = (n: string, d: string): string => {
    const i = own.indexOf(n);
    return i >= 0 ? own[i + 1]! : d;
  };
  const concurrency = Number(val('--concurrency', '16'));
  const seconds = Number(val('--seconds', '10'));
  const top = Number(val('--top', '40'));
  const prof = own.includes('--cpu-prof');
  const ghz = join(process.env.PORTCULLIS_CACHE ?? join(process.env.HOME ?? '', '.cache/portcullis'), 'bin/ghz-v0.93.0');
  const w = await createWorkload(50, 100);
  const profDir = mkdtempSync(join(tmpdir(), 'portcullis-prof-'));
  try {
    const dataFile = writeDataFile(profDir, own.includes('--minimal') ? w.requests : w.sidecar);
    const nodeFlags = prof ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [];
    const noop = own.includes('--noop');
    const pin = pinning();
    const running = await startChild({
      ...(pin.server ? { cpus: pin.server } : {}),
      name: noop ? 'no-op' : 'Portcullis',
      cmd: process.execPath,
      args: noop
        ? [...nodeFlags, join(HERE, 'noop-server.js'), '{port}']
        : [...nodeFlags, join(ROOT, 'dist/extauthz/cli/main.js'), 'serve', '--policies', w.dir, '--grpc-address', '127.0.0.1:{port}', '--http-address', '127.0.0.1:0', '--ext-proc-address', '127.0.0.1:0', '--log-level', 'silent', '--no-watch', ...extra],
    });
    let calls = 0;
    try {
      calls = measure(ghz, running, dataFile, { concurrency, seconds });
    } finally {
      await running.stop();
    }
    if (prof) printProfile(profDir, top, calls);
  } finally {
    w.remove();
    rmSync(profDir, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
