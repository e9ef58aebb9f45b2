/** Shared by the audit tests and the benchmark: synthetic decisions and logs written the real way. */
import { join } from 'node:path';
import type { Decision } from '../pipeline/decision.js';
import { Chain } from './chain.js';
import { SigningKey } from './keys.js';
import { Pseudonymizer } from './pseudonym.js';
import { FileSink, findLastCheckpoint, rotatedFiles } from './sinks.js';
import { AuditTrail } from './trail.js';

export function fakeDecision(i: number): Decision {
  const allowed = i % 3 !== 0;
  return {
    requestId: `req-${i}`,
    allowed,
    status: allowed ? 200 : 403,
    code: allowed ? null : 'FORBIDDEN',
    reason: allowed ? 'allowed' : 'no rule allows this request',
    policy: 'c2g/citizen-records',
    ...(allowed ? { rule: 'citizen-reads-own-record' } : {}),
    principal: { type: 'consumer', tenant: `tenant-${i % 4}`, namespace: 'c2g', subject: `citizen-${i}`, method: 'jwt' },
    headers: {},
    removeHeaders: [],
    responseHeaders: {},
    metadata: {},
    trace: [],
    audit: { method: 'GET', host: 'records.c2g.example', pathTemplate: '/v1/citizens/{id}/records', sourceIp: `198.51.100.${i % 250}`, masks: ['$.records[*].taxId'], latencyMs: 0.25 },
  };
}

export interface LogRun {
  records: number;
  checkpointEvery: number;
  maxFileBytes?: number;
}

/** Writes runs (each a restart: a new chain continuing the last) to dir/audit.log; returns the files in order. */
export async function writeLog(dir: string, key: SigningKey, runs: LogRun[]): Promise<string[]> {
  const path = join(dir, 'audit.log');
  let n = 0;
  for (const run of runs) {
    const sink = await FileSink.open(path, run.maxFileBytes ?? 1 << 30);
    const pseudo = new Pseudonymizer(Buffer.alloc(32, 7));
    const chain = new Chain({ instance: 'test-0', key, subjectKeyId: pseudo.keyId, previous: findLastCheckpoint(path) });
    const trail = new AuditTrail({ chain, pseudonymizer: pseudo, sinks: [sink], mode: 'batch', checkpointEvery: run.checkpointEvery, checkpointSeconds: 3600, flushMs: 1 });
    for (let i = 0; i < run.records; i++) {
      await trail.record(fakeDecision(n++), undefined);
      // Yield now and then so records land in several batches, as under real traffic.
      if (i % 5 === 4) await new Promise((r) => setTimeout(r, 2));
    }
    await trail.close();
  }
  return [...rotatedFiles(path), path];
}

export function newKey(alg: 'EdDSA' | 'ES256' = 'EdDSA'): SigningKey {
  return SigningKey.generate(alg);
}
