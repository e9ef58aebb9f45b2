/**
 * Personal data never reaches a record in clear: subjects become keyed pseudonyms (HMAC-SHA-256
 * with a secret key, so nobody without the key can test a guess), client IPs are truncated to
 * their network prefix (IPv4 /24, IPv6 /48).
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';

export class Pseudonymizer {
  /** Identifies the key (not secret): pseudonyms are only comparable under the same key id. */
  readonly keyId: string;
  /** Subject → pseudonym (the HMAC is deterministic): one HMAC per distinct subject, not per record. */
  private readonly cache = new Map<string, string>();

  constructor(
    private readonly key: Buffer,
    private readonly cacheSize = 10_000,
  ) {
    if (key.length < 16) throw new RangeError('the pseudonymisation key must be at least 16 bytes');
    this.keyId = createHash('sha256').update('portcullis-audit-subject-key').update(key).digest('hex').slice(0, 12);
  }

  static ephemeral(): Pseudonymizer {
    return new Pseudonymizer(randomBytes(32));
  }

  /** 128 bits of HMAC-SHA-256, base64url: stable per subject and key, unlinkable without the key. */
  subject(subject: string | undefined): string | null {
    if (subject === undefined || subject === '') return null;
    const hit = this.cache.get(subject);
    if (hit !== undefined) return hit;
    const pseudonym = createHmac('sha256', this.key).update(subject, 'utf8').digest().subarray(0, 16).toString('base64url');
    if (this.cache.size >= this.cacheSize) this.cache.clear();
    this.cache.set(subject, pseudonym);
    return pseudonym;
  }
}

function ipv6Prefix48(ip: string): string {
  const [head = '', tail] = ip.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  return `${groups.slice(0, 3).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/48`;
}

/** The network a client address belongs to, never the address itself. */
export function truncateIp(ip: string): string | null {
  const bare = ip.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
  if (isIPv4(bare)) return `${bare.split('.').slice(0, 3).join('.')}.0/24`;
  if (isIPv6(bare) && !bare.includes('.')) return ipv6Prefix48(bare);
  return null;
}
