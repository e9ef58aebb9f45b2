/** The masking / ext_proc flags of `serve`, and their help text. */
import { resolveMaskingConfig, type MaskingConfig, type MaskingFlags } from '../config.js';

export const MASKING_OPTIONS = {
  'mask-key-file': { type: 'string' },
  'mask-hash-key-file': { type: 'string' },
  'mask-ttl-seconds': { type: 'string' },
  'ext-proc-address': { type: 'string' },
  'ext-proc-max-body-bytes': { type: 'string' },
  'ext-proc-non-json': { type: 'string' },
  'ext-proc-oversized': { type: 'string' },
  'ext-proc-missing-directive': { type: 'string' },
} as const;

export const MASKING_HELP = `Masking (docs/masking.md):
  --mask-key-file F       secret (>= 32 bytes) signing masking directives (HS256); default a key
                          generated for this process, with a warning [PORTCULLIS_MASK_KEY_FILE]
  --mask-hash-key-file F  secret (>= 32 bytes) for the hash action's pseudonyms; default per process,
                          with a warning [PORTCULLIS_MASK_HASH_KEY_FILE]
  --mask-ttl-seconds N    directive lifetime, 1-300, default 60 [PORTCULLIS_MASK_TTL_SECONDS]
  --ext-proc-address H:P  ext_proc gRPC listener, default 127.0.0.1:9002 [PORTCULLIS_EXT_PROC_ADDRESS]
  --ext-proc-max-body-bytes B  largest body masked, default 8388608 [PORTCULLIS_EXT_PROC_MAX_BODY_BYTES]
  --ext-proc-non-json P   non-JSON or unparsable bodies under masks: block (default) or pass
  --ext-proc-oversized P  bodies over the limit under masks: block (default) or pass
  --ext-proc-missing-directive P  requests without a directive: block (default) or pass`;

type Values = { [K in keyof typeof MASKING_OPTIONS]?: string };

const MAP: [keyof Values, keyof MaskingConfig][] = [
  ['mask-key-file', 'keyFile'],
  ['mask-hash-key-file', 'hashKeyFile'],
  ['mask-ttl-seconds', 'ttlSeconds'],
  ['ext-proc-address', 'extProcAddress'],
  ['ext-proc-max-body-bytes', 'maxBodyBytes'],
  ['ext-proc-non-json', 'nonJson'],
  ['ext-proc-oversized', 'oversized'],
  ['ext-proc-missing-directive', 'missingDirective'],
];

export function maskingConfigFrom(values: Values): MaskingConfig {
  const flags: MaskingFlags = {};
  for (const [flag, key] of MAP) {
    const v = values[flag];
    if (v !== undefined) flags[key] = v;
  }
  return resolveMaskingConfig(flags);
}
