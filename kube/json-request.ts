/**
 * One JSON request to the API server without client-node's generated-client path, for the
 * operator's hot write (a status PUT per policy). That path runs each call through WHATWG fetch
 * (undici's Request/Response objects and web streams) and the library's ObjectSerializer: on the
 * test control plane an ApiPolicy status PUT cost the client 1.06–1.29 ms of CPU that way and
 * 0.61–0.64 ms through undici.request, with the same cost to the API server (ADR 0016). A cold
 * start at 10,000 policies is 10,000 such writes, on nodes where the operator competes for CPU
 * with everything else.
 *
 * Authentication stays client-node's: applySecurityAuthentication per call, so rotated tokens,
 * exec plugins and client certificates apply as for every other call, and its dispatcher is the
 * shared pool (connections.ts).
 */
import { HttpMethod, RequestContext, type KubeConfig } from '@kubernetes/client-node';
import { request, type Dispatcher } from 'undici';

/** A refused call: the HTTP status (read by httpCode), the server's answer and its headers (Retry-After). */
export class ApiRequestError extends Error {
  constructor(
    readonly code: number,
    readonly body: string,
    readonly headers: Record<string, string | undefined>,
  ) {
    super(`HTTP ${code}: ${body.slice(0, 500)}`);
    this.name = 'ApiRequestError';
  }
}

interface AuthContext {
  getHeaders(): Record<string, string>;
  getDispatcher(): Dispatcher | undefined;
}

function headerMap(h: Record<string, string | string[] | undefined>): Record<string, string | undefined> {
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v]));
}

/** Sends `body` as JSON to `path` (URL-encoded by the caller) and returns the parsed answer. */
export async function requestJson<T>(kc: KubeConfig, method: 'PUT' | 'POST', path: string, body: unknown): Promise<T> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const url = cluster.server.replace(/\/+$/, '') + path;
  const ctx = new RequestContext(url, method === 'PUT' ? HttpMethod.PUT : HttpMethod.POST);
  await kc.applySecurityAuthentication(ctx);
  const auth = ctx as unknown as AuthContext;
  const dispatcher = auth.getDispatcher();
  const res = await request(url, {
    method,
    headers: { ...auth.getHeaders(), 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(body),
    ...(dispatcher ? { dispatcher } : {}),
  });
  const text = await res.body.text();
  if (res.statusCode < 200 || res.statusCode >= 300) throw new ApiRequestError(res.statusCode, text, headerMap(res.headers));
  return JSON.parse(text) as T;
}
