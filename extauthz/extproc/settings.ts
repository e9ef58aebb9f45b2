/** What an ext_proc stream needs, injected: the verifier, the compiled-set cache, body policies. */
import { MaskSet, type MaskOptions } from '../masking/engine.js';
import type { DirectiveClaims, DirectiveVerifier } from '../masking/token.js';
import type { MaskingFields } from '../audit/record.js';

/** Where masking outcomes go: the server's audit trail (AuditTrail), injected, never a second chain. */
export interface MaskingAuditSink {
  recordMasking(fields: MaskingFields): Promise<void>;
}

export type BodyPolicy = 'pass' | 'block';

/**
 * The filter's processing_mode.response_body_mode (Envoy's proto here does not carry
 * protocol_config, so the service is told). BUFFERED (the documented configuration): the first
 * response_body message is the whole body, even with end_of_stream false (trailers follow).
 * STREAMED: chunks until end_of_stream. Other modes (BUFFERED_PARTIAL) cannot be masked safely.
 */
export type ResponseBodyMode = 'buffered' | 'streamed';

export interface ExtProcSettings {
  verifier: DirectiveVerifier;
  /** Compiles (or fetches from the cache) the directive set of verified claims. */
  compile: (claims: DirectiveClaims) => MaskSet;
  /** Largest response body masked, bytes; larger ones follow `oversized`. */
  maxBodyBytes: number;
  /** Bodies that are not JSON (content type, encoding, or unparsable). */
  nonJson: BodyPolicy;
  oversized: BodyPolicy;
  /** A request without any directive: block (default; every allow carries one) or pass. */
  missingDirective: BodyPolicy;
  responseBodyMode: ResponseBodyMode;
  clock: () => Date;
  audit?: MaskingAuditSink;
  onError?: (err: unknown, requestId: string) => void;
  /** A masking record the trail refused (buffer full, sink failing); the response is answered already. */
  onAuditError?: (err: unknown, requestId: string) => void;
  onMasked?: (bytes: number) => void;
  /** Masks that matched nothing in a body: how many, and whether one of them had onUnmatched: deny. */
  onUnmatched?: (count: number, denied: boolean) => void;
}

export interface ExtProcOptions {
  verifier: DirectiveVerifier;
  /** Key of the hash action; without one, hash directives fail closed. */
  hashKey?: Buffer;
  maxBodyBytes?: number;
  nonJson?: BodyPolicy;
  oversized?: BodyPolicy;
  missingDirective?: BodyPolicy;
  /** Default buffered, as docs/envoy/ext-proc-filter.yaml configures the filter. */
  responseBodyMode?: ResponseBodyMode;
  clock?: () => Date;
  /** One record per masking outcome (docs/audit.md, `masking`). */
  audit?: MaskingAuditSink;
  onError?: (err: unknown, requestId: string) => void;
  onAuditError?: (err: unknown, requestId: string) => void;
  onMasked?: (bytes: number) => void;
  onUnmatched?: (count: number, denied: boolean) => void;
  /** Compiled sets kept, keyed by their directives (default 512). */
  cacheSize?: number;
}

export const DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024;

/** A bounded cache: the same rule's directives arrive on every request and compile once. */
function compiler(options: MaskOptions, size: number): (claims: DirectiveClaims) => MaskSet {
  const cache = new Map<string, MaskSet>();
  return (claims) => {
    const key = JSON.stringify([claims.masks, claims.allowFields ?? null]);
    let set = cache.get(key);
    if (!set) {
      set = new MaskSet({ masks: claims.masks, ...(claims.allowFields ? { allowFields: claims.allowFields } : {}) }, options);
      if (cache.size >= size) cache.delete(cache.keys().next().value!);
      cache.set(key, set);
    }
    return set;
  };
}

/** The optional collaborators, present only when given (exactOptionalPropertyTypes). */
function hooks(o: ExtProcOptions): Pick<ExtProcSettings, 'audit' | 'onError' | 'onAuditError' | 'onMasked' | 'onUnmatched'> {
  const out: Pick<ExtProcSettings, 'audit' | 'onError' | 'onAuditError' | 'onMasked' | 'onUnmatched'> = {};
  if (o.onUnmatched) out.onUnmatched = o.onUnmatched;
  if (o.audit) out.audit = o.audit;
  if (o.onError) out.onError = o.onError;
  if (o.onAuditError) out.onAuditError = o.onAuditError;
  if (o.onMasked) out.onMasked = o.onMasked;
  return out;
}

export function resolveSettings(o: ExtProcOptions): ExtProcSettings {
  return {
    verifier: o.verifier,
    compile: compiler(o.hashKey ? { hashKey: o.hashKey } : {}, o.cacheSize ?? 512),
    maxBodyBytes: o.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    nonJson: o.nonJson ?? 'block',
    oversized: o.oversized ?? 'block',
    missingDirective: o.missingDirective ?? 'block',
    responseBodyMode: o.responseBodyMode ?? 'buffered',
    clock: o.clock ?? (() => new Date()),
    ...hooks(o),
  };
}
