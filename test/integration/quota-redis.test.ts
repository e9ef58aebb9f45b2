/**
 * Quotas on a real redis-server shared by two service instances: the total admitted under heavy
 * concurrency never exceeds the limit; Redis killed mid-run applies each quota's onBackendError;
 * Redis restarted brings the service back to normal by itself.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import { resolveMaskingConfig } from '../../extauthz/config.js';
import { createLogger } from '../../extauthz/logger.js';
import type { CheckRequestInput } from '../../extauthz/pipeline/check-request.js';
import { startServer, type RunningServer } from '../../extauthz/server/serve.js';
import { envoyProtos } from '../../proto/envoy.js';
import { AGENCY_SPIFFE, KEYS, quotaPolicyYaml, quotaRequest, type Caller } from '../../extauthz/quota/test-fixtures.js';
import { eventually, headerMap, serveConfig, type CheckResponse } from '../helpers/server.js';
import { startRedis, type RedisServer } from './redis-server.js';

const AGENCY_DAILY = 60;
const BURST = 5;

interface Instance {
  server: { check(req: CheckRequestInput): Promise<CheckResponse>; close(): Promise<void> };
  registry: Registry;
}

type Unary = (req: unknown, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;

/**
 * One service instance configured as `serve --quota-backend redis --redis-url URL` would be. The
 * command budget is generous: two servers and all clients share one event loop here, and a
 * timed-out charge may still have been counted by Redis, which would blur the exact total.
 */
async function instance(dir: string, redisUrl: string): Promise<Instance> {
  const config = { ...serveConfig(dir), quotaBackend: 'redis' as const, redisUrl, redisCommandTimeoutMs: 2000, masking: resolveMaskingConfig({ extProcAddress: '127.0.0.1:0' }) };
  const running: RunningServer = await startServer(config, createLogger('silent'));
  const protos = envoyProtos() as unknown as { envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } } };
  const client = new protos.envoy.service.auth.v3.Authorization(`127.0.0.1:${running.grpcPort}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & { Check: Unary };
  const check = (req: CheckRequestInput): Promise<CheckResponse> =>
    new Promise((resolve, reject) => client.Check(req, (err, res) => (err ? reject(err) : resolve(res as CheckResponse))));
  return {
    server: { check, close: async () => { client.close(); await running.close(); } },
    registry: running.metrics.registry,
  };
}

function tally(res: CheckResponse[]): string {
  const t: Record<string, number> = {};
  for (const r of res) t[outcome(r)] = (t[outcome(r)] ?? 0) + 1;
  return JSON.stringify(t);
}

function outcome(r: CheckResponse): string {
  return r.okResponse ? 'OK' : (r.status?.message ?? 'DENIED');
}

/** Sends `total` checks spread over the instances with `concurrency` in flight. */
async function flood(instances: Instance[], caller: Caller, total: number, concurrency: number): Promise<CheckResponse[]> {
  const out: CheckResponse[] = [];
  let next = 0;
  const worker = async (w: number): Promise<void> => {
    while (next < total) {
      const i = next++;
      out.push(await instances[(i + w) % instances.length]!.server.check(quotaRequest(caller)));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  return out;
}

void describe('quotas on Redis shared by two instances', () => {
  let redis: RedisServer;
  let dir: string;
  let a: Instance;
  let b: Instance;

  before(async () => {
    redis = await startRedis();
    dir = mkdtempSync(join(tmpdir(), 'portcullis-quota-'));
    writeFileSync(join(dir, 'quota.yaml'), quotaPolicyYaml({ agencyDaily: AGENCY_DAILY, burstLimit: BURST, onBackendError: 'deny', burstOnBackendError: 'allow' }));
    a = await instance(dir, redis.url);
    b = await instance(dir, redis.url);
  });

  after(async () => {
    await a?.server.close();
    await b?.server.close();
    await redis?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  void test('many concurrent clients: the total admitted never exceeds the daily limit', async () => {
    const day = Math.floor(Date.now() / 86_400_000);
    const res = await flood([a, b], { spiffe: AGENCY_SPIFFE }, AGENCY_DAILY * 4, 48);
    const admitted = res.filter((r) => r.okResponse).length;
    assert.ok(admitted <= AGENCY_DAILY, `admitted ${admitted} > ${AGENCY_DAILY}`);
    // Within one UTC day (the window), exactly the limit is admitted: nothing is lost either.
    if (Math.floor(Date.now() / 86_400_000) === day) assert.equal(admitted, AGENCY_DAILY, tally(res));
    const refused = res.filter((r) => !r.okResponse);
    assert.ok(refused.every((r) => outcome(r) === 'QUOTA_EXCEEDED'), JSON.stringify(refused[0]?.status));
    const h = headerMap(refused[0]?.deniedResponse?.headers);
    assert.equal(h['ratelimit-policy'], `"daily";q=${AGENCY_DAILY};w=86400`);
    assert.match(h['ratelimit'] ?? '', /^"daily";r=0;t=\d+$/);
    assert.match(h['retry-after'] ?? '', /^\d+$/);
  });

  void test('token bucket under concurrency: never more than the burst plus what refilled', async () => {
    const started = Date.now();
    const res = await flood([a, b], { apiKey: KEYS.a1 }, 100, 32);
    const refill = Math.ceil(((Date.now() - started) / 60_000) * BURST);
    const admitted = res.filter((r) => r.okResponse).length;
    assert.ok(admitted >= BURST && admitted <= BURST + refill, `admitted ${admitted}, burst ${BURST}, refill ${refill}: ${tally(res)}`);
    const ok = res.find((r) => r.okResponse)!;
    assert.match(headerMap((ok.okResponse as { responseHeadersToAdd?: never }).responseHeadersToAdd)['ratelimit'] ?? '', /^"burst";r=\d+;t=\d+, "app-total";r=\d+;t=\d+$/);
  });

  void test('Redis killed: deny quotas fail closed, allow quotas fail open; restarted: normal again', async () => {
    await redis.stop();
    const agency = await a.server.check(quotaRequest({ spiffe: AGENCY_SPIFFE }));
    assert.equal(outcome(agency), 'QUOTA_UNAVAILABLE');
    assert.equal(agency.deniedResponse?.status?.code, 'ServiceUnavailable');
    // app-b's burst quota says allow; its appliesTo quota app-total is deny (the default), so
    // the request is refused as a whole: any fail-closed quota wins.
    const consumer = await b.server.check(quotaRequest({ apiKey: KEYS.b1 }));
    assert.equal(outcome(consumer), 'QUOTA_UNAVAILABLE');
    assert.match(await a.registry.metrics(), /portcullis_quota_backend_errors_total\{backend="redis"\} [1-9]/);
    assert.match(await a.registry.metrics(), /portcullis_quota_decisions_total\{quota="daily",outcome="backend_error_denied"\} [1-9]/);

    await redis.restart();
    // No operator action: both instances reconnect by themselves; the restarted Redis is empty.
    for (const inst of [a, b]) {
      await eventually(async () => outcome(await inst.server.check(quotaRequest({ spiffe: AGENCY_SPIFFE }))) === 'OK', 'agency admitted again');
    }
    assert.equal(outcome(await b.server.check(quotaRequest({ apiKey: KEYS.b1 }))), 'OK');
  });
});
