/**
 * The real server (extauthz/server/serve.ts startServer) on free loopback ports, with gRPC
 * clients built from the same Envoy and health protos the server uses.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createLogger } from '../../extauthz/logger.js';
import { startServer, type RunningServer, type ServeExtensions } from '../../extauthz/server/serve.js';
import { DEFAULTS, resolveMaskingConfig, type ServeConfig } from '../../extauthz/config.js';
import type { CheckRequestInput } from '../../extauthz/pipeline/check-request.js';
import { envoyProtos, HEALTH_PROTO, protoRoot } from '../../proto/envoy.js';

/** The fields of a CheckResponse the tests read (proto-loader shape). */
export interface CheckResponse {
  status?: { code?: number; message?: string };
  okResponse?: { headers?: { header?: { key?: string; value?: string } }[]; headersToRemove?: string[]; responseHeadersToAdd?: { header?: { key?: string; value?: string } }[] };
  deniedResponse?: { status?: { code?: string | number }; headers?: { header?: { key?: string; value?: string } }[]; body?: string };
  dynamicMetadata?: unknown;
}

export interface TestServer {
  server: RunningServer;
  check(req: CheckRequestInput | Record<string, unknown>): Promise<CheckResponse>;
  health(service?: string): Promise<string>;
  http(path: string): Promise<{ status: number; body: string }>;
  close(): Promise<void>;
}

type Unary = (req: unknown, cb: (err: grpc.ServiceError | null, res: unknown) => void) => void;

function client(ctor: unknown, port: number): grpc.Client & Record<string, Unary> {
  const Ctor = ctor as grpc.ServiceClientConstructor;
  return new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as grpc.Client & Record<string, Unary>;
}

function call<T>(fn: Unary, req: unknown): Promise<T> {
  return new Promise((resolve, reject) => fn(req, (err, res) => (err ? reject(err) : resolve(res as T))));
}

export function serveConfig(policyDir: string, watch = false): ServeConfig {
  // Every listener on port 0 (ext_proc included), so tests never collide with each other or a dev server.
  return {
    ...DEFAULTS,
    grpcAddress: '127.0.0.1:0',
    httpAddress: '127.0.0.1:0',
    policySource: 'folder',
    policyDir,
    watch,
    logLevel: 'silent',
    drainSeconds: 1,
    masking: resolveMaskingConfig({ extProcAddress: '127.0.0.1:0' }, {}),
  };
}

/** envoy.type.v3.StatusCode arrives as its enum name (BadRequest); tests compare numbers. */
export function httpStatus(code: string | number | undefined): number {
  if (typeof code === 'number') return code;
  return protoRoot().lookupEnum('envoy.type.v3.StatusCode').values[code ?? ''] ?? Number.NaN;
}

export function headerMap(list: { header?: { key?: string; value?: string } }[] | undefined): Record<string, string> {
  return Object.fromEntries((list ?? []).map((h) => [h.header?.key ?? '', h.header?.value ?? '']));
}

export async function startTestServer(policyDir: string, opts: { watch?: boolean; ext?: ServeExtensions; config?: Partial<ServeConfig> } = {}): Promise<TestServer> {
  const server = await startServer({ ...serveConfig(policyDir, opts.watch ?? false), ...opts.config }, createLogger('silent'), opts.ext ?? {});
  const protos = envoyProtos() as unknown as { envoy: { service: { auth: { v3: { Authorization: unknown } } } } };
  const auth = client(protos.envoy.service.auth.v3.Authorization, server.grpcPort);
  const healthPkg = grpc.loadPackageDefinition(protoLoader.loadSync(HEALTH_PROTO, { keepCase: false, enums: String })) as unknown as { grpc: { health: { v1: { Health: unknown } } } };
  const health = client(healthPkg.grpc.health.v1.Health, server.grpcPort);
  return {
    server,
    check: (req) => call<CheckResponse>(auth.Check!.bind(auth), req),
    health: async (service = '') => (await call<{ status: string }>(health.Check!.bind(health), { service })).status,
    http: async (path) => {
      const res = await fetch(`http://127.0.0.1:${server.httpPort}${path}`);
      return { status: res.status, body: await res.text() };
    },
    close: async () => {
      auth.close();
      health.close();
      await server.close();
    },
  };
}

/** Polls until the predicate holds (file watching is asynchronous); fails after `limitMs`. */
export async function eventually(predicate: () => Promise<boolean> | boolean, what: string, limitMs = 10_000): Promise<void> {
  const until = Date.now() + limitMs;
  while (Date.now() < until) {
    if (await predicate()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}
