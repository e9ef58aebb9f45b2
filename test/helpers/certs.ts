/**
 * Client certificates made with the openssl CLI in a temporary folder, for the
 * attributes.source.certificate (include_peer_certificate) case. Nothing is committed.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCert {
  pem: string;
  /** As Envoy puts it into attributes.source.certificate. */
  urlEncoded: string;
}

/** A self-signed P-256 certificate with the given subject and SANs (e.g. URI:spiffe://…, DNS:…). */
export function makeCert(subject: string, sans: string[]): TestCert {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-cert-'));
  try {
    const key = join(dir, 'key.pem');
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-keyout', key, '-out', cert, '-days', '1', '-subj', subject,
      ...(sans.length > 0 ? ['-addext', `subjectAltName=${sans.join(',')}`] : []),
    ], { stdio: 'pipe' });
    const pem = readFileSync(cert, 'utf8');
    return { pem, urlEncoded: encodeURIComponent(pem) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
