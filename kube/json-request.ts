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
import { ApiException, HttpMethod, RequestContext, type KubeConfig } from '@kubernetes/client-node';
import { request, type Dispatcher } from 'undici';

interface AuthContext {
  getHeaders(): Record<string, string>;
  getDispatcher(): Dispatcher | undefined;
}

function headerMap(h: Record<string, string | string[] | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(h).flatMap(([k, v]) => (v === undefined ? [] : [[k, Array.isArray(v) ? v.join(', ') : v]])));
}

/** Longest wait for the API server's answer; client-node's own calls leave undici's 300 s. */
const TIMEOUT_MS = 30_000;

/**
 * PUTs `body` as JSON to `path` (URL-encoded by the caller) and returns the parsed answer. A
 * refusal throws client-node's ApiException (its status and headers, which httpCode and
 * retryAfterMs read, as for every other call).
 */
export async function putJson<T>(kc: KubeConfig, path: string, body: unknown): Promise<T> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const url = cluster.server.replace(/\/+$/, '') + path;
  const ctx = new RequestContext(url, HttpMethod.PUT);
  await kc.applySecurityAuthentication(ctx);
  const auth = ctx as unknown as AuthContext;
  const dispatcher = auth.getDispatcher();
  const res = await request(url, {
    method: 'PUT',
    headersTimeout: TIMEOUT_MS,
    bodyTimeout: TIMEOUT_MS,
    headers: { ...auth.getHeaders(), 'content-type': 'application/json', accept: 'application/json' },
    body: JSON.stringify(body),
    ...(dispatcher ? { dispatcher } : {}),
  });
  const text = await res.body.text();
  if (res.statusCode < 200 || res.statusCode >= 300) throw new ApiException(res.statusCode, `PUT ${path}`, text, headerMap(res.headers));
  return JSON.parse(text) as T;
}
