/**
 * The audit trail of `portcullis check` and `explain`: every CLI decision is recorded too. With
 * --audit-file the record is appended (strict: written and fsync'ed before the command prints its
 * answer) as a chain of its own that references the file's last checkpoint; without it, the chain
 * goes to stderr as JSON lines (stdout carries the decision).
 */
import { Writable } from 'node:stream';
import { hostname } from 'node:os';
import { Chain } from './chain.js';
import { readSubjectKey, SigningKey } from './keys.js';
import { Pseudonymizer } from './pseudonym.js';
import { FileSink, findLastCheckpoint, StreamSink, type LineSink } from './sinks.js';
import { AuditTrail } from './trail.js';

export const CLI_AUDIT_OPTIONS = {
  'audit-file': { type: 'string' },
  'audit-key-file': { type: 'string' },
  'audit-subject-key-file': { type: 'string' },
} as const;

export const CLI_AUDIT_HELP = `Every decision is audited (docs/audit.md): one chain per run, as JSON lines on stderr, or
appended to --audit-file PATH (fsync'ed before the answer), with checkpoints signed by
--audit-key-file (Ed25519/P-256 PEM or JWK; default ephemeral) and subjects pseudonymised with
--audit-subject-key-file (default ephemeral).`;

export interface CliAuditValues {
  'audit-file'?: string;
  'audit-key-file'?: string;
  'audit-subject-key-file'?: string;
}

export async function openCliAudit(values: CliAuditValues, err: (s: string) => void): Promise<AuditTrail> {
  const file = values['audit-file'];
  if (file && !values['audit-key-file']) err('warning: audit checkpoints signed with an ephemeral key (no --audit-key-file): they cannot be verified later');
  const key = values['audit-key-file'] ? SigningKey.fromFile(values['audit-key-file']) : SigningKey.generate();
  const pseudo = values['audit-subject-key-file'] ? new Pseudonymizer(readSubjectKey(values['audit-subject-key-file'])) : Pseudonymizer.ephemeral();
  const toErr = new Writable({
    write(chunk: Buffer, _enc, cb): void {
      err(chunk.toString('utf8'));
      cb();
    },
  });
  const sink: LineSink = file ? await FileSink.open(file, Number.MAX_SAFE_INTEGER) : new StreamSink(toErr);
  const chain = new Chain({ instance: `cli-${hostname().replace(/[^A-Za-z0-9._-]/g, '_')}`, key, subjectKeyId: pseudo.keyId, previous: file ? findLastCheckpoint(file) : null });
  return new AuditTrail({ chain, pseudonymizer: pseudo, sinks: [sink], mode: 'strict', checkpointEvery: 1000, checkpointSeconds: 3600, source: 'cli' });
}
