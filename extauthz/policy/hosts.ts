/** Host matching: exact names and *.suffix wildcards, case-insensitive, ports ignored. */

/** Lower-cases the authority and strips a port (IPv6 literals keep their brackets). */
export function normalizeHost(authority: string): string {
  const host = authority.trim().toLowerCase();
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end > 0 ? host.slice(0, end + 1) : host;
  }
  const colon = host.lastIndexOf(':');
  return colon >= 0 && /^\d*$/.test(host.slice(colon + 1)) ? host.slice(0, colon) : host.replace(/\.$/, '');
}

/** An index from host to entries; exact names first, then the longest matching wildcard. */
export class HostIndex<T> {
  private readonly exact = new Map<string, T[]>();
  private readonly wildcards = new Map<string, T[]>();

  add(pattern: string, value: T): void {
    const p = pattern.toLowerCase();
    const [map, key] = p.startsWith('*.') ? [this.wildcards, p.slice(1)] : [this.exact, p];
    const list = map.get(key) ?? [];
    list.push(value);
    map.set(key, list);
  }

  /** Entries for the host, in insertion order; an empty list when nothing matches. */
  lookup(host: string): readonly T[] {
    const exact = this.exact.get(host);
    if (exact) return exact;
    // Longest suffix first: a.b.example.com tries .b.example.com, then .example.com, then .com.
    for (let i = host.indexOf('.'); i >= 0; i = host.indexOf('.', i + 1)) {
      const found = this.wildcards.get(host.slice(i));
      if (found && i > 0) return found;
    }
    return [];
  }
}
