/** `portcullis serve`: the ext_authz service. */
import { parseArgs } from 'node:util';
import { resolveServeConfig, type ServeConfig } from '../config.js';
import { createLogger } from '../logger.js';
import { startServer } from '../server/serve.js';
import { startWorkerPool } from '../server/workers.js';
import { AUDIT_HELP, AUDIT_OPTIONS, auditConfigFrom } from '../audit/cli-options.js';
import { EXIT, type Command } from './usage.js';
import { MASKING_HELP, MASKING_OPTIONS, maskingConfigFrom } from '../extproc/cli-options.js';

const OPTIONS = {
  policies: { type: 'string' },
  source: { type: 'string' },
  kubeconfig: { type: 'string' },
  'grpc-address': { type: 'string' },
  'http-address': { type: 'string' },
  'log-level': { type: 'string' },
  'no-watch': { type: 'boolean' },
  'drain-seconds': { type: 'string' },
  'quota-backend': { type: 'string' },
  'redis-url': { type: 'string' },
  'otlp-endpoint': { type: 'string' },
  workers: { type: 'string' },
  'secret-namespaces': { type: 'string' },
  ...AUDIT_OPTIONS,
  ...MASKING_OPTIONS,
  help: { type: 'boolean', short: 'h' },
} as const;

/** String flags and the ServeConfig field each sets (resolveServeConfig validates them). */
const FLAG_FIELDS = {
  policies: 'policyDir',
  source: 'policySource',
  kubeconfig: 'kubeconfig',
  'grpc-address': 'grpcAddress',
  'http-address': 'httpAddress',
  'log-level': 'logLevel',
  'drain-seconds': 'drainSeconds',
  'quota-backend': 'quotaBackend',
  'redis-url': 'redisUrl',
  'otlp-endpoint': 'otlpEndpoint',
  workers: 'workers',
  'secret-namespaces': 'secretNamespaces',
} as const;

/** The serve flags given, as resolveServeConfig takes them (unset flags fall to the environment). */
function serveFlags(values: Record<string, unknown>): Parameters<typeof resolveServeConfig>[0] {
  const flags: Parameters<typeof resolveServeConfig>[0] = {};
  for (const [flag, field] of Object.entries(FLAG_FIELDS)) {
    const v = values[flag];
    if (typeof v === 'string') flags[field] = v;
  }
  if (values['no-watch'] === true) flags.watch = false;
  return flags;
}

export const SERVE: Command = {
  summary: 'run the Envoy ext_authz gRPC service',
  help: `Usage: portcullis serve --policies DIR [options]

Serves envoy.service.auth.v3.Authorization/Check and grpc.health.v1 over gRPC, and
/healthz, /readyz and /metrics over HTTP. Policies come from a folder of YAML (watched;
only changed files and objects are recompiled, and an object whose new version is refused
keeps its last good version serving).

Options (environment variable in brackets):
  --policies DIR          policy folder [PORTCULLIS_POLICIES]
  --source folder         policy source: folder (default) or kubernetes [PORTCULLIS_POLICY_SOURCE]
                          (kubernetes: read-only informers on ApiPolicy, Tenant, the ConfigMaps labelled
                          portcullis.io/revocation=true or portcullis.io/schema=true, and the Secrets
                          labelled portcullis.io/api-keys=true, portcullis.io/revocation=true or
                          portcullis.io/introspection=true; ready after the first sync)
  --kubeconfig FILE       kubeconfig for --source kubernetes (default in-cluster) [KUBECONFIG]
  --secret-namespaces LIST   comma-separated: list and watch those Secrets only in these namespaces
                          (a Secret grant narrowed to them allows no cluster-wide list); default every
                          namespace [PORTCULLIS_SECRET_NAMESPACES]
  --grpc-address H:P      gRPC listener, default 127.0.0.1:9001 [PORTCULLIS_GRPC_ADDRESS]
  --http-address H:P      HTTP listener, default 127.0.0.1:9090 [PORTCULLIS_HTTP_ADDRESS]
  --log-level LEVEL       fatal|error|warn|info|debug|trace|silent, default info [PORTCULLIS_LOG_LEVEL]
  --no-watch              load the folder once, do not watch it
  --drain-seconds N       grace period for in-flight checks on SIGTERM, default 10
  --quota-backend B       quota counters: memory (default; one replica) or redis [PORTCULLIS_QUOTA_BACKEND]
  --redis-url URL         redis://host:port/db for --quota-backend redis [PORTCULLIS_REDIS_URL]
                          (quota keys pseudonymise subjects with HMAC key [PORTCULLIS_QUOTA_HASH_KEY])
  --workers N|auto        worker threads serving gRPC and ext_proc on the same ports (SO_REUSEPORT),
                          default auto: the CPUs this process may run on (1: no worker threads).
                          One policy source feeds all; memory quotas stay exact (shared counters);
                          each worker writes its own audit chain (instance id -wN, file name -wN);
                          health, metrics and drain cover every worker [PORTCULLIS_WORKERS]
  --otlp-endpoint URL     export a span per Check, with its phases as child spans, over OTLP/HTTP
                          (protobuf) to URL (base, e.g. http://collector:4318, or …/v1/traces);
                          continues the request's W3C traceparent; off by default
                          [OTEL_EXPORTER_OTLP_ENDPOINT]

${AUDIT_HELP}

${MASKING_HELP}

Logs go to stderr; audit records (JSON lines) to stdout.`,
  async run(args, io) {
    const { values } = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false });
    if (values.help) {
      io.out(SERVE.help);
      return EXIT.OK;
    }
    const config: ServeConfig = resolveServeConfig(serveFlags(values));
    config.audit = auditConfigFrom(values);
    config.masking = maskingConfigFrom(values);
    const log = createLogger(config.logLevel);
    const server = config.workers > 1 ? await startWorkerPool(config, log) : await startServer(config, log);
    await new Promise<void>((resolve) => {
      const stop = (signal: string): void => {
        log.info({ signal }, 'draining');
        void server.close().then(resolve);
      };
      process.once('SIGTERM', () => stop('SIGTERM'));
      process.once('SIGINT', () => stop('SIGINT'));
    });
    log.info('stopped');
    return EXIT.OK;
  },
};
