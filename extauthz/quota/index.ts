/** Builds the quota phase the service runs with, from the validated serve configuration. */
import { randomBytes } from 'node:crypto';
import type { Registry } from 'prom-client';
import type { QuotaPhase } from '../pipeline/hooks.js';
import type { QuotaBackend } from './backend.js';
import { MemoryBackend } from './memory-backend.js';
import { QuotaMetrics } from './metrics.js';
import { QuotaEnforcer, type QuotaLog } from './phase.js';
import { RedisBackend } from './redis-backend.js';

export { QuotaEnforcer } from './phase.js';
export { MemoryBackend } from './memory-backend.js';
export { RedisBackend } from './redis-backend.js';

export interface QuotaSettings {
  quotaBackend?: 'memory' | 'redis';
  redisUrl?: string;
  quotaHashKey?: string;
  redisCommandTimeoutMs?: number;
  /** The memory backend's counters, shared with the other workers of `serve --workers`. */
  quotaTable?: SharedArrayBuffer;
}

export interface QuotaService {
  phase: QuotaPhase;
  close(): Promise<void>;
}

function backendFor(settings: QuotaSettings, log: QuotaLog & { debug?(obj: object, msg: string): void }): QuotaBackend {
  if (settings.quotaBackend !== 'redis') return new MemoryBackend(settings.quotaTable ? { table: settings.quotaTable } : {});
  return new RedisBackend({
    url: settings.redisUrl ?? 'redis://127.0.0.1:6379',
    ...(settings.redisCommandTimeoutMs !== undefined ? { commandTimeoutMs: settings.redisCommandTimeoutMs } : {}),
    onEvent: (event, detail) => log.debug?.({ backend: 'redis', event, ...(detail ? { detail } : {}) }, 'redis connection event'),
  });
}

/**
 * Memory: keys never leave the process, so a random key per process is best. Redis: replicas must
 * agree, so without a configured key the fixed default is used, and a warning says that short
 * subjects (e.g. national ID numbers) could then be recovered from keys by enumeration.
 */
function hashKeyFor(settings: QuotaSettings, log: QuotaLog): string | undefined {
  if (settings.quotaHashKey) return settings.quotaHashKey;
  if (settings.quotaBackend !== 'redis') return randomBytes(32).toString('base64url');
  log.warn({ backend: 'redis' }, 'no PORTCULLIS_QUOTA_HASH_KEY: quota keys in Redis pseudonymise subjects with a public default key');
  return undefined;
}

export async function createQuotaService(settings: QuotaSettings, registry: Registry, log: QuotaLog): Promise<QuotaService> {
  const backend = backendFor(settings, log);
  if (backend instanceof RedisBackend && !(await backend.ready())) {
    log.warn({ backend: 'redis' }, 'redis not reachable at start; serving, and quotas apply onBackendError until it is');
  }
  const phase = new QuotaEnforcer({ backend, metrics: new QuotaMetrics(registry), log, hashKey: hashKeyFor(settings, log) });
  return { phase, close: () => backend.close() };
}

/** The phase a server runs: the one injected by an embedder, or one built from the settings. */
export async function quotaServiceFor(injected: QuotaPhase | undefined, settings: QuotaSettings, registry: Registry, log: QuotaLog): Promise<QuotaService> {
  if (injected) return { phase: injected, close: () => Promise.resolve() };
  return createQuotaService(settings, registry, log);
}
