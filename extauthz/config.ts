/**
 * The one place that reads the environment. Flags win over PORTCULLIS_* variables, which win over
 * the defaults; everything is validated here, so the rest of the code receives typed settings.
 */
import { PortcullisError } from './errors.js';

export interface ServeConfig {
  /** host:port of the gRPC listener (ext_authz; ext_proc joins it). */
  grpcAddress: string;
  /** host:port of the HTTP listener (health, readiness, metrics). */
  httpAddress: string;
  policySource: 'folder' | 'kubernetes';
  policyDir?: string;
  watch: boolean;
  logLevel: string;
  /** Grace period for in-flight checks on SIGTERM. */
  drainSeconds: number;
}

export const DEFAULTS: ServeConfig = {
  grpcAddress: '127.0.0.1:9001',
  httpAddress: '127.0.0.1:9090',
  policySource: 'folder',
  watch: true,
  logLevel: 'info',
  drainSeconds: 10,
};

const ENV_KEYS: Record<string, keyof ServeConfig> = {
  PORTCULLIS_GRPC_ADDRESS: 'grpcAddress',
  PORTCULLIS_HTTP_ADDRESS: 'httpAddress',
  PORTCULLIS_POLICY_SOURCE: 'policySource',
  PORTCULLIS_POLICIES: 'policyDir',
  PORTCULLIS_LOG_LEVEL: 'logLevel',
};

/** Environment values, for the keys that have one. */
export function fromEnvironment(env: NodeJS.ProcessEnv = process.env): Partial<Record<keyof ServeConfig, string>> {
  const out: Partial<Record<keyof ServeConfig, string>> = {};
  for (const [name, key] of Object.entries(ENV_KEYS)) {
    const v = env[name];
    if (v !== undefined && v !== '') out[key] = v;
  }
  return out;
}

export function validateAddress(name: string, v: string): string {
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(v);
  if (!m || Number(m[2]) > 65535) throw new PortcullisError('USAGE', `${name} must be host:port, got "${v}"`);
  return v;
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function resolveServeConfig(flags: Partial<Record<keyof ServeConfig, string | boolean>>, env = fromEnvironment()): ServeConfig {
  const pick = (k: keyof ServeConfig): string | boolean | undefined => flags[k] ?? env[k];
  const source = String(pick('policySource') ?? DEFAULTS.policySource);
  if (source !== 'folder' && source !== 'kubernetes') throw new PortcullisError('USAGE', `--source must be folder or kubernetes, got "${source}"`);
  const level = String(pick('logLevel') ?? DEFAULTS.logLevel);
  if (!LEVELS.includes(level)) throw new PortcullisError('USAGE', `--log-level must be one of ${LEVELS.join(', ')}`);
  const dir = pick('policyDir');
  if (source === 'folder' && (dir === undefined || dir === '')) throw new PortcullisError('USAGE', 'serve needs --policies DIR (or PORTCULLIS_POLICIES) with the folder source');
  const drain = Number(pick('drainSeconds') ?? DEFAULTS.drainSeconds);
  if (!Number.isFinite(drain) || drain < 0 || drain > 600) throw new PortcullisError('USAGE', '--drain-seconds must be between 0 and 600');
  return {
    grpcAddress: validateAddress('--grpc-address', String(pick('grpcAddress') ?? DEFAULTS.grpcAddress)),
    httpAddress: validateAddress('--http-address', String(pick('httpAddress') ?? DEFAULTS.httpAddress)),
    policySource: source,
    ...(dir !== undefined ? { policyDir: String(dir) } : {}),
    watch: pick('watch') !== false && pick('watch') !== 'false',
    logLevel: level,
    drainSeconds: drain,
  };
}
