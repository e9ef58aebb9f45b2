/** The audit flags shared by `serve`, `check` and `explain`, and their help text. */
import { hostname } from 'node:os';
import { resolveAuditConfig, type AuditConfig, type AuditFlags } from '../config.js';

export const AUDIT_OPTIONS = {
  'audit-file': { type: 'string' },
  'no-audit-stdout': { type: 'boolean' },
  'audit-mode': { type: 'string' },
  'audit-key-file': { type: 'string' },
  'audit-subject-key-file': { type: 'string' },
  'audit-checkpoint-every': { type: 'string' },
  'audit-checkpoint-seconds': { type: 'string' },
  'audit-max-file-bytes': { type: 'string' },
  'audit-buffer': { type: 'string' },
} as const;

export const AUDIT_HELP = `Audit trail (docs/audit.md):
  --audit-file PATH       append-only audit file, rotated to PATH.000001, … [PORTCULLIS_AUDIT_FILE]
  --no-audit-stdout       do not write audit JSON lines to stdout [PORTCULLIS_AUDIT_STDOUT=false]
  --audit-mode M          batch (default: fsync every few ms) or strict (the Check waits for fsync)
                          [PORTCULLIS_AUDIT_MODE]
  --audit-key-file F      Ed25519 or P-256 private key (PEM or JWK) signing checkpoints; default an
                          ephemeral key, with a warning [PORTCULLIS_AUDIT_KEY_FILE]
  --audit-subject-key-file F  secret (>= 16 bytes) for the HMAC pseudonyms of subjects; default
                          ephemeral, with a warning [PORTCULLIS_AUDIT_SUBJECT_KEY_FILE]
  --audit-checkpoint-every N   sign a checkpoint every N records, default 1000
  --audit-checkpoint-seconds T and at least every T seconds, default 10
  --audit-max-file-bytes B     rotate the file past B bytes, default 104857600
  --audit-buffer N        records queued before new ones are refused (auditFailure decides), default 10000
  The JWKS of the checkpoint key is served at /.well-known/audit-jwks.json on the HTTP port.`;

type Values = { [K in keyof typeof AUDIT_OPTIONS]?: (typeof AUDIT_OPTIONS)[K]['type'] extends 'boolean' ? boolean : string };

const MAP: [keyof Values, keyof AuditFlags][] = [
  ['audit-file', 'file'],
  ['audit-mode', 'mode'],
  ['audit-key-file', 'keyFile'],
  ['audit-subject-key-file', 'subjectKeyFile'],
  ['audit-checkpoint-every', 'checkpointEvery'],
  ['audit-checkpoint-seconds', 'checkpointSeconds'],
  ['audit-max-file-bytes', 'maxFileBytes'],
  ['audit-buffer', 'maxBuffered'],
];

export function auditFlags(values: Values): AuditFlags {
  const out: Record<string, string | boolean> = {};
  for (const [flag, key] of MAP) {
    const v = values[flag];
    if (typeof v === 'string') out[key] = v;
  }
  if (values['no-audit-stdout']) out.stdout = false;
  return out as AuditFlags;
}

export function auditConfigFrom(values: Values, env?: AuditFlags): AuditConfig {
  return resolveAuditConfig(auditFlags(values), env, hostname());
}
