/**
 * A rule's request validation (spec.rules[].request), compiled when the policy loads: allowed
 * content types, the body size limit, declared query parameters and the body's JSON Schema
 * (body-schema.ts). `checkRequest` runs them in a fixed order — content type, size and
 * completeness, query, body — and returns the first failure: a catalogue code, which check,
 * and a JSON pointer that never holds the offending value.
 *
 * A body the proxy truncated is never validated as if complete: Envoy marks a partial body with
 * x-envoy-auth-partial-body: true (allow_partial_message), and a body shorter than its
 * Content-Length was cut or never sent. Both fail closed (BODY_INCOMPLETE, or BODY_TOO_LARGE
 * when the declared length is over the limit).
 */
import type { RequestValidation, QueryParameter } from './crd-types.js';
import { BODY_SCHEMA_LIMITS, compileBodySchema, workFor, type CompiledBodySchema } from './body-schema.js';

export const DEFAULT_MAX_BODY_BYTES = 65536;
export const MAX_BODY_BYTES = 1048576;

export type RequestCheckCode = 'UNSUPPORTED_MEDIA_TYPE' | 'BODY_TOO_LARGE' | 'BODY_INCOMPLETE' | 'QUERY_INVALID' | 'BODY_INVALID';
export type RequestCheckName = 'contentType' | 'size' | 'query' | 'body';

export interface RequestFailure {
  code: RequestCheckCode;
  check: RequestCheckName;
  /** JSON pointer of the first failure: into the body, or /name of a query parameter; '' for the whole. */
  pointer: string;
  /** For explain and logs: what failed, never the value. */
  message: string;
}

/** What the checks read from a request. */
export interface RequestFacts {
  /** Lower-case names, duplicates joined with ','. */
  headers: Readonly<Record<string, string>>;
  /** The query string after ?, undecoded ('' when none). */
  rawQuery: string;
  /** The body Envoy sent (body as bytes or string, raw_body as bytes or base64 in proto3 JSON). */
  body: Uint8Array | undefined;
}

export class RequestSpecError extends Error {
  /** Path below the rule's request, e.g. query/parameters/0/maximum. */
  constructor(
    message: string,
    readonly pointer: string,
  ) {
    super(message);
    this.name = 'RequestSpecError';
  }
}

interface MediaRange {
  type: string;
  /** '*' matches every subtype. */
  subtype: string;
}

interface ParamCheck {
  name: string;
  type: QueryParameter['type'];
  required: boolean;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  enum?: ReadonlySet<string>;
}

export interface CompiledRequest {
  contentTypes?: readonly MediaRange[];
  /** Set when the rule reads the body (schema) or bounds it: the proxy must send the body. */
  maxBodyBytes?: number;
  params?: ReadonlyMap<string, ParamCheck>;
  requiredParams: readonly string[];
  rejectUnknown: boolean;
  body?: CompiledBodySchema;
  /** The source, for explain and generated configuration. */
  spec: RequestValidation;
}

const JSON_TYPES: readonly MediaRange[] = [{ type: 'application', subtype: 'json' }];

// ---- Content-Type (RFC 9110 §8.3.1) -----------------------------------------------------------

const TCHAR = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * media-type = type "/" subtype *( OWS ";" OWS [ parameter ] ); parameter values are tokens or
 * quoted strings. Returns the lower-cased type and subtype, or undefined when malformed.
 */
export function parseMediaType(value: string): MediaRange | undefined {
  const semi = value.indexOf(';');
  const head = (semi < 0 ? value : value.slice(0, semi)).replace(/^[ \t]+|[ \t]+$/g, '');
  const slash = head.indexOf('/');
  if (slash < 0) return undefined;
  const type = head.slice(0, slash);
  const subtype = head.slice(slash + 1);
  if (!TCHAR.test(type) || !TCHAR.test(subtype)) return undefined;
  if (semi >= 0 && !parametersValid(value, semi)) return undefined;
  return { type: type.toLowerCase(), subtype: subtype.toLowerCase() };
}

function skipOws(s: string, i: number): number {
  while (i < s.length && (s[i] === ' ' || s[i] === '\t')) i++;
  return i;
}

function tokenEnd(s: string, i: number): number {
  while (i < s.length && TCHAR.test(s[i]!)) i++;
  return i;
}

/** End of a quoted-string starting at i (the opening quote), or -1. */
function quotedEnd(s: string, i: number): number {
  for (let j = i + 1; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c === 0x22) return j + 1;
    if (c === 0x5c) {
      j++;
      if (j >= s.length || !qdOk(s.charCodeAt(j), true)) return -1;
    } else if (!qdOk(c, false)) return -1;
  }
  return -1;
}

function qdOk(c: number, escaped: boolean): boolean {
  return c === 0x09 || c === 0x20 || (c >= 0x21 && c <= 0x7e && (escaped || (c !== 0x22 && c !== 0x5c))) || (c >= 0x80 && c <= 0xff);
}

function parametersValid(s: string, semi: number): boolean {
  let i = semi;
  while (i < s.length) {
    if (s[i] !== ';') return false;
    i = skipOws(s, i + 1);
    if (i >= s.length || s[i] === ';') continue;
    const nameEnd = tokenEnd(s, i);
    if (nameEnd === i || s[nameEnd] !== '=') return false;
    const v = nameEnd + 1;
    const end = s[v] === '"' ? quotedEnd(s, v) : tokenEnd(s, v);
    if (end < 0 || end === v) return false;
    i = skipOws(s, end);
  }
  return true;
}

function isJsonType(m: MediaRange): boolean {
  return m.type === 'application' && (m.subtype === 'json' || m.subtype.endsWith('+json'));
}

// ---- compile -----------------------------------------------------------------------------------

function given(...values: (number | undefined)[]): boolean {
  return values.some((v) => v !== undefined);
}

function inverted(low: number | undefined, high: number | undefined): boolean {
  return low !== undefined && high !== undefined && low > high;
}

/** The first inconsistency of a parameter's declaration: [message, field] or undefined. */
function paramProblem(p: QueryParameter): [string, string] | undefined {
  const numeric = p.type === 'integer' || p.type === 'number';
  if (!numeric && given(p.minimum, p.maximum)) return [`minimum and maximum apply to integer and number parameters, not ${p.type}`, ''];
  if (p.type !== 'string' && given(p.minLength, p.maxLength)) return [`minLength and maxLength apply to string parameters, not ${p.type}`, ''];
  if (inverted(p.minimum, p.maximum)) return ['minimum is greater than maximum', '/minimum'];
  if (inverted(p.minLength, p.maxLength)) return ['minLength is greater than maxLength', '/minLength'];
  return undefined;
}

function compileParam(p: QueryParameter, i: number): ParamCheck {
  const at = `query/parameters/${i}`;
  const problem = paramProblem(p);
  if (problem) throw new RequestSpecError(problem[0], at + problem[1]);
  const out: ParamCheck = { name: p.name, type: p.type, required: p.required ?? false };
  if (p.minimum !== undefined) out.minimum = p.minimum;
  if (p.maximum !== undefined) out.maximum = p.maximum;
  if (p.minLength !== undefined) out.minLength = p.minLength;
  if (p.maxLength !== undefined) out.maxLength = p.maxLength;
  if (p.enum?.length) {
    p.enum.forEach((v, j) => {
      if (!valueOk(out, v)) throw new RequestSpecError(`enum value ${j} is not a valid ${p.type} within the bounds`, `${at}/enum/${j}`);
    });
    out.enum = new Set(p.enum);
  }
  return out;
}

function compileQuery(spec: RequestValidation, into: CompiledRequest): void {
  const q = spec.query;
  if (!q) return;
  const params = new Map<string, ParamCheck>();
  (q.parameters ?? []).forEach((p, i) => {
    if (params.has(p.name)) throw new RequestSpecError(`parameter ${p.name} is declared twice`, `query/parameters/${i}/name`);
    params.set(p.name, compileParam(p, i));
  });
  into.params = params;
  into.requiredParams = [...params.values()].filter((p) => p.required).map((p) => p.name);
  into.rejectUnknown = q.unknownParameters === 'reject';
}

function compileContentTypes(spec: RequestValidation): MediaRange[] | undefined {
  if (!spec.contentTypes?.length) return spec.body ? [...JSON_TYPES] : undefined;
  return spec.contentTypes.map((t, i) => {
    const m = parseMediaType(t);
    if (!m) throw new RequestSpecError('not a media type (type/subtype)', `contentTypes/${i}`);
    if (spec.body && !(isJsonType(m) || (m.type === 'application' && m.subtype === '*'))) {
      throw new RequestSpecError('a body schema validates JSON: contentTypes may list only JSON media types (application/json, application/*+json)', `contentTypes/${i}`);
    }
    return m;
  });
}

/** The body schema, refused when validating a body of maxBodyBytes could cost more than the work bound. */
function boundedSchema(inline: unknown, maxBodyBytes: number): CompiledBodySchema {
  const schema = compileBodySchema(inline);
  const work = workFor(schema.cost, maxBodyBytes);
  if (work > BODY_SCHEMA_LIMITS.work) {
    throw new RequestSpecError(
      `validating a body of maxBodyBytes ${maxBodyBytes} against this schema could cost ${work} steps, more than ${BODY_SCHEMA_LIMITS.work}: lower maxBodyBytes, give patterned strings a maxLength, or check fewer keywords on array items and map values`,
      'body/inline',
    );
  }
  return schema;
}

/** Compiles request validation, or throws RequestSpecError / BodySchemaError with where it is. */
export function compileRequest(spec: RequestValidation): CompiledRequest {
  const out: CompiledRequest = { requiredParams: [], rejectUnknown: false, spec };
  const types = compileContentTypes(spec);
  if (types) out.contentTypes = types;
  if (spec.maxBodyBytes !== undefined) {
    if (spec.maxBodyBytes > MAX_BODY_BYTES) throw new RequestSpecError(`maxBodyBytes is over ${MAX_BODY_BYTES}`, 'maxBodyBytes');
    out.maxBodyBytes = spec.maxBodyBytes;
  } else if (spec.body) out.maxBodyBytes = DEFAULT_MAX_BODY_BYTES;
  compileQuery(spec, out);
  // A configMapRef is resolved into inline before compiling (schema-refs.ts): a body without a schema here would validate nothing.
  if (spec.body && spec.body.inline === undefined) throw new RequestSpecError('body needs a schema: inline, or configMapRef resolved from its ConfigMap', 'body');
  if (spec.body?.inline !== undefined) out.body = boundedSchema(spec.body.inline, out.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES);
  return out;
}

/** The body bytes a rule needs the proxy to send (undefined: it needs no body). */
export function bodyBytesNeeded(r: CompiledRequest | undefined): number | undefined {
  return r?.maxBodyBytes;
}

// ---- check -------------------------------------------------------------------------------------

function fail(code: RequestCheckCode, check: RequestCheckName, pointer: string, message: string): RequestFailure {
  return { code, check, pointer, message };
}

/** Content-Length as a number; NaN when malformed (several differing values, not digits). */
function contentLength(headers: Readonly<Record<string, string>>): number | undefined {
  const raw = headers['content-length'];
  if (raw === undefined) return undefined;
  let value: number | undefined;
  for (const part of raw.split(',')) {
    const t = part.trim();
    if (!/^[0-9]{1,15}$/.test(t)) return NaN;
    const n = Number(t);
    if (value !== undefined && n !== value) return NaN;
    value = n;
  }
  return value;
}

function partialBody(headers: Readonly<Record<string, string>>): boolean {
  const v = headers['x-envoy-auth-partial-body'];
  return v !== undefined && /(^|,)\s*true\s*(,|$)/i.test(v);
}

function hasBody(facts: RequestFacts, declared: number | undefined): boolean {
  return (declared !== undefined && declared !== 0) || facts.headers['transfer-encoding'] !== undefined || (facts.body?.length ?? 0) > 0;
}

function checkContentType(r: CompiledRequest, facts: RequestFacts, declared: number | undefined): RequestFailure | undefined {
  if (!r.contentTypes || !hasBody(facts, declared)) return undefined;
  const raw = facts.headers['content-type'];
  const m = raw === undefined ? undefined : parseMediaType(raw);
  if (!m) return fail('UNSUPPORTED_MEDIA_TYPE', 'contentType', '', raw === undefined ? 'the request has a body but no Content-Type' : 'Content-Type is not a valid media type');
  for (const t of r.contentTypes) if (t.type === m.type && (t.subtype === '*' || t.subtype === m.subtype)) return undefined;
  return fail('UNSUPPORTED_MEDIA_TYPE', 'contentType', '', 'Content-Type is not one of the rule\'s contentTypes');
}

function checkSize(max: number, facts: RequestFacts, declared: number | undefined): RequestFailure | undefined {
  const received = facts.body?.length ?? 0;
  if (declared !== undefined && declared > max) return fail('BODY_TOO_LARGE', 'size', '', `Content-Length is over maxBodyBytes ${max}`);
  if (received > max) return fail('BODY_TOO_LARGE', 'size', '', `the body is over maxBodyBytes ${max}`);
  const incomplete = incompleteness(facts, declared, received);
  return incomplete === undefined ? undefined : fail('BODY_INCOMPLETE', 'size', '', incomplete);
}

/** Why the body the proxy sent is not the whole body, or undefined when it is. */
function incompleteness(facts: RequestFacts, declared: number | undefined, received: number): string | undefined {
  if (partialBody(facts.headers)) return 'the proxy sent part of the body (x-envoy-auth-partial-body): its buffer limit is below the body size';
  if (declared === undefined) return received === 0 && facts.headers['transfer-encoding'] !== undefined ? 'a chunked body was not sent by the proxy' : undefined;
  if (Number.isNaN(declared)) return 'Content-Length is malformed';
  return received !== declared ? 'the body received is not the length Content-Length declares (the proxy did not send it whole)' : undefined;
}

const INTEGER = /^-?(0|[1-9][0-9]{0,15})$/;
const NUMBER = /^-?(0|[1-9][0-9]{0,308})(\.[0-9]{1,32})?([eE][+-]?[0-9]{1,3})?$/;

function numberOk(p: ParamCheck, v: string): boolean {
  if (!(p.type === 'integer' ? INTEGER : NUMBER).test(v)) return false;
  const n = Number(v);
  if (!Number.isFinite(n) || (p.type === 'integer' && !Number.isSafeInteger(n))) return false;
  return (p.minimum === undefined || n >= p.minimum) && (p.maximum === undefined || n <= p.maximum);
}

function stringOk(p: ParamCheck, v: string): boolean {
  if (p.minLength === undefined && p.maxLength === undefined) return true;
  const length = [...v].length;
  return (p.minLength === undefined || length >= p.minLength) && (p.maxLength === undefined || length <= p.maxLength);
}

function valueOk(p: ParamCheck, v: string): boolean {
  if (p.type === 'boolean') return v === 'true' || v === 'false';
  return p.type === 'string' ? stringOk(p, v) : numberOk(p, v);
}

function paramPointer(name: string): string {
  return `/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

/** One query parameter occurrence against its declaration (undefined: undeclared). */
function checkParam(r: CompiledRequest, p: ParamCheck | undefined, value: string, seen: Set<string>): RequestFailure | undefined {
  if (!p) return r.rejectUnknown ? fail('QUERY_INVALID', 'query', '', 'a query parameter the rule does not declare') : undefined;
  if (seen.has(p.name)) return fail('QUERY_INVALID', 'query', paramPointer(p.name), 'the parameter is given more than once');
  seen.add(p.name);
  if (!valueOk(p, value)) return fail('QUERY_INVALID', 'query', paramPointer(p.name), `not a valid ${p.type} within the declared bounds`);
  if (p.enum && !p.enum.has(value)) return fail('QUERY_INVALID', 'query', paramPointer(p.name), 'not one of the declared values');
  return undefined;
}

function checkQuery(r: CompiledRequest, facts: RequestFacts): RequestFailure | undefined {
  const params = r.params!;
  const seen = new Set<string>();
  if (facts.rawQuery !== '') {
    for (const [name, value] of new URLSearchParams(facts.rawQuery)) {
      const f = checkParam(r, params.get(name), value, seen);
      if (f) return f;
    }
  }
  for (const name of r.requiredParams) if (!seen.has(name)) return fail('QUERY_INVALID', 'query', paramPointer(name), 'a required parameter is missing');
  return undefined;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

function checkBody(schema: CompiledBodySchema, facts: RequestFacts): RequestFailure | undefined {
  let value: unknown;
  try {
    value = JSON.parse(UTF8.decode(facts.body ?? new Uint8Array(0)));
  } catch {
    return fail('BODY_INVALID', 'body', '', 'the body is not UTF-8 JSON');
  }
  const f = schema.validate(value);
  return f ? fail('BODY_INVALID', 'body', f.pointer, f.message) : undefined;
}

/** The first failure of the rule's request validation, or undefined when the request passes. */
export function checkRequest(r: CompiledRequest, facts: RequestFacts): RequestFailure | undefined {
  const declared = contentLength(facts.headers);
  return (
    checkContentType(r, facts, declared) ??
    (r.maxBodyBytes !== undefined ? checkSize(r.maxBodyBytes, facts, declared) : undefined) ??
    (r.params ? checkQuery(r, facts) : undefined) ??
    (r.body ? checkBody(r.body, facts) : undefined)
  );
}
