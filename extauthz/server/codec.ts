/**
 * The Check codec: envoy.service.auth.v3.CheckRequest wire bytes → exactly the fields the
 * pipeline reads (CheckRequestInput), and a Decision → CheckResponse wire bytes, with the
 * protobufjs Reader/Writer and no intermediate message objects. Field numbers are Envoy's
 * (external_auth.proto, attribute_context.proto, base.proto, address.proto, struct.proto); the
 * conformance client (Envoy's own Go types) and the codec tests against the proto files keep
 * them honest. Unknown and unread fields are skipped by wire type, as proto3 requires.
 * ADR 0005 records why this beats proto-loader and generated static code on the hot path.
 */
import protobuf from 'protobufjs';
import type { CheckRequestInput, HeaderValue, HttpRequestAttributes, Peer } from '../pipeline/check-request.js';

type Reader = protobuf.Reader;
type Writer = protobuf.Writer;

/** Past this many headers the rest are not decoded; the parse phase denies a request this big anyway. */
const MAX_DECODED_HEADERS = 256;
const WIRE_LEN = 2;

// Tags are (field << 3) | wire type; every field read here is length-delimited (wire type 2)
// except SocketAddress.port_value (varint). A field with an unexpected wire type is skipped.

/** map<string, string> entry: key = 1, value = 2. */
function mapEntry(r: Reader, into: Record<string, string>): void {
  const end = r.uint32() + r.pos;
  let key = '';
  let value = '';
  while (r.pos < end) {
    const t = r.uint32();
    if (t === 10) key = r.string();
    else if (t === 18) value = r.string();
    else r.skipType(t & 7);
  }
  into[key] = value;
}

/** envoy.config.core.v3.SocketAddress: address = 2, port_value = 3. */
function socketAddress(r: Reader, end: number): { address?: string; portValue?: number } {
  const out: { address?: string; portValue?: number } = {};
  while (r.pos < end) {
    const t = r.uint32();
    if (t === 18) out.address = r.string();
    else if (t === 24) out.portValue = r.uint32();
    else r.skipType(t & 7);
  }
  return out;
}

/** envoy.config.core.v3.Address: socket_address = 1 (pipe and internal addresses are not read). */
function address(r: Reader, end: number): NonNullable<Peer['address']> {
  const out: NonNullable<Peer['address']> = {};
  while (r.pos < end) {
    const t = r.uint32();
    if (t === 10) out.socketAddress = socketAddress(r, r.uint32() + r.pos);
    else r.skipType(t & 7);
  }
  return out;
}

/** AttributeContext.Peer: address = 1, principal = 4, certificate = 5. */
function peer(r: Reader, end: number): Peer {
  const out: Peer = {};
  while (r.pos < end) {
    const t = r.uint32();
    if (t === 10) out.address = address(r, r.uint32() + r.pos);
    else if (t === 34) out.principal = r.string();
    else if (t === 42) out.certificate = r.string();
    else r.skipType(t & 7);
  }
  return out;
}

/** envoy.config.core.v3.HeaderValue: key = 1, value = 2, raw_value = 3. */
function headerValue(r: Reader, end: number): HeaderValue {
  const out: HeaderValue = {};
  while (r.pos < end) {
    const t = r.uint32();
    if (t === 10) out.key = r.string();
    else if (t === 18) out.value = r.string();
    else if (t === 26) out.rawValue = r.bytes();
    else r.skipType(t & 7);
  }
  return out;
}

/** envoy.config.core.v3.HeaderMap: headers = 1 (Envoy's encode_raw_headers form). */
function headerMap(r: Reader, end: number): { headers: HeaderValue[] } {
  const headers: HeaderValue[] = [];
  while (r.pos < end) {
    const t = r.uint32();
    if (t === 10 && headers.length < MAX_DECODED_HEADERS) headers.push(headerValue(r, r.uint32() + r.pos));
    else r.skipType(t & 7);
  }
  return { headers };
}

/** body 11 and raw_body 12 as bytes (views into the message); any other field is skipped. */
function bodyOrSkip(r: Reader, t: number, out: HttpRequestAttributes): void {
  if (t === 90) out.body = r.bytes();
  else if (t === 98) out.rawBody = r.bytes();
  else r.skipType(t & 7);
}

/**
 * AttributeContext.HttpRequest: id 1, method 2, headers 3, path 4, host 5, body 11, raw_body 12,
 * header_map 13. The body is kept as bytes (a view, not a copy) whichever field carries it: the
 * request checks measure it in bytes and decode it as strict UTF-8 only when a rule reads it.
 */
function httpRequest(r: Reader, end: number): HttpRequestAttributes {
  const out: HttpRequestAttributes = {};
  let headers: Record<string, string> | undefined;
  let count = 0;
  while (r.pos < end) {
    const t = r.uint32();
    switch (t) {
      case 10: out.id = r.string(); break;
      case 18: out.method = r.string(); break;
      case 26:
        if (count++ < MAX_DECODED_HEADERS) mapEntry(r, (headers ??= {}));
        else r.skipType(2);
        break;
      case 34: out.path = r.string(); break;
      case 42: out.host = r.string(); break;
      case 106: out.headerMap = headerMap(r, r.uint32() + r.pos); break;
      default: bodyOrSkip(r, t, out);
    }
  }
  if (headers) out.headers = headers;
  return out;
}

/** AttributeContext.Request: http = 2 (time is not read: the pipeline uses its own clock). */
function request(r: Reader, end: number): { http?: HttpRequestAttributes } {
  const out: { http?: HttpRequestAttributes } = {};
  while (r.pos < end) {
    const t = r.uint32();
    if (t === 18) out.http = httpRequest(r, r.uint32() + r.pos);
    else r.skipType(t & 7);
  }
  return out;
}

type Attributes = NonNullable<CheckRequestInput['attributes']>;

/** AttributeContext: source 1, request 4, context_extensions 10. */
function attributes(r: Reader, end: number): Attributes {
  const out: Attributes = {};
  while (r.pos < end) {
    const t = r.uint32();
    if (t === 10) out.source = peer(r, r.uint32() + r.pos);
    else if (t === 34) out.request = request(r, r.uint32() + r.pos);
    else if (t === 82) mapEntry(r, (out.contextExtensions ??= {}));
    else r.skipType(t & 7);
  }
  return out;
}

/**
 * CheckRequest: attributes = 1. Malformed bytes decode to an empty request, which the parse phase
 * denies as BAD_REQUEST: a throwing deserializer would make grpc-js answer with a gRPC error.
 */
export function decodeCheckRequest(buf: Buffer): CheckRequestInput {
  try {
    const r = protobuf.Reader.create(buf);
    const out: CheckRequestInput = {};
    while (r.pos < r.len) {
      const t = r.uint32();
      if (t === 10) out.attributes = attributes(r, r.uint32() + r.pos);
      else r.skipType(t & 7);
    }
    return out;
  } catch {
    return {};
  }
}

// ---- CheckResponse ---------------------------------------------------------------------------

/** What the encoder needs from a Decision (the transport's view). */
export interface CheckResponseFields {
  /** google.rpc.Status code: 0 allows. */
  grpcCode: number;
  message: string;
  /** Allow: upstream request headers. Deny: response headers. */
  headers: Record<string, string>;
  /** Allow only. */
  removeHeaders?: readonly string[];
  responseHeaders?: Record<string, string>;
  /** Deny only: HTTP status (envoy.type.v3.StatusCode) and body. */
  httpStatus?: number;
  body?: string;
  /** dynamic_metadata: a Struct of the given fields. */
  metadata: Record<string, unknown>;
}

/** HeaderValueOption.AppendAction OVERWRITE_IF_EXISTS_OR_ADD. */
const OVERWRITE_IF_EXISTS_OR_ADD = 2;

function tag(w: Writer, field: number, wire: number): Writer {
  return w.uint32((field << 3) | wire);
}

/** repeated HeaderValueOption { header: HeaderValue { key 1, value 2 } = 1, append_action = 3 }. */
function headerOptions(w: Writer, field: number, headers: Record<string, string>): void {
  for (const key in headers) {
    tag(w, field, WIRE_LEN).fork();
    tag(w, 1, WIRE_LEN).fork();
    tag(w, 1, WIRE_LEN).string(key);
    tag(w, 2, WIRE_LEN).string(headers[key]!);
    w.ldelim();
    tag(w, 3, 0).int32(OVERWRITE_IF_EXISTS_OR_ADD);
    w.ldelim();
  }
}

/** google.protobuf.Value: null 1, number 2, string 3, bool 4, struct 5, list 6. */
function value(w: Writer, v: unknown, depth: number): void {
  if (typeof v === 'string') tag(w, 3, WIRE_LEN).string(v);
  else if (typeof v === 'number') tag(w, 2, 1).double(v);
  else if (typeof v === 'boolean') tag(w, 4, 0).bool(v);
  else if (typeof v === 'bigint') tag(w, 2, 1).double(Number(v));
  else if (v instanceof Date) tag(w, 3, WIRE_LEN).string(v.toISOString());
  else if (v === null || v === undefined || depth > 16) tag(w, 1, 0).int32(0);
  else if (Array.isArray(v)) {
    tag(w, 6, WIRE_LEN).fork();
    for (const item of v) {
      tag(w, 1, WIRE_LEN).fork();
      value(w, item, depth + 1);
      w.ldelim();
    }
    w.ldelim();
  } else {
    tag(w, 5, WIRE_LEN).fork();
    struct(w, v as Record<string, unknown>, depth + 1);
    w.ldelim();
  }
}

/** google.protobuf.Struct: map<string, Value> fields = 1. */
function struct(w: Writer, obj: Record<string, unknown>, depth: number): void {
  for (const key in obj) {
    tag(w, 1, WIRE_LEN).fork();
    tag(w, 1, WIRE_LEN).string(key);
    tag(w, 2, WIRE_LEN).fork();
    value(w, obj[key], depth);
    w.ldelim();
    w.ldelim();
  }
}

/** OkHttpResponse: headers 2, headers_to_remove 5, response_headers_to_add 6. */
function okResponse(w: Writer, r: CheckResponseFields): void {
  tag(w, 3, WIRE_LEN).fork();
  headerOptions(w, 2, r.headers);
  for (const name of r.removeHeaders ?? []) tag(w, 5, WIRE_LEN).string(name);
  if (r.responseHeaders) headerOptions(w, 6, r.responseHeaders);
  w.ldelim();
}

/** DeniedHttpResponse: status { code 1 } = 1, headers 2, body 3. */
function deniedResponse(w: Writer, r: CheckResponseFields): void {
  tag(w, 2, WIRE_LEN).fork();
  tag(w, 1, WIRE_LEN).fork();
  tag(w, 1, 0).int32(r.httpStatus ?? 403);
  w.ldelim();
  headerOptions(w, 2, r.headers);
  tag(w, 3, WIRE_LEN).string(r.body ?? '');
  w.ldelim();
}

/** CheckResponse: status 1 (google.rpc.Status code 1, message 2), denied 2, ok 3, dynamic_metadata 4. */
export function encodeCheckResponse(r: CheckResponseFields): Buffer {
  const w = protobuf.Writer.create();
  tag(w, 1, WIRE_LEN).fork();
  // Zero values written explicitly, as protobufjs (proto-loader) servers do: clients decoding
  // without defaults then still see status.code 0.
  tag(w, 1, 0).int32(r.grpcCode);
  tag(w, 2, WIRE_LEN).string(r.message);
  w.ldelim();
  if (r.grpcCode === 0) okResponse(w, r);
  else deniedResponse(w, r);
  tag(w, 4, WIRE_LEN).fork();
  struct(w, r.metadata, 0);
  w.ldelim();
  return w.finish() as Buffer;
}
