/** The operator's probe port: /healthz (alive), /readyz (every informer synced), /metrics. */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Registry } from 'prom-client';

function send(res: ServerResponse, status: number, body: string, type = 'text/plain; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}

async function handle(ready: () => boolean, registry: Registry, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed\n');
  if (path === '/healthz') return send(res, 200, 'ok\n');
  if (path === '/readyz') return ready() ? send(res, 200, 'ready\n') : send(res, 503, 'not ready\n');
  if (path === '/metrics') return send(res, 200, await registry.metrics(), registry.contentType);
  send(res, 404, 'not found\n');
}

export function createProbeServer(ready: () => boolean, registry: Registry): Server {
  return createServer((req, res) => {
    void handle(ready, registry, req, res).catch(() => send(res, 500, 'internal error\n'));
  });
}

export function listen(http: Server, address: string): Promise<void> {
  const i = address.lastIndexOf(':');
  return new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(Number(address.slice(i + 1)), address.slice(0, i).replace(/^\[|\]$/g, ''), resolve);
  });
}
