/**
 * Bounded JSON over HTTP for the identity providers a Tenant names (OIDC discovery, token
 * introspection): https only (plain http for loopback hosts when allowed), no redirects, a
 * timeout, an optional caller signal, and a response size bound enforced while reading. Errors
 * are FetchJsonError with a message that never quotes the response body.
 */

export class FetchJsonError extends Error {}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** The URL when it is https, or http on a loopback host (tests, local IdPs); else throws. */
export function checkedUrl(uri: string, what: string, allowInsecureLoopback = true): URL {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new Error(`${what} is not a valid URL`);
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && allowInsecureLoopback && LOOPBACK.has(url.hostname)) return url;
  throw new Error(`${what} must use https (plain http only for loopback hosts)`);
}

export interface FetchJsonOptions {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  timeoutMs: number;
  maxBytes: number;
  signal?: AbortSignal;
}

async function readBounded(res: Response, maxBytes: number): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > maxBytes) throw new FetchJsonError(`response larger than ${maxBytes} bytes`);
  if (!res.body) return '';
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new FetchJsonError(`response larger than ${maxBytes} bytes`);
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

async function send(url: URL, o: FetchJsonOptions, signal: AbortSignal): Promise<string> {
  const res = await fetch(url, { method: o.method ?? 'GET', headers: { accept: 'application/json', ...o.headers }, ...(o.body !== undefined ? { body: o.body } : {}), redirect: 'error', signal });
  if (res.status !== 200) {
    await res.body?.cancel().catch(() => undefined);
    throw new FetchJsonError(`HTTP status ${res.status}`);
  }
  return readBounded(res, o.maxBytes);
}

/** Fetches a JSON object; throws FetchJsonError on any failure (status, size, timeout, not a JSON object). */
export async function fetchJsonObject(url: URL, o: FetchJsonOptions): Promise<Record<string, unknown>> {
  const timeout = AbortSignal.timeout(o.timeoutMs);
  const signal = o.signal ? AbortSignal.any([o.signal, timeout]) : timeout;
  let text: string;
  try {
    text = await send(url, o, signal);
  } catch (err) {
    if (err instanceof FetchJsonError) throw err;
    if (timeout.aborted) throw new FetchJsonError(`no answer within ${o.timeoutMs} ms`, { cause: err });
    if (o.signal?.aborted) throw new FetchJsonError('the Check deadline passed', { cause: err });
    throw new FetchJsonError('request failed', { cause: err });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new FetchJsonError('response is not JSON');
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) throw new FetchJsonError('response is not a JSON object');
  return doc as Record<string, unknown>;
}
