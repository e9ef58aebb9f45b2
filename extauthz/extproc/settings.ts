/** What an ext_proc stream needs, injected: the verifier, the compiled-set cache, body policies. */
import { MaskSet, type MaskOptions } from '../masking/engine.js';
import type { DirectiveClaims, DirectiveVerifier } from '../masking/token.js';

export type BodyPolicy = 'pass' | 'block';

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
  clock: () => Date;
  onError?: (err: unknown, requestId: string) => void;
  onMasked?: (bytes: number) => void;
}

export interface ExtProcOptions {
  verifier: DirectiveVerifier;
  /** Key of the hash action; without one, hash directives fail closed. */
  hashKey?: Buffer;
  maxBodyBytes?: number;
  nonJson?: BodyPolicy;
  oversized?: BodyPolicy;
  missingDirective?: BodyPolicy;
  clock?: () => Date;
  onError?: (err: unknown, requestId: string) => void;
  onMasked?: (bytes: number) => void;
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

export function resolveSettings(o: ExtProcOptions): ExtProcSettings {
  return {
    verifier: o.verifier,
    compile: compiler(o.hashKey ? { hashKey: o.hashKey } : {}, o.cacheSize ?? 512),
    maxBodyBytes: o.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    nonJson: o.nonJson ?? 'block',
    oversized: o.oversized ?? 'block',
    missingDirective: o.missingDirective ?? 'block',
    clock: o.clock ?? (() => new Date()),
    ...(o.onError ? { onError: o.onError } : {}),
    ...(o.onMasked ? { onMasked: o.onMasked } : {}),
  };
}
