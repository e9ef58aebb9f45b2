/**
 * The composition root of `portcullis serve`: policy source → pipeline → gRPC (Check, health) and
 * HTTP (health, readiness, metrics). Health reports NOT_SERVING until the first snapshot loads,
 * and SIGTERM drains in-flight checks before the listeners close.
 */
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { bindGrpc, drain, listenHttp } from './listen.js';
import { PortcullisError } from '../errors.js';
import type { ServeConfig } from '../config.js';
import type { Logger } from '../logger.js';
import { FolderPolicySource } from '../policy/folder-source.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import type { StoreInput } from '../policy/store.js';
import type { AuditSink, QuotaPhase } from '../pipeline/hooks.js';
import { DecisionPipeline } from '../pipeline/pipeline.js';
import { AuthorizationService } from './authorization.js';
import { createHttpServer, type HttpRoute } from './http.js';
import { ServiceMetrics } from './metrics.js';
import { createMasking } from '../extproc/setup.js';
import { resolveMaskingConfig } from '../config.js';
import { quotaServiceFor, type QuotaService } from '../quota/index.js';
import { auditWiring, type AuditWiring } from '../audit/service.js';
import type { MaskingRuntime } from '../extproc/setup.js';
import { SignalEngine } from '../signals/engine.js';
import { createTracing, type Tracing } from '../tracing/index.js';
import type { AlertSink } from '../signals/alert.js';

export const AUTH_SERVICE_NAME = 'envoy.service.auth.v3.Authorization';

/** Where policies come from; the folder source and the Kubernetes source both fit. */
export interface PolicySourceHandle {
  readonly snapshot: PolicySnapshot | undefined;
  start(): Promise<void>;
  close(): void | Promise<void>;
  /** Snapshots after start (an injected source; the built-in ones report through their events). */
  subscribe?(onSnapshot: (s: PolicySnapshot) => void): void;
}

/**
 * What a worker thread of `serve --workers` shares with its siblings (workers.ts): the port
 * (SO_REUSEPORT), the quota counters, and the keys that must agree across workers — masking
 * directives signed by one worker's Check are verified by whichever worker takes the ext_proc
 * stream, and subject pseudonyms must match across the workers' audit chains.
 */
export interface SharedWiring {
  quotaTable: SharedArrayBuffer;
  maskKeys: { signing: Buffer; hash: Buffer };
  subjectKey?: Buffer;
}

export interface ServeExtensions {
  source?: PolicySourceHandle;
  quota?: QuotaPhase;
  audit?: AuditSink;
  routes?: HttpRoute[];
  /** Register further gRPC services (ext_proc) on the same server. */
  services?: ((server: grpc.Server) => void)[];
  onClose?: () => Promise<void>;
  /** Set in a worker thread: listen with SO_REUSEPORT, no HTTP listener (the primary serves it). */
  shared?: SharedWiring;
}

export interface RunningServer {
  grpcPort: number;
  /** The ext_proc listener (masking enforcement), --ext-proc-address. */
  extProcPort: number;
  httpPort: number;
  metrics: ServiceMetrics;
  pipeline: DecisionPipeline;
  /** The audit chain's public checkpoint keys (JWKS), when this server writes an audit trail. */
  auditJwks?: object;
  close(): Promise<void>;
}

/** What a built-in source reports to the server: each new snapshot, and (serve --workers) each object set it compiles. */
export interface SourceHooks {
  onSnapshot: (s: PolicySnapshot) => void;
  onInput?: (input: StoreInput) => void;
}

function folderSource(config: ServeConfig, log: Logger, metrics: ServiceMetrics, { onSnapshot, onInput }: SourceHooks): PolicySourceHandle {
  const folder = new FolderPolicySource(config.policyDir!, {
    ...(onInput ? { onInput } : {}),
    onSnapshot: (s) => {
      metrics.reloads.inc({ result: 'ok' });
      metrics.countRevocationProblems([]);
      log.info({ version: s.version, policies: s.size, conflicts: s.conflicts.map((c) => c.format()) }, 'policy snapshot loaded');
      onSnapshot(s);
    },
    onRejected: (problems) => {
      metrics.reloads.inc({ result: 'error' });
      metrics.countRevocationProblems(problems);
      log.error({ problems: problems.map((p) => p.format()) }, 'policy change rejected; keeping the last good snapshot');
    },
  });
  return {
    get snapshot() {
      return folder.snapshot;
    },
    start: async () => {
      folder.reload();
      if (config.watch) folder.watch();
    },
    close: () => folder.close(),
  };
}

function kubernetesSource(config: ServeConfig, log: Logger, metrics: ServiceMetrics, { onSnapshot, onInput }: SourceHooks): PolicySourceHandle {
  // Loaded on use: @kubernetes/client-node never finishes loading inside a worker thread (seen on
  // 2.0.1 with Node 24), and the workers of serve --workers import this module.
  let inner: PolicySourceHandle | undefined;
  return {
    get snapshot() {
      return inner?.snapshot;
    },
    start: async () => {
      const [{ KubernetesPolicySource }, { loadKubeConfig }] = await Promise.all([import('../kube/policy-source.js'), import('../../kube/config.js')]);
      inner = new KubernetesPolicySource({
        kubeConfig: loadKubeConfig(config.kubeconfig),
        log,
        ...(onInput ? { onInput } : {}),
        ...(config.secretNamespaces ? { secretNamespaces: config.secretNamespaces } : {}),
        onSnapshot: (s) => {
          metrics.reloads.inc({ result: 'ok' });
          onSnapshot(s);
        },
        onApplied: (r) => metrics.countRevocationReports(r),
      });
      await inner.start();
    },
    close: () => inner?.close(),
  };
}

/** The configured policy source. */
export function policySourceFor(config: ServeConfig, log: Logger, metrics: ServiceMetrics, hooks: SourceHooks): PolicySourceHandle {
  return config.policySource === 'kubernetes' ? kubernetesSource(config, log, metrics, hooks) : folderSource(config, log, metrics, hooks);
}

/** Quotas, audit and masking: injected by the caller, built from the config, or (in a worker) from what the workers share. */
async function decisionParts({ config, log, ext, metrics, undo }: { config: ServeConfig; log: Logger; ext: ServeExtensions; metrics: ServiceMetrics; undo: Undo }): Promise<DecisionParts> {
  const shared = ext.shared;
  // Quotas: injected by the caller, or built from --quota-backend (memory by default).
  const quota = await quotaServiceFor(ext.quota, shared ? { ...config, quotaTable: shared.quotaTable } : config, metrics.registry, log);
  undo.push(() => quota.close());
  // Audit: injected by the caller, or built from config.audit (hash-chained records, signed checkpoints).
  const audit = await auditWiring(config.audit, ext.audit, { registry: metrics.registry, log, ...(shared?.subjectKey ? { subjectKey: shared.subjectKey } : {}) });
  undo.push(() => audit.close());
  // Masking: directives signed in shape, enforced by the ext_proc listener of this process.
  const masking = createMasking(config.masking ?? resolveMaskingConfig({}), log, { audit: audit.masking, registry: metrics.registry, shared: shared?.maskKeys });
  undo.push(() => masking.close(0));
  const tracing = await tracingFor(config);
  if (tracing) undo.push(() => tracing.shutdown());
  return { quota, audit, masking, tracing };
}

/** What startup built so far, closed in reverse when a later step fails (a Redis client left open would keep the process alive). */
type Undo = (() => unknown)[];

async function unwind(undo: Undo): Promise<void> {
  for (const step of undo.reverse()) {
    try {
      await step();
    } catch {
      // Best effort: the startup error is what the operator needs to see.
    }
  }
}

/** Usage errors keep their code; anything else that stops startup (a port in use, a key that does not load) is STARTUP_FAILED. */
function startupError(err: unknown): PortcullisError {
  if (err instanceof PortcullisError && err.code === 'USAGE') return err;
  return new PortcullisError('STARTUP_FAILED', err instanceof Error ? err.message : String(err), { cause: err });
}

/** Suspicious-activity signals: metrics, the log, and alert records in the audit chain. With
 * --workers each worker counts the Checks it serves (its own windows; see docs/alerts.md). */
function signalEngine(sink: AlertSink | undefined, log: Logger, metrics: ServiceMetrics): SignalEngine {
  const signals = new SignalEngine({
    ...(sink ? { sink } : {}),
    onAlert: (a) => log.warn({ signal: a.signal, tenant: a.tenant, count: a.count, threshold: a.threshold, windowSeconds: a.windowSeconds, requestId: a.requestId }, 'suspicious activity'),
    onError: (err, a) => log.error({ err, signal: a.signal, requestId: a.requestId }, 'alert record could not be written'),
  });
  signals.register(metrics.registry);
  return signals;
}

/** Tracing only with an OTLP endpoint; otherwise the SDK is not even loaded. */
function tracingFor(config: ServeConfig): Promise<Tracing | undefined> {
  if (!config.otlpEndpoint) return Promise.resolve(undefined);
  return createTracing({ endpoint: config.otlpEndpoint }, { instanceId: config.audit?.instanceId ?? 'portcullis' });
}

interface DecisionParts {
  quota: QuotaService;
  audit: AuditWiring;
  masking: MaskingRuntime;
  tracing: Tracing | undefined;
}

function pipelineFor(source: PolicySourceHandle, parts: DecisionParts, metrics: ServiceMetrics, log: Logger): DecisionPipeline {
  return new DecisionPipeline({
    signals: signalEngine(parts.audit.alerts, log, metrics),
    ...(parts.tracing ? { tracer: parts.tracing.tracer } : {}),
    snapshot: () => source.snapshot,
    directives: parts.masking.issuer,
    observe: metrics.observePhase,
    quota: parts.quota.phase,
    ...(parts.audit.sink ? { audit: parts.audit.sink } : {}),
    onInternalError: (err, requestId) => log.error({ err, requestId }, 'internal error during check'),
  });
}


/**
 * Starts every part, or none: a failure at any step closes what was built and rejects with
 * STARTUP_FAILED (or USAGE), so `serve` exits non-zero instead of hanging on open handles.
 */
export async function startServer(config: ServeConfig, log: Logger, ext: ServeExtensions = {}): Promise<RunningServer> {
  const undo: Undo = [];
  try {
    return await buildServer(config, log, ext, undo);
  } catch (err) {
    await unwind(undo);
    throw startupError(err);
  }
}

async function buildServer(config: ServeConfig, log: Logger, ext: ServeExtensions, undo: Undo): Promise<RunningServer> {
  const shared = ext.shared;
  // A worker's process-wide default metrics would be counted once per worker; the primary reports them.
  const metrics = new ServiceMetrics(!shared);
  const health = new HealthImplementation({ '': 'NOT_SERVING', [AUTH_SERVICE_NAME]: 'NOT_SERVING' });
  const markServing = (s: PolicySnapshot): void => {
    metrics.policies.set(s.size);
    metrics.snapshotVersion.set(s.version);
    health.setStatus('', 'SERVING');
    health.setStatus(AUTH_SERVICE_NAME, 'SERVING');
  };
  const source = ext.source ?? policySourceFor(config, log, metrics, { onSnapshot: markServing });
  const parts = await decisionParts({ config, log, ext, metrics, undo });
  const { quota, audit, masking, tracing } = parts;
  const pipeline = pipelineFor(source, parts, metrics, log);
  const auth = new AuthorizationService(pipeline, metrics.countDecision);
  // Channelz off: its per-call bookkeeping (call counters, timestamps) is measurable on the hot path and nothing here reads it.
  const grpcServer = new grpc.Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024, 'grpc.enable_channelz': 0 });
  auth.addToServer(grpcServer);
  health.addToServer(grpcServer);
  for (const register of ext.services ?? []) register(grpcServer);
  const grpcListener = await bindGrpc(grpcServer, config.grpcAddress, shared !== undefined);
  undo.push(() => {
    grpcListener.stopAccepting();
    grpcServer.forceShutdown();
  });
  const grpcPort = grpcListener.port;
  const extProcPort = await masking.listen();
  source.subscribe?.(markServing);
  undo.push(() => source.close());
  await source.start();
  if (source.snapshot) markServing(source.snapshot);
  // A worker has no HTTP listener: the primary serves health, readiness and metrics for all.
  const http = shared ? undefined : createHttpServer({ ready: () => source.snapshot !== undefined, registry: metrics.registry, routes: [...(ext.routes ?? []), ...audit.routes] });
  const httpPort = http ? await listenHttp(http, config.httpAddress) : 0;
  if (http) log.info({ grpc: `${config.grpcAddress.replace(/:\d+$/, '')}:${grpcPort}`, http: httpPort, source: config.policySource, tracing: tracing !== undefined }, 'portcullis serving');

  const close = async (): Promise<void> => {
    health.setStatus('', 'NOT_SERVING');
    health.setStatus(AUTH_SERVICE_NAME, 'NOT_SERVING');
    grpcListener.stopAccepting();
    await drain(grpcServer, config.drainSeconds);
    await masking.close(config.drainSeconds);
    await source.close();
    if (http) await new Promise<void>((resolve) => http.close(() => resolve()));
    await quota.close();
    // After the gRPC drain, so every answered Check is in the log before the final checkpoint.
    await audit.close();
    // Last: the spans of every answered Check are exported before the process goes.
    if (tracing) await tracing.shutdown();
    await ext.onClose?.();
  };
  const running: RunningServer = { grpcPort, extProcPort, httpPort, metrics, pipeline, close };
  if (audit.jwks) running.auditJwks = audit.jwks;
  return running;
}
