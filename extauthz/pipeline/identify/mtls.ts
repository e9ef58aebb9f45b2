/**
 * Agencies over mutual TLS. The peer identity Envoy saw (the URL-encoded certificate when
 * include_peer_certificate is on, else attributes.source.principal) is trusted; the
 * x-forwarded-client-cert header is read only for tenants that set trustXfcc, because any client
 * can send that header to a proxy that does not sanitise it.
 *
 * Everything is decided on structure: the certificate's Name and subjectAltName are decoded from
 * DER, XFCC follows Envoy's grammar, a SPIFFE ID is validated before any pattern sees it, and
 * subjects are compared RDN by RDN.
 *
 * Which XFCC element is the client: the FIRST. Envoy appends (APPEND_FORWARD) the element for
 * each hop's peer at the end, so with an edge that sanitises (SANITIZE_SET, Istio's gateway
 * default) the first element is the one the edge wrote for the original client, and later ones
 * describe proxies (a sidecar appends its gateway's element). The first element is trustworthy
 * only because the edge dropped what the client sent: that is what trustXfcc asserts.
 */
import { PortcullisError } from '../../errors.js';
import type { CompiledMtls, CompiledTenant, TenantDirectory } from '../../policy/tenants.js';
import type { RequestContext } from '../context.js';
import type { Principal } from '../principal.js';
import { DnSyntaxError, formatDn, matchDn, parseDn, type Dn } from '../../policy/dn.js';
import { matchDns, validDnsName } from '../../policy/dns-name.js';
import { CertificateError, certificateIdentityFromPem } from './san.js';
import { matchSpiffe, parseSpiffeId, type SpiffeId } from '../../policy/spiffe.js';
import { parseXfcc as parseXfccElements, XfccSyntaxError, type XfccElement } from './xfcc.js';

export interface PeerIdentity {
  /** Set only for an X.509-SVID: exactly one URI SAN, and it is a valid SPIFFE ID. */
  spiffe?: SpiffeId;
  subject?: Dn;
  /** Valid host names only, lower-cased. */
  dnsNames: string[];
}

const NONE: PeerIdentity = Object.freeze({ dnsNames: [] }) as PeerIdentity;

function fromParts(uris: readonly string[], subject: Dn | undefined, dns: readonly string[]): PeerIdentity {
  // X.509-SVID: "exactly one URI SAN"; a certificate with two is not an SVID for either.
  const spiffe = uris.length === 1 ? parseSpiffeId(uris[0]!) : undefined;
  const dnsNames = dns.map(validDnsName).filter((d): d is string => d !== undefined);
  return { ...(spiffe ? { spiffe } : {}), ...(subject && subject.length > 0 ? { subject } : {}), dnsNames };
}

function fromPem(pem: string, what: string): PeerIdentity {
  try {
    const c = certificateIdentityFromPem(pem);
    return fromParts(c.uris, c.subject, c.dnsNames);
  } catch (err) {
    if (err instanceof CertificateError) throw new PortcullisError('BAD_REQUEST', `${what} is not a valid certificate`, { cause: err });
    throw err;
  }
}

function urlDecoded(v: string, what: string): string {
  try {
    return decodeURIComponent(v);
  } catch {
    throw new PortcullisError('BAD_REQUEST', `${what} is not URL-encoded`);
  }
}

/** attributes.source.certificate wins over source.principal: both describe the same peer. */
export function peerIdentity(ctx: RequestContext): PeerIdentity {
  if (ctx.sourceCertificate !== '') return fromPem(urlDecoded(ctx.sourceCertificate, 'source certificate'), 'source certificate');
  const spiffe = parseSpiffeId(ctx.sourcePrincipal);
  return spiffe ? { spiffe, dnsNames: [] } : NONE;
}

function fromElement(el: XfccElement): PeerIdentity {
  if (el.cert !== undefined) return fromPem(urlDecoded(el.cert, 'XFCC Cert'), 'XFCC Cert');
  let subject: Dn | undefined;
  try {
    subject = el.subject !== undefined ? parseDn(el.subject) : undefined;
  } catch (err) {
    if (err instanceof DnSyntaxError) throw new PortcullisError('BAD_REQUEST', `x-forwarded-client-cert Subject: ${err.message}`);
    throw err;
  }
  // DNS pairs after a URI may be that URI's own text (xfcc.ts): bind DNS names only from Cert then.
  return fromParts(el.uri, subject, el.dnsAfterUri ? [] : el.dns);
}

/** The client of an XFCC header: its first element. Malformed: BAD_REQUEST (no proxy writes it). */
export function xfccClient(header: string): PeerIdentity {
  let elements: XfccElement[];
  try {
    elements = parseXfccElements(header);
  } catch (err) {
    if (err instanceof XfccSyntaxError) throw new PortcullisError('BAD_REQUEST', `malformed x-forwarded-client-cert: ${err.message}`);
    throw err;
  }
  return fromElement(elements[0]!);
}

/** The identity a tenant's patterns name, as the principal's subject; SPIFFE first. */
export function matchTenant(m: CompiledMtls, id: PeerIdentity): string | undefined {
  const spiffe = id.spiffe;
  if (spiffe && m.spiffeIds.some((p) => matchSpiffe(p, spiffe))) return spiffe.text;
  const subject = id.subject;
  if (subject && m.subjects.some((p) => matchDn(p, subject))) return formatDn(subject);
  return id.dnsNames.find((d) => m.dnsNames.some((p) => matchDns(p, d)));
}

function xfccIdentity(ctx: RequestContext, dir: TenantDirectory): PeerIdentity {
  const header = ctx.headers['x-forwarded-client-cert'];
  if (header === undefined || header === '' || !dir.mtls.some((t) => t.mtls!.trustXfcc)) return NONE;
  return xfccClient(header);
}

export function identifyMtls(ctx: RequestContext, dir: TenantDirectory): Principal | undefined {
  if (dir.mtls.length === 0) return undefined;
  const peer = peerIdentity(ctx);
  const xfcc = xfccIdentity(ctx, dir);
  const found = new Map<CompiledTenant, string>();
  for (const t of dir.mtls) {
    const subject = matchTenant(t.mtls!, peer) ?? (t.mtls!.trustXfcc ? matchTenant(t.mtls!, xfcc) : undefined);
    if (subject !== undefined) found.set(t, subject);
  }
  if (found.size > 1) throw new PortcullisError('AMBIGUOUS_PRINCIPAL', 'client certificate matches several tenants');
  const [entry] = found;
  if (!entry) return undefined;
  const [tenant, subject] = entry;
  return { type: tenant.principalType, tenant, subject, method: 'mtls', claims: {}, spiffeId: subject.startsWith('spiffe://') ? subject : '', mfa: false };
}
