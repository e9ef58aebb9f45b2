/** The HTTP side port: /healthz (alive), /readyz (a snapshot is loaded and gRPC serves), /metrics. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';

export type HttpRoute = (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;

export interface HttpOptions {
  ready: () => boolean;
  registry: Registry;
  /** The registry /metrics renders, built per scrape (serve --workers aggregates its workers'). */
  aggregate?: () => Promise<Registry>;
  /** Extra routes (audit JWKS, …); return true when handled. */
  routes?: HttpRoute[];
}

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

export function createHttpServer(opts: HttpOptions): Server {
  return createServer((req, res) => {
    void handle(opts, req, res).catch(() => send(res, 500, 'internal error\n'));
  });
}

async function handle(opts: HttpOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed\n');
  if (path === '/healthz') return send(res, 200, 'ok\n');
  if (path === '/readyz') return opts.ready() ? send(res, 200, 'ready\n') : send(res, 503, 'not ready\n');
  if (path === '/metrics') {
    const registry = opts.aggregate ? await opts.aggregate() : opts.registry;
    return send(res, 200, await registry.metrics(), registry.contentType);
  }
  for (const route of opts.routes ?? []) if (await route(req, res)) return;
  send(res, 404, 'not found\n');
}
