/**
 * The watch transport handed to client-node's ListWatch. It keeps the library's contract
 * (`watch(path, params, onEvent, done)` returning an AbortController, one `done` per watch,
 * an inactivity timeout) and adds what the library's Watch drops: a refused watch carries its
 * status and the server's Retry-After, so the informer waits as long as the API server asks
 * (429 from priority and fairness, 503 while it starts) instead of guessing.
 */
import { HttpMethod, RequestContext, type KubeConfig } from '@kubernetes/client-node';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { fetch, type Dispatcher } from 'undici';
import { parseRetryAfter } from './errors.js';

export type WatchEvent = (phase: string, obj: unknown, raw: unknown) => void;
export type WatchDone = (err: unknown) => void;

/** What ListWatch needs of a watch transport. */
export interface WatchTransport {
  watch(path: string, params: Record<string, unknown>, onEvent: WatchEvent, done: WatchDone): Promise<AbortController>;
}

/** A refused watch: the HTTP status and, when the server sent one, its Retry-After. */
export class WatchRefused extends Error {
  constructor(
    readonly statusCode: number,
    readonly retryAfterMs: number | undefined,
  ) {
    super(`watch refused with HTTP ${statusCode}`);
    this.name = 'WatchRefused';
  }
}

interface AuthContext {
  getHeaders(): Record<string, string>;
  getDispatcher(): Dispatcher | undefined;
}

export class RetryAfterWatch implements WatchTransport {
  constructor(
    private readonly kc: KubeConfig,
    /** No byte for this long ends the watch (ListWatch then resumes from its resourceVersion). */
    private readonly idleMs = 30_000,
  ) {}

  async watch(path: string, params: Record<string, unknown>, onEvent: WatchEvent, done: WatchDone): Promise<AbortController> {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    const url = new URL(cluster.server + path);
    url.searchParams.set('watch', 'true');
    for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, String(v));
    const controller = new AbortController();
    const finish = once(controller, done);
    const idle = new IdleTimer(this.idleMs, () => finish(Object.assign(new Error('watch idle timeout'), { name: 'TimeoutError' })));
    try {
      const ctx = await this.authContext(url);
      const res = await fetch(url, { method: 'GET', headers: ctx.getHeaders(), signal: controller.signal, ...dispatcherOf(ctx) });
      if (res.status !== 200) {
        await res.body?.cancel().catch(() => undefined);
        throw new WatchRefused(res.status, parseRetryAfter(res.headers.get('retry-after') ?? undefined));
      }
      idle.reset();
      const body = Readable.fromWeb(res.body as never);
      body.on('data', () => idle.reset());
      body.on('error', (err) => finish(idle.stop(err)));
      const lines = createInterface(body);
      // readline re-emits the body's errors (an abort, a connection cut by a restarting server).
      lines.on('error', (err) => finish(idle.stop(err)));
      lines.on('line', (line) => deliver(line, onEvent));
      lines.on('close', () => finish(idle.stop(null)));
    } catch (err) {
      finish(idle.stop(err));
    }
    return controller;
  }

  private async authContext(url: URL): Promise<AuthContext> {
    const ctx = new RequestContext(url.toString(), HttpMethod.GET);
    await this.kc.applySecurityAuthentication(ctx);
    return ctx as unknown as AuthContext;
  }
}

function dispatcherOf(ctx: AuthContext): { dispatcher?: Dispatcher } {
  const d = ctx.getDispatcher();
  return d ? { dispatcher: d } : {};
}

function deliver(line: string, onEvent: WatchEvent): void {
  let data: { type?: unknown; object?: unknown };
  try {
    data = JSON.parse(line) as { type?: unknown; object?: unknown };
  } catch {
    return; // a torn line: the watch ends soon and resumes from the last resourceVersion
  }
  if (typeof data.type === 'string') onEvent(data.type, data.object, data);
}

/** `done` exactly once, and the request aborted with it. */
function once(controller: AbortController, done: WatchDone): WatchDone {
  let called = false;
  return (err) => {
    if (called) return;
    called = true;
    controller.abort();
    done(err);
  };
}

class IdleTimer {
  private timer: NodeJS.Timeout | undefined;
  constructor(
    private readonly ms: number,
    private readonly fire: () => void,
  ) {
    this.reset();
  }

  reset(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(this.fire, this.ms);
    this.timer.unref();
  }

  stop<E>(err: E): E {
    clearTimeout(this.timer);
    return err;
  }
}
