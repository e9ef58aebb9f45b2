/**
 * In-process cost of the decision pipeline, per phase (PipelineDeps.observe), over the workload
 * mix, one Check at a time: with the verified-token cache, and without it (every JWT verified
 * with jose again). No gRPC, no network: this is the floor of a Check's latency.
 */
import { compileFolder } from '../../extauthz/policy/folder-source.js';
import { DecisionPipeline, type PhaseName } from '../../extauthz/pipeline/pipeline.js';
import { Identifier } from '../../extauthz/pipeline/identify/index.js';
import { JwtIdentifier, VerifiedTokenCache } from '../../extauthz/pipeline/identify/jwt.js';
import { MemoryBackend, QuotaEnforcer } from '../../extauthz/quota/index.js';
import type { PolicySnapshot } from '../../extauthz/policy/snapshot.js';
import { fmt, percentile, type Table } from './table.js';
import type { Workload } from './workload.js';

/** A cache that never remembers: every token is verified again. */
class NoTokenCache extends VerifiedTokenCache {
  override get(): undefined {
    return undefined;
  }
}

export function loadSnapshot(dir: string): PolicySnapshot {
  const result = compileFolder(dir);
  if (result.problems.length > 0) throw new Error(`workload policies do not compile:\n${result.problems.map((p) => p.format()).join('\n')}`);
  return result.snapshot;
}

export interface PhaseRun {
  samples: Map<string, number[]>;
  allowed: number;
  checks: number;
  firstDeny?: string;
}

export async function runPipeline(snapshot: PolicySnapshot, w: Workload, iterations: number, cache: boolean): Promise<PhaseRun> {
  const samples = new Map<string, number[]>();
  const observe = (phase: PhaseName, seconds: number): void => {
    let list = samples.get(phase);
    if (!list) samples.set(phase, (list = []));
    list.push(seconds * 1e6);
  };
  const jwt = new JwtIdentifier(cache ? new VerifiedTokenCache() : new NoTokenCache());
  const pipeline = new DecisionPipeline({ snapshot: () => snapshot, identifier: new Identifier(jwt), quota: new QuotaEnforcer({ backend: new MemoryBackend() }), observe });
  const totals: number[] = [];
  const run: PhaseRun = { samples, allowed: 0, checks: 0 };
  // Warm-up: JIT, and (with cache) every token verified once, as a running server would have.
  for (const r of w.requests) await pipeline.check(r);
  samples.clear();
  for (let i = 0; i < iterations; i++) {
    const t0 = process.hrtime.bigint();
    const d = await pipeline.check(w.requests[i % w.requests.length]!);
    totals.push(Number(process.hrtime.bigint() - t0) / 1e3);
    run.checks++;
    if (d.allowed) run.allowed++;
    else run.firstDeny ??= JSON.stringify(d).slice(0, 300);
  }
  samples.set('total (check)', totals);
  return run;
}

const ORDER = ['parse', 'route', 'identify', 'authorize', 'quota', 'shape', 'audit', 'total (check)'];

export async function phaseTable(snapshot: PolicySnapshot, w: Workload, iterations: number): Promise<Table & { runs: PhaseRun[] }> {
  const withCache = await runPipeline(snapshot, w, iterations, true);
  const without = await runPipeline(snapshot, w, iterations, false);
  const stat = (r: PhaseRun, phase: string): [string, string] => {
    const s = [...(r.samples.get(phase) ?? [])].sort((a, b) => a - b);
    return s.length === 0 ? ['–', '–'] : [fmt(percentile(s, 50), 1), fmt(percentile(s, 99), 1)];
  };
  const rows = ORDER.filter((p) => withCache.samples.has(p) || without.samples.has(p)).map((p) => [p, ...stat(withCache, p), ...stat(without, p)]);
  return {
    title: `Per-phase cost in process (µs, ${iterations.toLocaleString('en-US')} sequential Checks over the mix, ${w.policies} policies)`,
    headers: ['phase', 'cache: median', 'cache: p99', 'no cache: median', 'no cache: p99'],
    rows,
    notes: [`allowed: ${withCache.allowed}/${withCache.checks} with cache, ${without.allowed}/${without.checks} without (the mix is all allowed requests; 40 % carry a JWT).`],
    runs: [withCache, without],
  };
}
