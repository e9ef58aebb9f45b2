/**
 * Phase 1, parse: a CheckRequest becomes a typed request context. Client-supplied x-portcullis-*
 * headers are dropped here (and removed upstream by the shape phase), so nothing downstream can
 * read a forged identity. Anything malformed is a BAD_REQUEST decision, never a thrown RPC error.
 */
import { randomUUID } from 'node:crypto';
import { PortcullisError } from '../errors.js';
import { normalizeHost } from '../policy/hosts.js';
import type { CheckRequestInput, HeaderValue } from './check-request.js';
import { LIMITS } from '../policy/input-limits.js';

// The limits live with the policy engine: the CEL cost estimator bounds expressions by them.
export { LIMITS } from '../policy/input-limits.js';

const HEADER_NAME = /^:?[a-z0-9!#$%&'*+.^_`|~-]+$/;
const METHOD = /^[A-Z]{1,16}$/;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
export const RESERVED_PREFIX = 'x-portcullis-';
/**
 * Method-override headers some frameworks honour (Express method-override, Rails, Spring's
 * HiddenHttpMethodFilter, ASP.NET): the upstream would run another method than the one decided.
 * Portcullis removes them upstream (and its decision uses the request's own method).
 */
export const METHOD_OVERRIDE_HEADERS: readonly string[] = ['x-http-method-override', 'x-method-override', 'x-http-method'];

/**
 * The name as backends compare it: CGI, PHP, Django, Rails and nginx's underscores_in_headers
 * map `-` and `_` to the same character, so `x_portcullis_tenant` reaches them as the header
 * Portcullis sets.
 */
export function backendHeaderName(name: string): string {
  return name.toLowerCase().replace(/_/g, '-');
}

/** A client copy of a header Portcullis owns, in any spelling a backend would read as it. */
export function isReservedHeader(name: string): boolean {
  return backendHeaderName(name).startsWith(RESERVED_PREFIX);
}

export function isMethodOverrideHeader(name: string): boolean {
  return METHOD_OVERRIDE_HEADERS.includes(backendHeaderName(name));
}

export interface RequestContext {
  requestId: string;
  method: string;
  host: string;
  /** The path without query or fragment, as received. */
  path: string;
  /** Percent-decoded path segments. */
  segments: string[];
  query: Record<string, string>;
  /** The query string after ?, undecoded ('' when none): request.query checks read every value. */
  rawQuery: string;
  /** The request body when the proxy sent one (bytes); undefined when it sent none. */
  body: Uint8Array | undefined;
  /** The raw path held a `#` fragment / a `;` path parameter (see path-handling.ts). */
  hasFragment: boolean;
  hasPathParameters: boolean;
  /** Lower-case names; x-portcullis-* (and x_portcullis_* …) removed. */
  headers: Record<string, string>;
  /** Names of client-supplied x-portcullis-* headers in any spelling, to remove upstream. */
  spoofedHeaders: string[];
  sourceIp: string;
  /** attributes.source.principal (the peer's SPIFFE ID when mTLS is on). */
  sourcePrincipal: string;
  /** attributes.source.certificate, URL-encoded PEM (include_peer_certificate). */
  sourceCertificate: string;
  contextExtensions: Record<string, string>;
  now: Date;
}

function bad(message: string): PortcullisError {
  return new PortcullisError('BAD_REQUEST', message);
}

type HttpAttributes = NonNullable<NonNullable<CheckRequestInput['attributes']>['request']>['http'];

function headerList(http: HttpAttributes): [string, string][] {
  const fromMap = (http?.headerMap?.headers ?? []).map((h: HeaderValue): [string, string] => [
    String(h.key ?? ''),
    h.value !== undefined && h.value !== '' ? String(h.value) : typeof h.rawValue === 'string' ? Buffer.from(h.rawValue, 'base64').toString('utf8') : Buffer.from(h.rawValue ?? []).toString('utf8'),
  ]);
  if (fromMap.length > 0) return fromMap;
  const headers = http?.headers;
  if (headers !== undefined && (typeof headers !== 'object' || Array.isArray(headers))) throw bad('headers must be a map');
  return Object.entries(headers ?? {}).map(([k, v]) => [k, String(v)]);
}

function parseHeaders(list: [string, string][]): { headers: Record<string, string>; spoofed: string[] } {
  if (list.length > LIMITS.headerCount) throw bad(`more than ${LIMITS.headerCount} headers`);
  const headers: Record<string, string> = Object.create(null) as Record<string, string>;
  const spoofed: string[] = [];
  let total = 0;
  for (const [rawName, value] of list) {
    const name = rawName.toLowerCase();
    if (!HEADER_NAME.test(name)) throw bad('invalid header name');
    if (value.length > LIMITS.headerValueBytes) throw bad(`header ${name} is longer than ${LIMITS.headerValueBytes} bytes`);
    if (/[\0\r\n]/.test(value)) throw bad(`header ${name} contains control characters`);
    total += name.length + value.length;
    if (total > LIMITS.headersTotalBytes) throw bad(`headers exceed ${LIMITS.headersTotalBytes} bytes`);
    if (isReservedHeader(name)) {
      spoofed.push(name);
      continue;
    }
    headers[name] = headers[name] !== undefined ? `${headers[name]},${value}` : value;
  }
  return { headers, spoofed };
}

export interface ParsedPath {
  path: string;
  segments: string[];
  query: Record<string, string>;
  rawQuery: string;
  /** A `#` was present (the fragment is not part of `path`); the policy decides (path-handling.ts). */
  hasFragment: boolean;
  /** A raw `;` in a segment (a path parameter); segments keep it literally until the policy decides. */
  hasPathParameters: boolean;
}

// Visible ASCII only: a request-target holds nothing else (RFC 9112), and Envoy's codecs agree.
const PATH_CHARS = /^[\x21-\x7e]*$/;

/** Each query parameter's first value (request.query checks read every value from rawQuery). */
function firstValues(rawQuery: string): Record<string, string> {
  const query: Record<string, string> = {};
  if (rawQuery === '') return query;
  for (const [k, v] of new URLSearchParams(rawQuery)) if (!(k in query)) query[k] = v;
  return query;
}

/**
 * Splits and decodes the path as a normalizing proxy leaves it (Envoy normalize_path,
 * merge_slashes, path_with_escaped_slashes_action: REJECT_REQUEST). What normalization would
 * change structurally (dot segments, empty segments, encoded / or \) is refused rather than
 * resolved: seeing it means the proxy did not normalize, and the upstream may resolve it either
 * way. Percent-encoding is decoded per segment (%61 and a are one segment), which is what
 * normalize_path's decoding of unreserved characters makes the upstream see.
 */
export function parsePath(rawPath: string): ParsedPath {
  if (rawPath.length > LIMITS.pathBytes) throw bad(`path longer than ${LIMITS.pathBytes} bytes`);
  if (!rawPath.startsWith('/')) throw bad('path must start with /');
  if (!PATH_CHARS.test(rawPath)) throw bad('path holds characters that are not visible ASCII');
  const hashAt = rawPath.indexOf('#');
  const noFragment = hashAt >= 0 ? rawPath.slice(0, hashAt) : rawPath;
  const q = noFragment.indexOf('?');
  const path = q >= 0 ? noFragment.slice(0, q) : noFragment;
  const rawQuery = q >= 0 ? noFragment.slice(q + 1) : '';
  const query = firstValues(rawQuery);
  const parts = path.slice(1).split('/');
  if (parts.length > 1 && parts[parts.length - 1] === '') parts.pop();
  const segments = path === '/' ? [] : parts.map(decodeSegment);
  return { path, segments, query, rawQuery, hasFragment: hashAt >= 0, hasPathParameters: path.includes(';') };
}

/** A segment's percent-decoding; refuses traversal and encoded separators (policy bypass). */
export function decodeSegment(s: string): string {
  if (s === '') throw bad('empty path segment');
  let d: string;
  try {
    d = decodeURIComponent(s);
  } catch {
    throw bad('invalid percent-encoding in path');
  }
  if (d === '.' || d === '..' || /[/\\\0]/.test(d)) throw bad('path traversal or encoded separator in path');
  return d;
}

function sourceIp(req: CheckRequestInput, headers: Record<string, string>): string {
  return req.attributes?.source?.address?.socketAddress?.address ?? headers['x-envoy-external-address'] ?? '';
}

function httpAttributes(req: CheckRequestInput): NonNullable<HttpAttributes> {
  const http = req?.attributes?.request?.http;
  if (!http || typeof http !== 'object') throw bad('CheckRequest has no attributes.request.http');
  return http;
}

function parseMethod(http: NonNullable<HttpAttributes>): string {
  const method = String(http.method ?? '').toUpperCase();
  if (!METHOD.test(method)) throw bad('missing or invalid HTTP method');
  return method;
}

/** The raw host: attributes first, then :authority, then Host. */
function parseHost(http: NonNullable<HttpAttributes>, headers: Record<string, string>): string {
  const hostRaw = String(http.host ?? headers[':authority'] ?? headers.host ?? '');
  if (hostRaw === '' || hostRaw.length > LIMITS.hostBytes || /[\s/@\\]/.test(hostRaw)) throw bad('missing or invalid host');
  return hostRaw;
}

/** x-request-id (or the attributes id) when well formed, else a fresh UUID. */
function requestId(http: NonNullable<HttpAttributes>, headers: Record<string, string>): string {
  const candidateId = String(headers['x-request-id'] ?? http.id ?? '');
  return REQUEST_ID.test(candidateId) ? candidateId : randomUUID();
}

function sourceIdentity(req: CheckRequestInput): Pick<RequestContext, 'sourcePrincipal' | 'sourceCertificate'> {
  return {
    sourcePrincipal: String(req.attributes?.source?.principal ?? ''),
    sourceCertificate: String(req.attributes?.source?.certificate ?? ''),
  };
}

function contextExtensions(req: CheckRequestInput): Record<string, string> {
  const extensions = req.attributes?.contextExtensions ?? {};
  return typeof extensions === 'object' && extensions !== null ? { ...extensions } : {};
}

/** raw_body (pack_as_bytes) or body, as bytes; undefined when the proxy sent neither. */
function requestBody(http: NonNullable<HttpAttributes>): Uint8Array | undefined {
  const raw = http.rawBody;
  if (raw !== undefined && raw.length > 0) return typeof raw === 'string' ? Buffer.from(raw, 'base64') : raw;
  const body = http.body;
  if (body === undefined || body.length === 0) return undefined;
  return typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
}

export function parseCheckRequest(req: CheckRequestInput, now: Date): RequestContext {
  const http = httpAttributes(req);
  const method = parseMethod(http);
  const { headers, spoofed } = parseHeaders(headerList(http));
  const hostRaw = parseHost(http, headers);
  const { path, segments, query, rawQuery, hasFragment, hasPathParameters } = parsePath(String(http.path ?? headers[':path'] ?? ''));
  return {
    requestId: requestId(http, headers),
    method,
    host: normalizeHost(hostRaw),
    path,
    segments,
    query,
    rawQuery,
    body: requestBody(http),
    hasFragment,
    hasPathParameters,
    headers,
    spoofedHeaders: spoofed,
    sourceIp: sourceIp(req, headers),
    ...sourceIdentity(req),
    contextExtensions: contextExtensions(req),
    now,
  };
}
