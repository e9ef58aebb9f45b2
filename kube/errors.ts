/** What a failed Kubernetes API call tells a retry loop: its HTTP status and any Retry-After. */

export function httpCode(err: unknown): number | undefined {
  const e = err as { code?: unknown; statusCode?: unknown; response?: { statusCode?: unknown } } | undefined;
  const c = e?.code ?? e?.statusCode ?? e?.response?.statusCode;
  return typeof c === 'number' ? c : undefined;
}

/** A Retry-After header value (delta-seconds or an HTTP date) in milliseconds, if usable. */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (/^\d{1,6}$/.test(v)) return Number(v) * 1000;
  if (!/GMT$/.test(v)) return undefined; // HTTP dates are IMF-fixdate (RFC 9110 §5.6.7)
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Retry-After carried by an API error: ApiException headers, or the watch transport's field. */
export function retryAfterMs(err: unknown): number | undefined {
  const e = err as { retryAfterMs?: unknown; headers?: Record<string, string | undefined> } | undefined;
  if (typeof e?.retryAfterMs === 'number') return e.retryAfterMs;
  const headers = e?.headers;
  if (!headers || typeof headers !== 'object') return undefined;
  const key = Object.keys(headers).find((k) => k.toLowerCase() === 'retry-after');
  return key ? parseRetryAfter(headers[key]) : undefined;
}
