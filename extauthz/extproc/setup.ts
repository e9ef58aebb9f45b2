/**
 * Masking in `portcullis serve`: the keys (from files, or generated for this process with a
 * warning), the issuer the shape phase signs with, and the ext_proc gRPC listener (its own port,
 * default 127.0.0.1:9002, in the same process, so both sides share the signing key).
 */
import * as grpc from '@grpc/grpc-js';
import { Counter, type Registry } from 'prom-client';
import { HealthImplementation } from 'grpc-health-check';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { PortcullisError } from '../errors.js';
import type { MaskingConfig } from '../config.js';
import type { Logger } from '../logger.js';
import { DirectiveIssuer, DirectiveVerifier, MaskKey, MIN_KEY_BYTES } from '../masking/token.js';
import { ExternalProcessorService, EXT_PROC_SERVICE_NAME } from './service.js';
import type { MaskingAuditSink } from './settings.js';
import { bindGrpc, drain, type GrpcListener } from '../server/listen.js';

export interface MaskingRuntime {
  issuer: DirectiveIssuer;
  service: ExternalProcessorService;
  /** Binds the ext_proc listener; resolves to its port. */
  listen(): Promise<number>;
  close(drainSeconds: number): Promise<void>;
}

function readSecret(file: string, what: string): Buffer {
  let raw: Buffer;
  try {
    raw = readFileSync(file);
  } catch (err) {
    throw new PortcullisError('USAGE', `cannot read the ${what} file ${file}: ${(err as Error).message}`, { cause: err });
  }
  // Secrets mounted from Kubernetes often end in a newline that is not part of the key.
  const key = Buffer.from(raw.toString('latin1').replace(/\r?\n$/, ''), 'latin1');
  if (key.length < MIN_KEY_BYTES) throw new PortcullisError('USAGE', `the ${what} in ${file} must be at least ${MIN_KEY_BYTES} bytes`);
  return key;
}

/** The masking keys from their files, or generated for this process (with a warning). */
export function maskingKeys(config: MaskingConfig, log: Logger): { signing: MaskKey; hash: Buffer } {
  if (!config.keyFile) log.warn('no --mask-key-file: masking directives are signed with a key generated for this process; an ext_proc in another process cannot verify them');
  if (!config.hashKeyFile) log.warn('no --mask-hash-key-file: hash pseudonyms use a key generated for this process and differ between replicas and restarts');
  return {
    signing: config.keyFile ? MaskKey.from(readSecret(config.keyFile, 'mask signing key')) : MaskKey.generate(),
    hash: config.hashKeyFile ? readSecret(config.hashKeyFile, 'mask hash key') : randomBytes(32),
  };
}

/**
 * `audit`: the trail the server built (auditWiring().masking), so masking outcomes join its chain.
 * `registry`: where portcullis_mask_unmatched_total is registered (the server's metrics).
 */
export interface MaskingWiring {
  audit?: MaskingAuditSink | undefined;
  registry?: Registry | undefined;
  /** serve --workers: the keys every worker shares, and the listener on a shared port (SO_REUSEPORT). */
  shared?: { signing: Buffer; hash: Buffer } | undefined;
}

export function createMasking(config: MaskingConfig, log: Logger, { audit, registry, shared }: MaskingWiring = {}): MaskingRuntime {
  const reusePort = shared !== undefined;
  const { signing, hash } = shared ? { signing: MaskKey.from(shared.signing), hash: shared.hash } : maskingKeys(config, log);
  const unmatched = new Counter({ name: 'portcullis_mask_unmatched_total', help: 'Masks that matched nothing in a response body, by what followed: recorded (the body went out) or denied (onUnmatched: deny, the body was withheld).', labelNames: ['result'] as const, registers: registry ? [registry] : [] });
  const service = new ExternalProcessorService({
    verifier: new DirectiveVerifier(signing),
    hashKey: hash,
    maxBodyBytes: config.maxBodyBytes,
    nonJson: config.nonJson,
    oversized: config.oversized,
    missingDirective: config.missingDirective,
    ...(audit ? { audit } : {}),
    onError: (err, requestId) => log.warn({ err, requestId }, 'ext_proc replaced a response (fail closed)'),
    onAuditError: (err, requestId) => log.error({ err, requestId }, 'ext_proc masking record not written to the audit trail'),
    onUnmatched: (count, denied) => unmatched.inc({ result: denied ? 'denied' : 'recorded' }, count),
  });
  const server = new grpc.Server({ 'grpc.max_receive_message_length': config.maxBodyBytes + 1024 * 1024 });
  const health = new HealthImplementation({ '': 'SERVING', [EXT_PROC_SERVICE_NAME]: 'SERVING' });
  service.addToServer(server);
  health.addToServer(server);
  let listener: GrpcListener | undefined;
  return {
    issuer: new DirectiveIssuer(signing, { ttlSeconds: config.ttlSeconds }),
    service,
    listen: async () => {
      listener = await bindGrpc(server, config.extProcAddress, reusePort);
      return listener.port;
    },
    close: (drainSeconds) => {
      health.setStatus('', 'NOT_SERVING');
      listener?.stopAccepting();
      return drain(server, drainSeconds);
    },
  };
}
