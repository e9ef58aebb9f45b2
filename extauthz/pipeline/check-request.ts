/**
 * The parts of Envoy's envoy.service.auth.v3.CheckRequest that Portcullis reads, in the shape
 * @grpc/proto-loader produces (camelCase, longs as strings) — which is also the canonical proto3
 * JSON form the CLI reads, so both paths share one parser.
 */
export interface HeaderValue {
  key?: string;
  value?: string;
  rawValue?: string | Uint8Array;
}

export interface HttpRequestAttributes {
  id?: string;
  method?: string;
  headers?: Record<string, string>;
  headerMap?: { headers?: HeaderValue[] };
  path?: string;
  host?: string;
  scheme?: string;
  query?: string;
  fragment?: string;
  size?: string | number;
  protocol?: string;
  /** The request body when the proxy sends it (with_request_body): a UTF-8 string in proto3 JSON, bytes from the codec. */
  body?: string | Uint8Array;
  /** The body as bytes (pack_as_bytes): base64 in proto3 JSON, bytes from the codec. */
  rawBody?: string | Uint8Array;
}

export interface Peer {
  address?: { socketAddress?: { address?: string; portValue?: number } };
  service?: string;
  labels?: Record<string, string>;
  principal?: string;
  certificate?: string;
}

export interface CheckRequestInput {
  attributes?: {
    source?: Peer;
    destination?: Peer;
    request?: { time?: { seconds?: string | number; nanos?: number } | string; http?: HttpRequestAttributes };
    contextExtensions?: Record<string, string>;
    metadataContext?: unknown;
    routeMetadataContext?: unknown;
    tlsSession?: { sni?: string };
  };
}
