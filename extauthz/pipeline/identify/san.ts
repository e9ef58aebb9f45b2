/**
 * A client certificate read structurally: Node checks the PEM and hands over the DER, and
 * @peculiar/asn1-x509 decodes the subject Name and the subjectAltName extension into their ASN.1
 * types. No display string is ever split: a SAN or RDN value holding `, URI:spiffe://…` stays one
 * value.
 */
import { X509Certificate } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, SubjectAlternativeName, id_ce_subjectAltName } from '@peculiar/asn1-x509';
import { dnFromCertificate, type Dn } from './dn.js';

export interface CertificateIdentity {
  subject: Dn;
  /** uniformResourceIdentifier SANs, in certificate order. */
  uris: string[];
  dnsNames: string[];
}

export class CertificateError extends Error {}

export function certificateIdentityFromPem(pem: string): CertificateIdentity {
  let der: Buffer;
  try {
    der = new X509Certificate(pem).raw;
  } catch (err) {
    throw new CertificateError('not a valid PEM certificate', { cause: err });
  }
  return certificateIdentityFromDer(der);
}

export function certificateIdentityFromDer(der: Uint8Array): CertificateIdentity {
  let cert: Certificate;
  try {
    cert = AsnConvert.parse(der, Certificate);
  } catch (err) {
    throw new CertificateError('certificate does not decode', { cause: err });
  }
  const tbs = cert.tbsCertificate;
  const subject = dnFromCertificate(tbs.subject.map((rdn) => rdn.map((a) => ({ type: a.type, value: a.value.toString() }))));
  const identity: CertificateIdentity = { subject, uris: [], dnsNames: [] };
  const ext = tbs.extensions?.find((e) => e.extnID === id_ce_subjectAltName);
  if (!ext) return identity;
  let names: SubjectAlternativeName;
  try {
    names = AsnConvert.parse(ext.extnValue, SubjectAlternativeName);
  } catch (err) {
    throw new CertificateError('subjectAltName does not decode', { cause: err });
  }
  for (const n of names) {
    if (n.uniformResourceIdentifier !== undefined) identity.uris.push(n.uniformResourceIdentifier);
    if (n.dNSName !== undefined) identity.dnsNames.push(n.dNSName);
  }
  return identity;
}
