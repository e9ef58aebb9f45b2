/**
 * Agencies over mutual TLS. The peer identity Envoy saw (attributes.source.principal, or the
 * URL-encoded certificate when include_peer_certificate is on) is trusted; the
 * x-forwarded-client-cert header is read only for tenants that set trustXfcc, because any client
 * can send that header to a proxy that does not sanitise it.
 */
import { X509Certificate } from 'node:crypto';
import { PortcullisError } from '../../errors.js';
import type { CompiledTenant, TenantDirectory } from '../../policy/tenants.js';
import type { RequestContext } from '../context.js';
import type { Principal } from '../principal.js';

export interface PeerIdentity {
  spiffeIds: string[];
  /** RFC 4514 style subject (most specific RDN first) and DNS SANs. */
  subjects: string[];
}

// A fresh object each time: identifyMtls appends the source principal to the peer identity,
// and a shared constant would carry one request's identity into every later request.
function empty(): PeerIdentity {
  return { spiffeIds: [], subjects: [] };
}

function fromCertificate(urlEncodedPem: string): PeerIdentity {
  if (urlEncodedPem === '') return empty();
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(decodeURIComponent(urlEncodedPem));
  } catch {
    throw new PortcullisError('BAD_REQUEST', 'source certificate is not a valid PEM certificate');
  }
  const sans = (cert.subjectAltName ?? '').split(/,\s*/);
  const spiffeIds = sans.filter((s) => s.startsWith('URI:spiffe://')).map((s) => s.slice(4));
  const dns = sans.filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4));
  return { spiffeIds, subjects: [rfc4514(cert.subject), ...dns] };
}

function rfc4514(nodeSubject: string): string {
  return nodeSubject.split('\n').filter(Boolean).reverse().join(',');
}

/** Splits on a separator outside double quotes. */
function splitQuoted(s: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of s) {
    if (ch === '"') quoted = !quoted;
    if (ch === sep && !quoted) {
      out.push(cur);
      cur = '';
    } else cur += ch;
  }
  out.push(cur);
  return out;
}

/** The first XFCC element: the original client as seen by the first trusted proxy. */
export function parseXfcc(header: string): PeerIdentity {
  const first = splitQuoted(header, ',')[0] ?? '';
  const id = empty();
  for (const pair of splitQuoted(first, ';')) {
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    const key = pair.slice(0, eq).trim().toLowerCase();
    const value = pair.slice(eq + 1).trim().replace(/^"|"$/g, '');
    if (key === 'uri' && value.startsWith('spiffe://')) id.spiffeIds.push(value);
    else if (key === 'subject' || key === 'dns') id.subjects.push(value);
  }
  return id;
}

function matches(t: CompiledTenant, id: PeerIdentity): string | undefined {
  const m = t.mtls!;
  const spiffe = id.spiffeIds.find((s) => m.spiffeIds.some((re) => re.test(s)));
  if (spiffe) return spiffe;
  return id.subjects.find((s) => m.subjects.some((re) => re.test(s)));
}

export function identifyMtls(ctx: RequestContext, dir: TenantDirectory): Principal | undefined {
  if (dir.mtls.length === 0) return undefined;
  const peer = fromCertificate(ctx.sourceCertificate);
  if (ctx.sourcePrincipal.startsWith('spiffe://')) peer.spiffeIds.push(ctx.sourcePrincipal);
  const xfccHeader = ctx.headers['x-forwarded-client-cert'];
  // Parsed only if a tenant trusts it: sidecars send XFCC on every request.
  let xfcc: PeerIdentity | undefined;
  const trusted = (): PeerIdentity => (xfcc ??= xfccHeader ? parseXfcc(xfccHeader) : empty());
  const found = new Map<CompiledTenant, string>();
  for (const t of dir.mtls) {
    const subject = matches(t, peer) ?? (t.mtls!.trustXfcc ? matches(t, trusted()) : undefined);
    if (subject !== undefined) found.set(t, subject);
  }
  if (found.size > 1) throw new PortcullisError('AMBIGUOUS_PRINCIPAL', 'client certificate matches several tenants');
  const [entry] = found;
  if (!entry) return undefined;
  const [tenant, subject] = entry;
  return { type: tenant.principalType, tenant, subject, method: 'mtls', claims: {}, spiffeId: subject.startsWith('spiffe://') ? subject : '', mfa: false };
}
