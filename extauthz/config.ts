/**
 * The one place that reads the environment. Flags win over PORTCULLIS_* variables, which win over
 * the defaults; everything is validated here, so the rest of the code receives typed settings.
 */
import { availableParallelism } from 'node:os';
import { PortcullisError } from './errors.js';
import { parseNamespaces } from '../kube/namespaces.js';

export interface ServeConfig {
  /** host:port of the gRPC listener (ext_authz; ext_proc joins it). */
  grpcAddress: string;
  /** host:port of the HTTP listener (health, readiness, metrics). */
  httpAddress: string;
  policySource: 'folder' | 'kubernetes';
  policyDir?: string;
  /** kubeconfig for the kubernetes source (default: in-cluster, then ~/.kube/config). */
  kubeconfig?: string;
  watch: boolean;
  logLevel: string;
  /** Grace period for in-flight checks on SIGTERM. */
  drainSeconds: number;
  /** Quota counters: memory (default; one replica, exact) or redis (shared by replicas). */
  quotaBackend?: 'memory' | 'redis';
  /** redis:// or rediss:// URL, required with the redis backend. */
  redisUrl?: string;
  /** HMAC key that pseudonymises subjects in quota keys; the same on every replica. */
  quotaHashKey?: string;
  /** Budget of one Redis quota call (default 100 ms); embedding and tests only, no flag. */
  redisCommandTimeoutMs?: number;
  /** The audit trail (resolveAuditConfig); absent: no audit (embedding, tests). */
  audit?: AuditConfig;
  /** Masking directives and the ext_proc listener (resolveMaskingConfig); absent: the defaults. */
  masking?: MaskingConfig;
  /** OTLP/HTTP endpoint for Check spans (docs/tracing.md); absent: tracing off. */
  otlpEndpoint?: string;
  /** Worker threads serving gRPC on one port (serve --workers); 1: this thread serves, no workers. */
  workers: number;
  /** Kubernetes source: list and watch Secrets only in these namespaces (the Secret grant is narrowed to them); absent: every namespace. */
  secretNamespaces?: string[];
}

export const DEFAULTS: ServeConfig = {
  grpcAddress: '127.0.0.1:9001',
  httpAddress: '127.0.0.1:9090',
  policySource: 'folder',
  watch: true,
  logLevel: 'info',
  drainSeconds: 10,
  quotaBackend: 'memory',
  workers: 1,
};

/** Most workers one process may run: a bound on what a flag can make a 2-core pod spawn. */
export const MAX_WORKERS = 64;

const ENV_KEYS: Record<string, keyof ServeConfig> = {
  PORTCULLIS_GRPC_ADDRESS: 'grpcAddress',
  PORTCULLIS_HTTP_ADDRESS: 'httpAddress',
  PORTCULLIS_POLICY_SOURCE: 'policySource',
  PORTCULLIS_POLICIES: 'policyDir',
  KUBECONFIG: 'kubeconfig',
  PORTCULLIS_LOG_LEVEL: 'logLevel',
  PORTCULLIS_QUOTA_BACKEND: 'quotaBackend',
  PORTCULLIS_REDIS_URL: 'redisUrl',
  PORTCULLIS_QUOTA_HASH_KEY: 'quotaHashKey',
  OTEL_EXPORTER_OTLP_ENDPOINT: 'otlpEndpoint',
  PORTCULLIS_WORKERS: 'workers',
  PORTCULLIS_SECRET_NAMESPACES: 'secretNamespaces',
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

/** The quota backend settings; redis needs a redis:// or rediss:// URL. */
export function validateQuota(backend: string, url: string | undefined): { quotaBackend: 'memory' | 'redis'; redisUrl?: string } {
  if (backend !== 'memory' && backend !== 'redis') throw new PortcullisError('USAGE', `--quota-backend must be memory or redis, got "${backend}"`);
  if (backend === 'memory') return { quotaBackend: backend };
  if (url === undefined || url === '') throw new PortcullisError('USAGE', '--quota-backend redis needs --redis-url (or PORTCULLIS_REDIS_URL)');
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new PortcullisError('USAGE', '--redis-url must be a URL such as redis://127.0.0.1:6379/0');
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') throw new PortcullisError('USAGE', '--redis-url must use redis:// or rediss://');
  return { quotaBackend: backend, redisUrl: url };
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

type ServePick = (k: keyof ServeConfig) => string | boolean | undefined;

/** A flag-or-environment value as a string, or the default when neither is set. */
function pickString(pick: ServePick, k: keyof ServeConfig, def: string | number): string {
  return String(pick(k) ?? def);
}

function checkSource(source: string): 'folder' | 'kubernetes' {
  if (source !== 'folder' && source !== 'kubernetes') throw new PortcullisError('USAGE', `--source must be folder or kubernetes, got "${source}"`);
  return source;
}

function checkLevel(level: string): string {
  if (!LEVELS.includes(level)) throw new PortcullisError('USAGE', `--log-level must be one of ${LEVELS.join(', ')}`);
  return level;
}

function checkPolicyDir(source: string, dir: string | boolean | undefined): void {
  if (source === 'folder' && (dir === undefined || dir === '')) throw new PortcullisError('USAGE', 'serve needs --policies DIR (or PORTCULLIS_POLICIES) with the folder source');
}

/** --workers: an integer 1..MAX_WORKERS, or "auto" (the CPUs this process may run on). */
export function checkWorkers(v: string | boolean | undefined, cpus: number): number {
  if (v === undefined || v === 'auto') return Math.max(1, Math.min(cpus, MAX_WORKERS));
  const n = Number(v);
  if (!/^\d+$/.test(String(v)) || n < 1 || n > MAX_WORKERS) throw new PortcullisError('USAGE', `--workers must be auto or an integer from 1 to ${MAX_WORKERS}, got "${String(v)}"`);
  return n;
}

function checkDrain(drain: number): number {
  if (!Number.isFinite(drain) || drain < 0 || drain > 600) throw new PortcullisError('USAGE', '--drain-seconds must be between 0 and 600');
  return drain;
}

/** { [key]: String(value) } when the value is truthy, else {}. */
function optionalString<K extends keyof ServeConfig>(pick: ServePick, k: K): Partial<Record<K, string>> {
  const v = pick(k);
  return v ? ({ [k]: String(v) } as Partial<Record<K, string>>) : {};
}

function quotaSettings(pick: ServePick): ReturnType<typeof validateQuota> {
  const url = pick('redisUrl');
  return validateQuota(pickString(pick, 'quotaBackend', DEFAULTS.quotaBackend ?? 'memory'), url === undefined ? undefined : String(url));
}

export function resolveServeConfig(flags: Partial<Record<keyof ServeConfig, string | boolean>>, env = fromEnvironment(), cpus = availableParallelism()): ServeConfig {
  const pick: ServePick = (k) => flags[k] ?? env[k];
  const source = checkSource(pickString(pick, 'policySource', DEFAULTS.policySource));
  const level = checkLevel(pickString(pick, 'logLevel', DEFAULTS.logLevel));
  const dir = pick('policyDir');
  checkPolicyDir(source, dir);
  const drain = checkDrain(Number(pick('drainSeconds') ?? DEFAULTS.drainSeconds));
  const watch = pick('watch');
  return {
    grpcAddress: validateAddress('--grpc-address', pickString(pick, 'grpcAddress', DEFAULTS.grpcAddress)),
    httpAddress: validateAddress('--http-address', pickString(pick, 'httpAddress', DEFAULTS.httpAddress)),
    policySource: source,
    ...(dir !== undefined ? { policyDir: String(dir) } : {}),
    ...optionalString(pick, 'kubeconfig'),
    watch: watch !== false && watch !== 'false',
    logLevel: level,
    drainSeconds: drain,
    ...quotaSettings(pick),
    ...optionalString(pick, 'quotaHashKey'),
    ...otlpEndpoint(pick),
    workers: checkWorkers(pick('workers'), cpus),
    ...secretNamespaces(pick),
  };
}

function secretNamespaces(pick: ServePick): { secretNamespaces?: string[] } {
  const v = pick('secretNamespaces');
  if (typeof v !== 'string') return {};
  const list = parseNamespaces('--secret-namespaces', v);
  return list.length > 0 ? { secretNamespaces: list } : {};
}

/** --otlp-endpoint: an http(s) URL with no credentials in it (collector auth is not supported here). */
function otlpEndpoint(pick: ServePick): { otlpEndpoint?: string } {
  const v = pick('otlpEndpoint');
  if (v === undefined || v === '') return {};
  let u: URL;
  try {
    u = new URL(String(v));
  } catch {
    throw new PortcullisError('USAGE', '--otlp-endpoint must be an http:// or https:// URL');
  }
  if ((u.protocol !== 'http:' && u.protocol !== 'https:') || u.username !== '' || u.password !== '') throw new PortcullisError('USAGE', '--otlp-endpoint must be an http:// or https:// URL without credentials');
  return { otlpEndpoint: u.toString() };
}

/** The audit trail: sinks, durability, keys and checkpoint cadence (docs/audit.md). */
export interface AuditConfig {
  /** Append-only file, rotated by size; absent: no file sink. */
  file?: string;
  /** JSON lines on stdout (default on). */
  stdout: boolean;
  /** batch: fsync every few ms, the Check does not wait; strict: the Check waits for fsync. */
  mode: 'batch' | 'strict';
  /** PEM or JWK private key (Ed25519 or P-256) signing checkpoints; absent: ephemeral key. */
  keyFile?: string;
  /** Secret bytes for the HMAC pseudonyms of subjects; absent: ephemeral key. */
  subjectKeyFile?: string;
  checkpointEvery: number;
  checkpointSeconds: number;
  maxFileBytes: number;
  /** Records waiting for their write before new ones are refused (auditFailure decides). */
  maxBuffered: number;
  /** Names this replica's chains: pod name in Kubernetes. */
  instanceId: string;
}

export type AuditFlags = Partial<Record<Exclude<keyof AuditConfig, 'stdout'>, string>> & { stdout?: string | boolean };

const AUDIT_ENV: Record<string, keyof AuditConfig> = {
  PORTCULLIS_AUDIT_FILE: 'file',
  PORTCULLIS_AUDIT_STDOUT: 'stdout',
  PORTCULLIS_AUDIT_MODE: 'mode',
  PORTCULLIS_AUDIT_KEY_FILE: 'keyFile',
  PORTCULLIS_AUDIT_SUBJECT_KEY_FILE: 'subjectKeyFile',
  PORTCULLIS_AUDIT_CHECKPOINT_EVERY: 'checkpointEvery',
  PORTCULLIS_AUDIT_CHECKPOINT_SECONDS: 'checkpointSeconds',
  PORTCULLIS_AUDIT_MAX_FILE_BYTES: 'maxFileBytes',
  PORTCULLIS_AUDIT_BUFFER: 'maxBuffered',
  PORTCULLIS_INSTANCE_ID: 'instanceId',
};

export function auditFromEnvironment(env: NodeJS.ProcessEnv = process.env): AuditFlags {
  const out: Record<string, string> = {};
  for (const [name, key] of Object.entries(AUDIT_ENV)) {
    const v = env[name];
    if (v !== undefined && v !== '') out[key] = v;
  }
  // In Kubernetes the pod name is the natural instance id.
  if (out.instanceId === undefined && env.HOSTNAME) out.instanceId = env.HOSTNAME;
  return out;
}

function boundedInt(name: string, v: string | undefined, def: number, [min, max]: [number, number]): number {
  const n = v === undefined ? def : Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new PortcullisError('USAGE', `${name} must be an integer between ${min} and ${max}, got "${v}"`);
  return n;
}

function auditPaths(file?: string, keyFile?: string, subjectKeyFile?: string): Pick<AuditConfig, 'file' | 'keyFile' | 'subjectKeyFile'> {
  return { ...(file ? { file } : {}), ...(keyFile ? { keyFile } : {}), ...(subjectKeyFile ? { subjectKeyFile } : {}) };
}

export function resolveAuditConfig(flags: AuditFlags, env: AuditFlags = auditFromEnvironment(), hostname = 'portcullis'): AuditConfig {
  const pick = <K extends keyof AuditFlags>(k: K): AuditFlags[K] => flags[k] ?? env[k];
  const mode = pick('mode') ?? 'batch';
  if (mode !== 'batch' && mode !== 'strict') throw new PortcullisError('USAGE', `--audit-mode must be batch or strict, got "${mode}"`);
  const stdout = pick('stdout');
  const instanceId = pick('instanceId') ?? hostname;
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(instanceId)) throw new PortcullisError('USAGE', `the instance id must be 1-128 letters, digits, dots, dashes or underscores, got "${instanceId}"`);
  return {
    ...auditPaths(pick('file'), pick('keyFile'), pick('subjectKeyFile')),
    stdout: stdout !== false && stdout !== 'false' && stdout !== '0',
    mode,
    checkpointEvery: boundedInt('--audit-checkpoint-every', pick('checkpointEvery'), 1000, [1, 10_000_000]),
    checkpointSeconds: boundedInt('--audit-checkpoint-seconds', pick('checkpointSeconds'), 10, [1, 86_400]),
    maxFileBytes: boundedInt('--audit-max-file-bytes', pick('maxFileBytes'), 100 * 1024 * 1024, [4096, 2 ** 50]),
    maxBuffered: boundedInt('--audit-buffer', pick('maxBuffered'), 10_000, [1, 10_000_000]),
    instanceId,
  };
}

/** Masking: directive signing, the hash action's key and the ext_proc listener (docs/masking.md). */
export interface MaskingConfig {
  /** Secret (>= 32 bytes) signing directives; ext_authz and ext_proc need the same. Absent: per-process key. */
  keyFile?: string;
  /** Secret for the hash action's pseudonyms, the same on every replica. Absent: per-process key. */
  hashKeyFile?: string;
  /** host:port of the ext_proc gRPC listener. */
  extProcAddress: string;
  /** Directive lifetime, seconds. */
  ttlSeconds: number;
  maxBodyBytes: number;
  nonJson: 'pass' | 'block';
  oversized: 'pass' | 'block';
  missingDirective: 'pass' | 'block';
}

export type MaskingFlags = Partial<Record<keyof MaskingConfig, string>>;

const MASKING_ENV: Record<string, keyof MaskingConfig> = {
  PORTCULLIS_MASK_KEY_FILE: 'keyFile',
  PORTCULLIS_MASK_HASH_KEY_FILE: 'hashKeyFile',
  PORTCULLIS_EXT_PROC_ADDRESS: 'extProcAddress',
  PORTCULLIS_MASK_TTL_SECONDS: 'ttlSeconds',
  PORTCULLIS_EXT_PROC_MAX_BODY_BYTES: 'maxBodyBytes',
  PORTCULLIS_EXT_PROC_NON_JSON: 'nonJson',
  PORTCULLIS_EXT_PROC_OVERSIZED: 'oversized',
  PORTCULLIS_EXT_PROC_MISSING_DIRECTIVE: 'missingDirective',
};

export function maskingFromEnvironment(env: NodeJS.ProcessEnv = process.env): MaskingFlags {
  const out: MaskingFlags = {};
  for (const [name, key] of Object.entries(MASKING_ENV)) {
    const v = env[name];
    if (v !== undefined && v !== '') out[key] = v;
  }
  return out;
}

function passOrBlock(name: string, v: string | undefined): 'pass' | 'block' {
  const x = v ?? 'block';
  if (x !== 'pass' && x !== 'block') throw new PortcullisError('USAGE', `${name} must be pass or block, got "${x}"`);
  return x;
}

export function resolveMaskingConfig(flags: MaskingFlags, env: MaskingFlags = maskingFromEnvironment()): MaskingConfig {
  const pick = (k: keyof MaskingConfig): string | undefined => flags[k] ?? env[k];
  const keyFile = pick('keyFile');
  const hashKeyFile = pick('hashKeyFile');
  return {
    ...(keyFile ? { keyFile } : {}),
    ...(hashKeyFile ? { hashKeyFile } : {}),
    extProcAddress: validateAddress('--ext-proc-address', pick('extProcAddress') ?? '127.0.0.1:9002'),
    ttlSeconds: boundedInt('--mask-ttl-seconds', pick('ttlSeconds'), 60, [1, 300]),
    maxBodyBytes: boundedInt('--ext-proc-max-body-bytes', pick('maxBodyBytes'), 8 * 1024 * 1024, [1024, 256 * 1024 * 1024]),
    nonJson: passOrBlock('--ext-proc-non-json', pick('nonJson')),
    oversized: passOrBlock('--ext-proc-oversized', pick('oversized')),
    missingDirective: passOrBlock('--ext-proc-missing-directive', pick('missingDirective')),
  };
}
