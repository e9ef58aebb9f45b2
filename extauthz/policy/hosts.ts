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

/**
 * An index from host to entries; exact names first, then the longest matching wildcard. Updates
 * are copy-on-write: clone() copies the two maps (not the lists) and every change replaces the
 * list it touches, so a snapshot being read is never modified by the one being built from it.
 */
export class HostIndex<T> {
  private constructor(
    private readonly exact: Map<string, readonly T[]>,
    private readonly wildcards: Map<string, readonly T[]>,
  ) {}

  static empty<T>(): HostIndex<T> {
    return new HostIndex<T>(new Map(), new Map());
  }

  clone(): HostIndex<T> {
    return new HostIndex<T>(new Map(this.exact), new Map(this.wildcards));
  }

  private slot(pattern: string): [Map<string, readonly T[]>, string] {
    const p = pattern.toLowerCase();
    return p.startsWith('*.') ? [this.wildcards, p.slice(1)] : [this.exact, p];
  }

  /** Adds value to the pattern's list, before the first entry `before` says it precedes (else last). */
  add(pattern: string, value: T, before: (a: T, b: T) => boolean = () => false): void {
    const [map, key] = this.slot(pattern);
    const list = [...(map.get(key) ?? [])];
    const at = list.findIndex((x) => before(value, x));
    list.splice(at < 0 ? list.length : at, 0, value);
    map.set(key, list);
  }

  remove(pattern: string, value: T): void {
    const [map, key] = this.slot(pattern);
    const list = (map.get(key) ?? []).filter((x) => x !== value);
    if (list.length > 0) map.set(key, list);
    else map.delete(key);
  }

  isEmpty(): boolean {
    return this.exact.size === 0 && this.wildcards.size === 0;
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
