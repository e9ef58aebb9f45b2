/**
 * DNS SANs as labels: a certificate's dNSName is bound only when it is a valid host name
 * (letters, digits, hyphens; no wildcard, no trailing dot), and a tenant's pattern matches label
 * by label, a `*` staying within its label.
 */
import { globMatch } from './dn.js';

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const PATTERN_LABEL = /^[a-z0-9*]([a-z0-9*-]{0,61}[a-z0-9*])?$/;

export type DnsPattern = readonly (readonly string[])[];

/** The lower-cased name, or undefined when it is not a host name (a wildcard SAN is not a client). */
export function validDnsName(name: string): string | undefined {
  const lower = name.toLowerCase();
  if (lower.length === 0 || lower.length > 253) return undefined;
  return lower.split('.').every((l) => LABEL.test(l)) ? lower : undefined;
}

export function compileDnsPattern(p: string): DnsPattern {
  const labels = p.toLowerCase().split('.');
  if (p.length > 253 || !labels.every((l) => PATTERN_LABEL.test(l))) throw new Error(`subjects: ${JSON.stringify(p)} is neither a distinguished name (CN=…) nor a DNS name pattern`);
  return labels.map((l) => l.split('*'));
}

export function matchDns(pattern: DnsPattern, name: string): boolean {
  const labels = name.split('.');
  return labels.length === pattern.length && pattern.every((parts, i) => globMatch(parts, labels[i]!));
}
