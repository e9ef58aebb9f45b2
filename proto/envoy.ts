/**
 * The protocol definitions the services speak. Envoy's own .proto files (envoy.service.auth.v3,
 * envoy.service.ext_proc.v3 and their imports: udpa, xds, validate, googleapis) come from the npm
 * package @grpc/grpc-js-xds, which vendors them from envoyproxy/data-plane-api; grpc.health.v1
 * comes from grpc-health-check. Depending on those packages keeps the wire format identical to
 * Envoy's without copying files into this repository (see proto/README.md).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import protobuf from 'protobufjs';

const require = createRequire(import.meta.url);
const XDS_DEPS = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');

export const INCLUDE_DIRS = ['envoy-api', 'googleapis', 'protoc-gen-validate', 'xds'].map((d) => join(XDS_DEPS, d));
export const HEALTH_PROTO = join(dirname(require.resolve('grpc-health-check/package.json')), 'proto', 'health', 'v1', 'health.proto');

export const AUTH_PROTO = 'envoy/service/auth/v3/external_auth.proto';
export const EXT_PROC_PROTO = 'envoy/service/ext_proc/v3/external_processor.proto';

/** proto-loader options shared by the servers and the CLI's JSON parsing: camelCase as in proto3 JSON. */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
  includeDirs: INCLUDE_DIRS,
};

let cached: grpc.GrpcObject | undefined;

/** The loaded Envoy service definitions (auth v3 and ext_proc v3). */
export function envoyProtos(): grpc.GrpcObject {
  cached ??= grpc.loadPackageDefinition(protoLoader.loadSync([AUTH_PROTO, EXT_PROC_PROTO], LOADER_OPTIONS));
  return cached;
}

interface ServiceCtor {
  service: grpc.ServiceDefinition;
}

function lookup(path: string): ServiceCtor {
  let node: unknown = envoyProtos();
  for (const part of path.split('.')) node = (node as Record<string, unknown>)[part];
  if (!node) throw new Error(`service ${path} not found in the Envoy protos`);
  return node as ServiceCtor;
}

export function authorizationService(): grpc.ServiceDefinition {
  return lookup('envoy.service.auth.v3.Authorization').service;
}

export function externalProcessorService(): grpc.ServiceDefinition {
  return lookup('envoy.service.ext_proc.v3.ExternalProcessor').service;
}

let root: protobuf.Root | undefined;

/** A protobufjs Root over the same files, to convert canonical proto3 JSON into messages. */
export function protoRoot(): protobuf.Root {
  if (!root) {
    const r = new protobuf.Root();
    r.resolvePath = (_origin, target) => {
      const found = INCLUDE_DIRS.map((dir) => join(dir, target)).find((p) => existsSync(p));
      return found ?? target;
    };
    r.loadSync([AUTH_PROTO, EXT_PROC_PROTO], { keepCase: false });
    root = r;
  }
  return root;
}

const CONVERT: protobuf.IConversionOptions = { longs: String, enums: String, defaults: false, oneofs: true };

/** Canonical proto3 JSON of a message type → the plain object shape the gRPC server receives. */
export function fromProtoJson(typeName: string, json: unknown): Record<string, unknown> {
  const type = protoRoot().lookupType(typeName);
  const message = type.fromObject(normalizeWellKnown(json) as Record<string, unknown>);
  return type.toObject(message, CONVERT);
}

// proto3 JSON writes google.protobuf.Timestamp as an RFC 3339 string; protobufjs wants fields.
function normalizeWellKnown(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(normalizeWellKnown);
  if (!v || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === 'time' && typeof x === 'string') {
      const ms = Date.parse(x);
      out[k] = Number.isNaN(ms) ? x : { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
    } else out[k] = normalizeWellKnown(x);
  }
  return out;
}
