/**
 * Cost of the quota phase per check, memory and Redis backends: runs the real pipeline in process
 * on the quota test fixtures (a consumer charging two quotas, an agency charging one) and records
 * the quota phase's own latency. Prints a table: median and p99 of the phase in µs, and checks/s
 * of the whole pipeline at the given concurrency. Redis is a real redis-server on a free loopback
 * port (test/integration/redis-server.ts), started and stopped here.
 *
 *   node dist/test/bench/quota.js [--checks N] [--markdown]
 */
import { parseArgs } from 'node:util';
import { compileYaml } from '../helpers/policies.js';
import { DecisionPipeline } from '../../extauthz/pipeline/pipeline.js';
import type { QuotaBackend } from '../../extauthz/quota/backend.js';
import { MemoryBackend } from '../../extauthz/quota/memory-backend.js';
import { QuotaEnforcer } from '../../extauthz/quota/phase.js';
import { RedisBackend } from '../../extauthz/quota/redis-backend.js';
import { AGENCY_SPIFFE, KEYS, quotaPolicyYaml, quotaRequest } from '../../extauthz/quota/test-fixtures.js';
import { startRedis } from '../integration/redis-server.js';
import { fmt, formatMarkdown, formatText, percentile, type Table } from './table.js';

interface Scenario {
  backend: string;
  concurrency: number;
  make: () => Promise<QuotaBackend>;
}

const LIMIT = 1_000_000_000; // nothing is refused: the bench measures charging, not denying

async function run(s: Scenario, checks: number): Promise<string[]> {
  const compiled = compileYaml(quotaPolicyYaml({ burstLimit: LIMIT, agencyDaily: LIMIT, appTotal: LIMIT }));
  if (compiled.problems.length) throw new Error(compiled.problems.map((p) => p.format()).join('\n'));
  const backend = await s.make();
  const samples: number[] = [];
  const pipeline = new DecisionPipeline({
    snapshot: () => compiled.snapshot,
    quota: new QuotaEnforcer({ backend }),
    observe: (phase, seconds) => {
      if (phase === 'quota') samples.push(seconds * 1e6);
    },
  });
  const requests = [quotaRequest({ apiKey: KEYS.a1 }), quotaRequest({ apiKey: KEYS.a2 }), quotaRequest({ spiffe: AGENCY_SPIFFE })];
  const loop = async (n: number): Promise<void> => {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < n) {
        const d = await pipeline.check(requests[next++ % requests.length]!);
        if (!d.allowed) throw new Error(`unexpected deny: ${d.code} ${d.reason}`);
      }
    };
    await Promise.all(Array.from({ length: s.concurrency }, worker));
  };
  await loop(Math.min(2000, checks)); // warm-up: JIT, script cache, connections
  samples.length = 0;
  const started = process.hrtime.bigint();
  await loop(checks);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await backend.close();
  samples.sort((a, b) => a - b);
  return [s.backend, String(s.concurrency), fmt(percentile(samples, 50)), fmt(percentile(samples, 99)), fmt(checks / seconds, 0)];
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { checks: { type: 'string' }, markdown: { type: 'boolean' } } });
  const checks = Number(values.checks ?? 20_000);
  const redis = await startRedis();
  const viaRedis = async (): Promise<QuotaBackend> => {
    const b = new RedisBackend({ url: redis.url, commandTimeoutMs: 2000 });
    if (!(await b.ready())) throw new Error('redis not ready');
    return b;
  };
  const scenarios: Scenario[] = [
    { backend: 'memory', concurrency: 1, make: () => Promise.resolve(new MemoryBackend()) },
    { backend: 'memory', concurrency: 32, make: () => Promise.resolve(new MemoryBackend()) },
    { backend: 'redis', concurrency: 1, make: viaRedis },
    { backend: 'redis', concurrency: 32, make: viaRedis },
  ];
  const rows: string[][] = [];
  try {
    for (const s of scenarios) rows.push(await run(s, checks));
  } finally {
    await redis.close();
  }
  const table: Table = {
    title: 'Quota phase per check',
    headers: ['backend', 'in flight', 'quota phase median µs', 'quota phase p99 µs', 'checks/s (whole pipeline)'],
    rows,
    notes: [
      `${checks} checks per row after a warm-up, in one Node ${process.version} process; requests rotate over two consumers (2 quotas each) and one agency (1 quota).`,
      'Redis: a local redis-server on loopback, one EVALSHA per check. With many in flight the phase time includes waiting for the event loop.',
    ],
  };
  console.log(values.markdown ? formatMarkdown(table) : formatText(table));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exitCode = 1;
});
