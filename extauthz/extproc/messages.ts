/**
 * The subset of envoy.service.ext_proc.v3 messages Portcullis reads and writes, in the
 * proto-loader object shape (camelCase, bytes as Buffer), and small builders for responses.
 */
import { CATALOGUE, type ErrorCode } from '../errors.js';

export interface HeaderValue {
  key?: string;
  value?: string;
  rawValue?: Buffer | Uint8Array | string;
}

export interface HttpHeaders {
  headers?: { headers?: HeaderValue[] };
  endOfStream?: boolean;
}

export interface HttpBody {
  body?: Buffer | Uint8Array;
  endOfStream?: boolean;
}

export interface ProtoStructLike {
  fields?: Record<string, { stringValue?: string; structValue?: ProtoStructLike } | undefined>;
}

export interface ProcessingRequest {
  requestHeaders?: HttpHeaders;
  responseHeaders?: HttpHeaders;
  requestBody?: HttpBody;
  responseBody?: HttpBody;
  requestTrailers?: unknown;
  responseTrailers?: unknown;
  metadataContext?: { filterMetadata?: Record<string, ProtoStructLike | undefined> };
  observabilityMode?: boolean;
}

export type ProcessingResponse = Record<string, unknown>;

/** Lower-case name → value; raw_value (newer Envoy) wins over value. */
export function headerMap(h: HttpHeaders | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const x of h?.headers?.headers ?? []) {
    if (!x.key) continue;
    const raw = x.rawValue;
    const v = raw !== undefined && raw.length > 0 ? Buffer.from(raw as Uint8Array).toString('latin1') : (x.value ?? '');
    const k = x.key.toLowerCase();
    out.set(k, out.has(k) ? `${out.get(k)},${v}` : v);
  }
  return out;
}

export function setHeader(key: string, value: string): Record<string, unknown> {
  return { header: { key, rawValue: Buffer.from(value, 'latin1') }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' };
}

/** BodySendMode NONE for the rest of the stream (honoured with allow_mode_override). */
export const BODY_OFF = { responseBodyMode: 'NONE' } as const;

export function cont(kind: 'requestHeaders' | 'responseHeaders' | 'requestBody' | 'responseBody', response: Record<string, unknown> = {}, modeOverride?: Record<string, string>): ProcessingResponse {
  return { [kind]: { response }, ...(modeOverride ? { modeOverride } : {}) };
}

export function trailers(kind: 'requestTrailers' | 'responseTrailers'): ProcessingResponse {
  return { [kind]: {} };
}

/** The error response that replaces whatever the upstream sent: the same JSON shape as a deny. */
export function immediate(code: ErrorCode, requestId: string): ProcessingResponse {
  const entry = CATALOGUE[code];
  const body = JSON.stringify({ error: { code, message: entry.summary, requestId } });
  return {
    immediateResponse: {
      status: { code: entry.http },
      headers: { setHeaders: [setHeader('content-type', 'application/json'), setHeader('cache-control', 'no-store')] },
      body: Buffer.from(body),
      details: `portcullis_${code.toLowerCase()}`,
    },
  };
}
