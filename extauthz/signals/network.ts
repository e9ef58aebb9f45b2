/**
 * The client network an invalid-credentials signal groups by: IPv4 /24, IPv6 /64 (one site or
 * subscriber line each; a hostile client rotating addresses within one stays in one group).
 * The address is the one the pipeline already determined (the peer, or Envoy's
 * x-envoy-external-address derived from XFF). Only the prefix is kept, never the address.
 */
import { isIPv4, isIPv6 } from 'node:net';

function ipv6Groups(ip: string): string[] | undefined {
  const [head = '', tail, extra] = ip.split('::');
  if (extra !== undefined) return undefined;
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const fill = 8 - left.length - right.length;
  if (tail === undefined ? left.length !== 8 : fill < 1) return undefined;
  return tail === undefined ? left : [...left, ...Array<string>(fill).fill('0'), ...right];
}

/** The grouping prefix of an address ("198.51.100.0/24", "2001:db8:1:2::/64"), or null when it is not an IP address. */
export function clientNetwork(ip: string): string | null {
  const bare = ip.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, '');
  if (isIPv4(bare)) return `${bare.slice(0, bare.lastIndexOf('.'))}.0/24`;
  if (!isIPv6(bare) || bare.includes('.')) return null;
  const groups = ipv6Groups(bare.replace(/%.*$/, ''));
  if (!groups) return null;
  return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
