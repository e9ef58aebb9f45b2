/**
 * Added cost per Check of the audit phase, batch vs strict, writing to a real file (fdatasync).
 * Run: node dist/test/bench/audit.js [checks] [concurrency]. Prints a Markdown table.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Chain } from '../../extauthz/audit/chain.js';
import { SigningKey } from '../../extauthz/audit/keys.js';
import { Pseudonymizer } from '../../extauthz/audit/pseudonym.js';
import { FileSink } from '../../extauthz/audit/sinks.js';
import { fakeDecision } from '../../extauthz/audit/test-helpers.js';
import { AuditTrail, type DurabilityMode } from '../../extauthz/audit/trail.js';

async function run(mode: DurabilityMode, checks: number, concurrency: number): Promise<{ cpuUs: number; p50: number; p99: number; perSec: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-bench-'));
  const pseudo = new Pseudonymizer(Buffer.alloc(32, 3));
  const trail = new AuditTrail({ chain: new Chain({ instance: 'bench', key: SigningKey.generate(), subjectKeyId: pseudo.keyId, previous: null }), pseudonymizer: pseudo, sinks: [await FileSink.open(join(dir, 'audit.log'), 1 << 30)], mode, checkpointEvery: 1000, checkpointSeconds: 10, maxBuffered: 1_000_000 });
  const lat: number[] = [];
  let next = 0;
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const worker = async (): Promise<void> => {
    while (next < checks) {
      const d = fakeDecision(next++);
      const s = process.hrtime.bigint();
      await trail.record(d, undefined);
      lat.push(Number(process.hrtime.bigint() - s) / 1000);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  await trail.close();
  const cpu = process.cpuUsage(cpu0);
  rmSync(dir, { recursive: true, force: true });
  lat.sort((a, b) => a - b);
  return { cpuUs: (cpu.user + cpu.system) / checks, p50: lat[Math.floor(lat.length / 2)]!, p99: lat[Math.floor(lat.length * 0.99)]!, perSec: checks / wall };
}

const checks = Number(process.argv[2] ?? 20000);
const concurrency = Number(process.argv[3] ?? 64);
console.log(`| mode | checks | concurrency | CPU per check (µs) | added latency p50 (µs) | p99 (µs) | records/s |`);
console.log(`|---|---|---|---|---|---|---|`);
for (const mode of ['batch', 'strict'] as const) {
  const r = await run(mode, checks, concurrency);
  console.log(`| ${mode} | ${checks} | ${concurrency} | ${r.cpuUs.toFixed(1)} | ${r.p50.toFixed(1)} | ${r.p99.toFixed(1)} | ${Math.round(r.perSec)} |`);
}
