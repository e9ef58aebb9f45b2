/**
 * Client certificates made with the openssl CLI in a temporary folder, for the
 * attributes.source.certificate (include_peer_certificate) case. Nothing is committed.
 */
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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

/** The openssl -subj text of RDNs (least specific first), escaping its separators. */
export function subj(...rdns: [string, string][]): string {
  return rdns.map(([t, v]) => `/${t}=${v.replace(/[\\/+]/g, '\\$&')}`).join('');
}

/** A certificate whose subjectAltName section is written as openssl config lines (values may hold commas). */
export function makeCertWithSanSection(cn: string, altLines: string[]): TestCert {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-cert-'));
  try {
    const config = join(dir, 'req.cnf');
    writeFileSync(config, ['[req]', 'distinguished_name = dn', 'x509_extensions = ext', 'prompt = no', '[dn]', `CN = ${cn}`, '[ext]', 'subjectAltName = @alt', '[alt]', ...altLines, ''].join('\n'));
    const cert = join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', cert, '-days', '1', '-config', config], { stdio: 'pipe' });
    const pem = readFileSync(cert, 'utf8');
    return { pem, urlEncoded: encodeURIComponent(pem) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The subject as OpenSSL's RFC 2253 printer writes it (what Envoy puts into XFCC Subject). */
export function rfc2253Subject(cert: TestCert): string {
  const out = execFileSync('openssl', ['x509', '-noout', '-subject', '-nameopt', 'RFC2253'], { input: cert.pem, stdio: ['pipe', 'pipe', 'pipe'] }).toString('utf8');
  return out.replace(/^subject=/, '').replace(/\r?\n$/, '');
}

/** One XFCC element exactly as Envoy writes it: By, Hash, Subject (quoted), then URI and DNS SANs. */
export function envoyXfccElement(cert: TestCert, by: string, sans: { uris?: string[]; dns?: string[] }): string {
  const hash = createHash('sha256').update(new X509Certificate(cert.pem).raw).digest('hex');
  const pairs = [`By=${by}`, `Hash=${hash}`, `Subject="${rfc2253Subject(cert)}"`, ...(sans.uris ?? []).map((u) => `URI=${u}`), ...(sans.dns ?? []).map((d) => `DNS=${d}`)];
  return pairs.join(';');
}
