/**
 * Builds the audit trail from its configuration: keys (from files, or ephemeral with a warning),
 * the sinks, the chain (continuing from the last checkpoint found in the file), the metrics and
 * the JWKS route an auditor fetches the public keys from.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';
import type { AuditConfig } from '../config.js';
import { PortcullisError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { AuditSink } from '../pipeline/hooks.js';
import type { HttpRoute } from '../server/http.js';
import type { AlertSink } from '../signals/alert.js';
import { Chain } from './chain.js';
import { readSubjectKey, SigningKey } from './keys.js';
import { AuditMetrics } from './metrics.js';
import { Pseudonymizer } from './pseudonym.js';
import type { DecisionEntry } from './record.js';
import { FileSink, findLastCheckpoint, StreamSink, type LineSink } from './sinks.js';
import { AuditTrail } from './trail.js';

export const JWKS_PATH = '/.well-known/audit-jwks.json';

export interface AuditService {
  trail: AuditTrail;
  key: SigningKey;
  routes: HttpRoute[];
  close(): Promise<void>;
}

export interface AuditServiceDeps {
  registry?: Registry;
  log: Pick<Logger, 'warn' | 'error'>;
  stdout?: NodeJS.WritableStream;
  source?: DecisionEntry['source'];
  /** The ephemeral pseudonym key the workers of one `serve --workers` share (no --audit-subject-key-file). */
  subjectKey?: Buffer;
}

export function jwksRoute(key: SigningKey): HttpRoute {
  const body = JSON.stringify(key.jwks());
  return (req: IncomingMessage, res: ServerResponse) => {
    if ((req.url ?? '').split('?')[0] !== JWKS_PATH) return false;
    res.writeHead(200, { 'content-type': 'application/jwk-set+json', 'cache-control': 'max-age=300' });
    res.end(body);
    return true;
  };
}

function keys(cfg: AuditConfig, log: AuditServiceDeps['log'], subjectKey?: Buffer): { key: SigningKey; pseudo: Pseudonymizer } {
  if (!cfg.keyFile) log.warn('audit: no --audit-key-file; checkpoints are signed with an ephemeral key, verifiable only while this process publishes its JWKS');
  if (!cfg.subjectKeyFile && !subjectKey) log.warn('audit: no --audit-subject-key-file; subject pseudonyms use an ephemeral key and will not match across restarts or replicas');
  return {
    key: cfg.keyFile ? SigningKey.fromFile(cfg.keyFile) : SigningKey.generate(),
    pseudo: cfg.subjectKeyFile ? new Pseudonymizer(readSubjectKey(cfg.subjectKeyFile)) : subjectKey ? new Pseudonymizer(subjectKey) : Pseudonymizer.ephemeral(),
  };
}

export async function createAuditService(cfg: AuditConfig, deps: AuditServiceDeps): Promise<AuditService> {
  const { key, pseudo } = keys(cfg, deps.log, deps.subjectKey);
  const sinks: LineSink[] = [];
  if (cfg.file) sinks.push(await FileSink.open(cfg.file, cfg.maxFileBytes));
  if (cfg.stdout) sinks.push(new StreamSink(deps.stdout ?? process.stdout));
  if (sinks.length === 0) throw new PortcullisError('USAGE', 'the audit trail needs a sink: --audit-file PATH, or leave stdout on');
  const metrics = new AuditMetrics();
  if (deps.registry) metrics.register(deps.registry);
  const previous = cfg.file ? findLastCheckpoint(cfg.file) : null;
  const chain = new Chain({ instance: cfg.instanceId, key, subjectKeyId: pseudo.keyId, previous });
  const trail = new AuditTrail({
    chain,
    pseudonymizer: pseudo,
    sinks,
    mode: cfg.mode,
    checkpointEvery: cfg.checkpointEvery,
    checkpointSeconds: cfg.checkpointSeconds,
    maxBuffered: cfg.maxBuffered,
    metrics,
    source: deps.source ?? 'grpc',
    onError: (err) => deps.log.error({ err }, 'audit sink write failed'),
  });
  return { trail, key, routes: [jwksRoute(key)], close: () => trail.close() };
}

/** What the server wires in: the injected sink, or one built from config (none when neither). */
export interface AuditWiring {
  sink?: AuditSink;
  /** The same trail, for ext_proc's masking records (createMasking): one chain per process. */
  masking?: Pick<AuditTrail, 'recordMasking'>;
  /** The same trail, for the suspicious-activity alert records (extauthz/signals). */
  alerts?: AlertSink;
  routes: HttpRoute[];
  /** The public checkpoint keys, for a primary that publishes its workers' keys together. */
  jwks?: object;
  close(): Promise<void>;
}

export async function auditWiring(cfg: AuditConfig | undefined, injected: AuditSink | undefined, deps: AuditServiceDeps): Promise<AuditWiring> {
  if (injected) {
    const masking = typeof (injected as Partial<AuditTrail>).recordMasking === 'function' ? (injected as AuditTrail) : undefined;
    const alerts = typeof (injected as Partial<AuditTrail>).recordAlert === 'function' ? (injected as AuditTrail) : undefined;
    return { sink: injected, ...(masking ? { masking } : {}), ...(alerts ? { alerts } : {}), routes: [], close: () => Promise.resolve() };
  }
  if (!cfg) return { routes: [], close: () => Promise.resolve() };
  const svc = await createAuditService(cfg, deps);
  return { sink: svc.trail, masking: svc.trail, alerts: svc.trail, routes: svc.routes, jwks: svc.key.jwks(), close: svc.close };
}
