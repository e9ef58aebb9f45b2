/**
 * The composition root of `portcullis serve`: policy source → pipeline → gRPC (Check, health) and
 * HTTP (health, readiness, metrics). Health reports NOT_SERVING until the first snapshot loads,
 * and SIGTERM drains in-flight checks before the listeners close.
 */
import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import type { Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ServeConfig } from '../config.js';
import type { Logger } from '../logger.js';
import { FolderPolicySource } from '../policy/folder-source.js';
import { loadKubeConfig } from '../../kube/config.js';
import { KubernetesPolicySource } from '../kube/policy-source.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import type { AuditSink, QuotaPhase } from '../pipeline/hooks.js';
import { DecisionPipeline } from '../pipeline/pipeline.js';
import { AuthorizationService } from './authorization.js';
import { createHttpServer, type HttpRoute } from './http.js';
import { ServiceMetrics } from './metrics.js';
import { createMasking } from '../extproc/setup.js';
import { resolveMaskingConfig } from '../config.js';
import { quotaServiceFor } from '../quota/index.js';
import { auditWiring } from '../audit/service.js';
import { SignalEngine } from '../signals/engine.js';
import { createTracing, type Tracing } from '../tracing/index.js';
import type { AlertSink } from '../signals/alert.js';

export const AUTH_SERVICE_NAME = 'envoy.service.auth.v3.Authorization';

/** Where policies come from; the folder source and the Kubernetes source both fit. */
export interface PolicySourceHandle {
  readonly snapshot: PolicySnapshot | undefined;
  start(): Promise<void>;
  close(): void | Promise<void>;
}

export interface ServeExtensions {
  source?: PolicySourceHandle;
  quota?: QuotaPhase;
  audit?: AuditSink;
  routes?: HttpRoute[];
  /** Register further gRPC services (ext_proc) on the same server. */
  services?: ((server: grpc.Server) => void)[];
  onClose?: () => Promise<void>;
}

export interface RunningServer {
  grpcPort: number;
  /** The ext_proc listener (masking enforcement), --ext-proc-address. */
  extProcPort: number;
  httpPort: number;
  metrics: ServiceMetrics;
  pipeline: DecisionPipeline;
  close(): Promise<void>;
}

function folderSource(config: ServeConfig, log: Logger, metrics: ServiceMetrics, onSnapshot: (s: PolicySnapshot) => void): PolicySourceHandle {
  const folder = new FolderPolicySource(config.policyDir!, {
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

function kubernetesSource(config: ServeConfig, log: Logger, metrics: ServiceMetrics, onSnapshot: (s: PolicySnapshot) => void): PolicySourceHandle {
  return new KubernetesPolicySource({
    kubeConfig: loadKubeConfig(config.kubeconfig),
    log,
    onSnapshot: (s) => {
      metrics.reloads.inc({ result: 'ok' });
      onSnapshot(s);
    },
    onApplied: (r) => metrics.countRevocationProblems(r.problems),
  });
}

function bindGrpc(server: grpc.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
  });
}

function listenHttp(server: HttpServer, address: string): Promise<number> {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(address.slice(i + 1)), host, () => resolve((server.address() as AddressInfo).port));
  });
}

/** Suspicious-activity signals: metrics, the log, and alert records in the audit chain. */
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

export async function startServer(config: ServeConfig, log: Logger, ext: ServeExtensions = {}): Promise<RunningServer> {
  const metrics = new ServiceMetrics();
  const health = new HealthImplementation({ '': 'NOT_SERVING', [AUTH_SERVICE_NAME]: 'NOT_SERVING' });
  const markServing = (s: PolicySnapshot): void => {
    metrics.policies.set(s.size);
    metrics.snapshotVersion.set(s.version);
    health.setStatus('', 'SERVING');
    health.setStatus(AUTH_SERVICE_NAME, 'SERVING');
  };
  const source = ext.source ?? (config.policySource === 'kubernetes' ? kubernetesSource(config, log, metrics, markServing) : folderSource(config, log, metrics, markServing));
  // Quotas: injected by the caller, or built from --quota-backend (memory by default).
  const quota = await quotaServiceFor(ext.quota, config, metrics.registry, log);
  // Audit: injected by the caller, or built from config.audit (hash-chained records, signed checkpoints).
  const audit = await auditWiring(config.audit, ext.audit, { registry: metrics.registry, log });
  // Masking: directives signed in shape, enforced by the ext_proc listener of this process.
  const masking = createMasking(config.masking ?? resolveMaskingConfig({}), log, audit.masking, metrics.registry);
  const signals = signalEngine(audit.alerts, log, metrics);
  const tracing = await tracingFor(config);
  const pipeline = new DecisionPipeline({
    signals,
    ...(tracing ? { tracer: tracing.tracer } : {}),
    snapshot: () => source.snapshot,
    directives: masking.issuer,
    observe: metrics.observePhase,
    quota: quota.phase,
    ...(audit.sink ? { audit: audit.sink } : {}),
    onInternalError: (err, requestId) => log.error({ err, requestId }, 'internal error during check'),
  });
  const auth = new AuthorizationService(pipeline, metrics.countDecision);
  // Channelz off: its per-call bookkeeping (call counters, timestamps) is measurable on the hot path and nothing here reads it.
  const grpcServer = new grpc.Server({ 'grpc.max_receive_message_length': 4 * 1024 * 1024, 'grpc.enable_channelz': 0 });
  auth.addToServer(grpcServer);
  health.addToServer(grpcServer);
  for (const register of ext.services ?? []) register(grpcServer);
  const grpcPort = await bindGrpc(grpcServer, config.grpcAddress);
  const extProcPort = await masking.listen();
  await source.start();
  if (source.snapshot) markServing(source.snapshot);
  const routes = [...(ext.routes ?? []), ...audit.routes];
  const http = createHttpServer({ ready: () => source.snapshot !== undefined, registry: metrics.registry, routes });
  const httpPort = await listenHttp(http, config.httpAddress);
  log.info({ grpc: `${config.grpcAddress.replace(/:\d+$/, '')}:${grpcPort}`, http: httpPort, source: config.policySource, tracing: tracing !== undefined }, 'portcullis serving');

  const close = async (): Promise<void> => {
    health.setStatus('', 'NOT_SERVING');
    health.setStatus(AUTH_SERVICE_NAME, 'NOT_SERVING');
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        grpcServer.forceShutdown();
        resolve();
      }, config.drainSeconds * 1000);
      grpcServer.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
    await masking.close(config.drainSeconds);
    await source.close();
    await new Promise<void>((resolve) => http.close(() => resolve()));
    await quota.close();
    // After the gRPC drain, so every answered Check is in the log before the final checkpoint.
    await audit.close();
    // Last: the spans of every answered Check are exported before the process goes.
    if (tracing) await tracing.shutdown();
    await ext.onClose?.();
  };
  return { grpcPort, extProcPort, httpPort, metrics, pipeline, close };
}
