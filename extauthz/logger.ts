/**
 * Logs show what we choose: credentials and personal data are redacted by path, and request logs
 * carry a request id rather than identities. Logs go to stderr; stdout is for audit records.
 */
import { pino, type Logger } from 'pino';

export type { Logger } from 'pino';

export const REDACT_PATHS = [
  'authorization',
  'token',
  'apiKey',
  'headers.authorization',
  'headers["x-api-key"]',
  'headers.cookie',
  'headers["x-forwarded-client-cert"]',
  '*.authorization',
  '*.token',
  'subject',
  '*.subject',
  'principal.subject',
  'claims',
  '*.claims',
];

export function createLogger(level: string, destination: number = 2): Logger {
  return pino({ level, base: { service: 'portcullis' }, redact: { paths: REDACT_PATHS, censor: '[redacted]' } }, pino.destination({ fd: destination, sync: false }));
}
