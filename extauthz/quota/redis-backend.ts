/**
 * The Redis backend, for many replicas: one atomic server-side script per request charges all of
 * its counters (all or none). The connection fails fast rather than queueing (no offline queue,
 * a command timeout well inside Envoy's 200 ms budget), so an unreachable Redis turns into a
 * QuotaBackendError at once and the quota's onBackendError applies; ioredis keeps reconnecting
 * in the background, so the service recovers by itself when Redis returns.
 */
import { checkDeadline } from '../pipeline/deadline.js';
import { createHash } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { ChargeItem, ChargeOutcome, QuotaBackend } from './backend.js';
import { QuotaBackendError } from './backend.js';
import { ALGORITHM_CODE, CHARGE_SCRIPT, PEEK_SCRIPT } from './redis-script.js';

export interface RedisBackendOptions {
  url: string;
  /** Per-command budget; default 100 ms (half of Envoy's default ext_authz timeout). */
  commandTimeoutMs?: number;
  /** Connection events (error, ready, close) for the log; never throws. */
  onEvent?: (event: 'ready' | 'error' | 'close', detail?: string) => void;
  /** Extra ioredis options (tests). */
  redisOptions?: RedisOptions;
}

const SCRIPTS = {
  charge: { text: CHARGE_SCRIPT, sha: createHash('sha1').update(CHARGE_SCRIPT).digest('hex') },
  peek: { text: PEEK_SCRIPT, sha: createHash('sha1').update(PEEK_SCRIPT).digest('hex') },
} as const;

export class RedisBackend implements QuotaBackend {
  readonly name = 'redis' as const;
  private readonly redis: Redis;

  constructor(options: RedisBackendOptions) {
    const onEvent = options.onEvent ?? ((): void => undefined);
    this.redis = new Redis(options.url, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: options.commandTimeoutMs ?? 100,
      connectTimeout: 1000,
      // Reconnect forever with a capped backoff: recovery needs no operator.
      retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 5), 1000),
      lazyConnect: false,
      ...options.redisOptions,
    });
    this.redis.on('error', (err: Error) => onEvent('error', err.message));
    this.redis.on('ready', () => onEvent('ready'));
    this.redis.on('close', () => onEvent('close'));
  }

  /** Resolves when connected, or after timeoutMs (the service starts anyway and fails per quota). */
  async ready(timeoutMs = 2000): Promise<boolean> {
    if (this.redis.status === 'ready') return true;
    return new Promise((resolve) => {
      const done = (ok: boolean): void => {
        clearTimeout(timer);
        this.redis.off('ready', onReady);
        resolve(ok);
      };
      const onReady = (): void => done(true);
      const timer = setTimeout(() => done(false), timeoutMs);
      this.redis.on('ready', onReady);
    });
  }

  charge(items: readonly ChargeItem[], signal?: AbortSignal): Promise<ChargeOutcome[]> {
    return this.evaluate(SCRIPTS.charge, items, signal);
  }

  /** Dry run: the read-only script (no HSET, no PEXPIRE). */
  peek(items: readonly ChargeItem[], signal?: AbortSignal): Promise<ChargeOutcome[]> {
    return this.evaluate(SCRIPTS.peek, items, signal);
  }

  private async evaluate(script: { text: string; sha: string }, items: readonly ChargeItem[], signal?: AbortSignal): Promise<ChargeOutcome[]> {
    if (items.length === 0) return [];
    // ioredis takes no signal; past the deadline the script is never sent, so nothing is charged.
    checkDeadline(signal, 'before the Redis call');
    const keys = items.map((i) => i.key);
    const args = items.flatMap((i) => [ALGORITHM_CODE[i.algorithm], i.limit, i.periodMs, i.capacity, i.cost]);
    let raw: unknown;
    try {
      raw = await this.run(script, keys, args);
    } catch (err) {
      throw new QuotaBackendError(`redis: ${(err as Error).message}`, { cause: err });
    }
    return decode(raw, items.length);
  }

  private async run(script: { text: string; sha: string }, keys: string[], args: number[]): Promise<unknown> {
    try {
      return await this.redis.evalsha(script.sha, keys.length, ...keys, ...args);
    } catch (err) {
      // After a Redis restart the script cache is empty: send the script once more.
      if (!(err as Error).message.startsWith('NOSCRIPT')) throw err;
      return this.redis.eval(script.text, keys.length, ...keys, ...args);
    }
  }

  async close(): Promise<void> {
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect();
    }
  }
}

function decode(raw: unknown, n: number): ChargeOutcome[] {
  if (!Array.isArray(raw) || raw.length !== n * 5) throw new QuotaBackendError('redis: unexpected script reply');
  const out: ChargeOutcome[] = [];
  for (let i = 0; i < n; i++) {
    const [allowed, remaining, resetMs, retryAfterMs, never] = raw.slice(i * 5, i * 5 + 5).map(Number) as [number, number, number, number, number];
    out.push({ allowed: allowed === 1, remaining, resetMs, retryAfterMs, ...(never === 1 ? { never: true } : {}) });
  }
  return out;
}
