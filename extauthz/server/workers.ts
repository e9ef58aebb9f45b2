/**
 * `serve --workers N`: N worker threads each serve Check and ext_proc on the same ports
 * (SO_REUSEPORT; the kernel spreads connections), and this primary thread runs what must exist
 * once: the policy source (its object sets are forwarded to every worker), the HTTP listener
 * (readiness over all workers, metrics aggregated over all workers, the audit JWKS of every
 * chain), SIGTERM drain, and restarting a worker that died. Quota counters of the memory backend
 * live in one SharedArrayBuffer, so limits stay exact across workers; each worker writes its own
 * audit chain (instance id suffixed -wN).
 */
import { randomBytes } from 'node:crypto';
import { extname } from 'node:path';
import { Worker } from 'node:worker_threads';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { resolveMaskingConfig, type ServeConfig } from '../config.js';
import { PortcullisError } from '../errors.js';
import { maskingKeys } from '../extproc/setup.js';
import type { Logger } from '../logger.js';
import type { StoreInput } from '../policy/store.js';
import { SharedQuotaTable } from '../quota/shared-table.js';
import { JWKS_PATH } from '../audit/service.js';
import { toWire, type WireInput } from './forwarded-source.js';
import { createHttpServer, type HttpRoute } from './http.js';
import { listenHttp } from './listen.js';
import { ServiceMetrics } from './metrics.js';
import { policySourceFor, type PolicySourceHandle } from './serve.js';
import type { FromWorker, ToWorker, WorkerInit, WorkerMetrics } from './worker-protocol.js';

const WORKER_URL = new URL('./worker-main.js', import.meta.url);
/** A worker that died is started again after this long (a crash loop costs one start per second). */
const RESTART_DELAY_MS = 1_000;
const SCRAPE_TIMEOUT_MS = 2_000;

export interface RunningPool {
  grpcPort: number;
  extProcPort: number;
  httpPort: number;
  workers: number;
  close(): Promise<void>;
}

interface Slot {
  index: number;
  worker?: Worker;
  started: boolean;
  ready: boolean;
  jwks?: { keys?: unknown[] };
  scrapes: Map<number, (m: WorkerMetrics) => void>;
  restart?: NodeJS.Timeout;
}

/** audit.jsonl → audit-w2.jsonl: one file (and chain) per worker. */
export function workerFile(file: string, index: number): string {
  const ext = extname(file);
  return `${file.slice(0, file.length - ext.length)}-w${index}${ext}`;
}

function withPort(address: string, port: number): string {
  return `${address.slice(0, address.lastIndexOf(':'))}:${port}`;
}

/** What every worker must agree on, made once here: keys, the quota table. */
function agreedState(config: ServeConfig, log: Logger): { shared: Pick<WorkerInit, 'quotaTable' | 'maskKeys' | 'subjectKey'>; masking: NonNullable<ServeConfig['masking']>; quotaHashKey: string | undefined } {
  const masking = config.masking ?? resolveMaskingConfig({});
  const maskKey = maskingKeys(masking, log);
  const shared = {
    quotaTable: new SharedQuotaTable().buffer,
    maskKeys: { signing: maskKey.signing.secret, hash: maskKey.hash },
    ...(config.audit && !config.audit.subjectKeyFile ? { subjectKey: randomBytes(32) } : {}),
  };
  // Memory quota keys are pseudonymised with a per-process key; the workers share one table, so one key.
  const quotaHashKey = config.quotaHashKey ?? (config.quotaBackend === 'redis' ? undefined : randomBytes(32).toString('base64url'));
  if (config.audit && !config.audit.subjectKeyFile) log.warn('audit: no --audit-subject-key-file; subject pseudonyms use an ephemeral key (shared by the workers of this process) and will not match across restarts or replicas');
  return { shared, masking, quotaHashKey };
}

/** Asks every worker to drain (it closes like a single server would); one that overruns is stopped. */
function closeWorkers(slots: Slot[], drainSeconds: number): Promise<void[]> {
  return Promise.all(
    slots.map(
      (slot) =>
        new Promise<void>((resolve) => {
          const worker = slot.worker;
          if (!worker) return resolve();
          const force = setTimeout(() => void worker.terminate(), (drainSeconds + 5) * 1000);
          worker.once('exit', () => {
            clearTimeout(force);
            resolve();
          });
          worker.postMessage({ type: 'close' } satisfies ToWorker);
        }),
    ),
  );
}

export async function startWorkerPool(config: ServeConfig, log: Logger): Promise<RunningPool> {
  const count = config.workers;
  const metrics = new ServiceMetrics();
  let latest: WireInput | undefined;
  let closing = false;
  const slots: Slot[] = Array.from({ length: count }, (_, index) => ({ index, started: false, ready: false, scrapes: new Map() }));
  const post = (slot: Slot, m: ToWorker): void => slot.worker?.postMessage(m);
  const forward = (input: StoreInput): void => {
    latest = toWire(input);
    for (const slot of slots) if (slot.started) post(slot, { type: 'policies', input: latest });
  };
  const source: PolicySourceHandle = policySourceFor(config, log, metrics, {
    onSnapshot: (s) => {
      metrics.policies.set(s.size);
      metrics.snapshotVersion.set(s.version);
    },
    onInput: forward,
  });
  await source.start();

  const { shared, masking, quotaHashKey } = agreedState(config, log);
  const workerConfig = (index: number, grpcAddress: string, extProcAddress: string): ServeConfig => ({
    ...config,
    grpcAddress,
    ...(quotaHashKey ? { quotaHashKey } : {}),
    masking: { ...masking, extProcAddress },
    ...(config.audit
      ? { audit: { ...config.audit, instanceId: `${config.audit.instanceId.slice(0, 120)}-w${index}`, ...(config.audit.file ? { file: workerFile(config.audit.file, index) } : {}) } }
      : {}),
  });
  const fingerprint = config.policySource === 'kubernetes' ? 'generation' : 'spec';

  const spawn = (slot: Slot, grpcAddress: string, extProcAddress: string): Promise<{ grpcPort: number; extProcPort: number }> =>
    new Promise((resolve, reject) => {
      const init: WorkerInit = { index: slot.index, config: workerConfig(slot.index, grpcAddress, extProcAddress), fingerprint, ...shared, ...(latest ? { initial: latest } : {}) };
      const worker = new Worker(WORKER_URL, { workerData: init, stdout: false, stderr: false });
      slot.worker = worker;
      worker.on('message', (m: FromWorker) => {
        if (m.type === 'started') {
          slot.started = true;
          slot.ready = m.ready;
          if (m.jwks) slot.jwks = m.jwks as { keys?: unknown[] };
          // A set that arrived while this worker was starting.
          if (latest && latest !== init.initial) post(slot, { type: 'policies', input: latest });
          resolve({ grpcPort: m.grpcPort, extProcPort: m.extProcPort });
        } else if (m.type === 'ready') slot.ready = true;
        else if (m.type === 'metrics') slot.scrapes.get(m.id)?.(m.metrics);
      });
      worker.once('error', (err) => {
        log.error({ worker: slot.index, err: String(err) }, 'worker failed');
        reject(err);
      });
      worker.once('exit', (code) => {
        const wasStarted = slot.started;
        slot.started = false;
        slot.ready = false;
        slot.worker = undefined;
        for (const done of slot.scrapes.values()) done([]);
        slot.scrapes.clear();
        reject(new PortcullisError('INTERNAL', `worker ${slot.index} exited with code ${code} before it started`));
        // One that never started failed on its configuration (a port in use): startup reports it.
        if (closing || !wasStarted) return;
        log.error({ worker: slot.index, code }, `worker exited; starting it again in ${RESTART_DELAY_MS} ms`);
        slot.restart = setTimeout(() => {
          spawn(slot, ports.grpc, ports.extProc).catch((err: unknown) => log.error({ worker: slot.index, err: String(err) }, 'worker restart failed'));
        }, RESTART_DELAY_MS);
      });
    });

  // The first worker may pick the ports (":0"); the others bind the same ones.
  let first: { grpcPort: number; extProcPort: number };
  let ports = { grpc: config.grpcAddress, extProc: masking.extProcAddress };
  try {
    first = await spawn(slots[0]!, ports.grpc, ports.extProc);
    ports = { grpc: withPort(config.grpcAddress, first.grpcPort), extProc: withPort(masking.extProcAddress, first.extProcPort) };
    await Promise.all(slots.slice(1).map((slot) => spawn(slot, ports.grpc, ports.extProc)));
  } catch (err) {
    closing = true;
    await Promise.all(slots.map((s) => s.worker?.terminate()));
    await source.close();
    throw new PortcullisError('STARTUP_FAILED', `serve --workers ${count}: a worker could not start: ${(err as Error).message}`, { cause: err });
  }

  let scrapeId = 0;
  const scrape = (slot: Slot): Promise<WorkerMetrics> =>
    new Promise((resolve) => {
      if (!slot.started) return resolve([]);
      const id = ++scrapeId;
      const timer = setTimeout(() => done([]), SCRAPE_TIMEOUT_MS);
      const done = (m: WorkerMetrics): void => {
        clearTimeout(timer);
        slot.scrapes.delete(id);
        resolve(m);
      };
      slot.scrapes.set(id, done);
      post(slot, { type: 'metrics', id });
    });
  const aggregated = async (): Promise<Registry> => AggregatorRegistry.aggregate([await metrics.registry.getMetricsAsJSON(), ...(await Promise.all(slots.map(scrape)))]);
  const jwks: HttpRoute = (req, res) => {
    if ((req.url ?? '').split('?')[0] !== JWKS_PATH || !config.audit) return false;
    res.writeHead(200, { 'content-type': 'application/jwk-set+json', 'cache-control': 'max-age=300' });
    res.end(JSON.stringify({ keys: slots.flatMap((s) => s.jwks?.keys ?? []) }));
    return true;
  };
  const http = createHttpServer({ ready: () => source.snapshot !== undefined && slots.every((s) => s.ready), registry: metrics.registry, aggregate: aggregated, routes: [jwks] });
  const httpPort = await listenHttp(http, config.httpAddress);
  log.info({ grpc: ports.grpc, http: httpPort, source: config.policySource, workers: count }, 'portcullis serving');

  const close = async (): Promise<void> => {
    closing = true;
    for (const slot of slots) clearTimeout(slot.restart);
    await closeWorkers(slots, config.drainSeconds);
    await source.close();
    await new Promise<void>((resolve) => http.close(() => resolve()));
  };
  return { grpcPort: first.grpcPort, extProcPort: first.extProcPort, httpPort, workers: count, close };
}
