/** Host matching: exact names and *.suffix wildcards, case-insensitive, ports ignored. */
import { CowMap, type CowWriter } from './cow-map.js';

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
 * An index from host to entries; exact names first, then the longest matching wildcard. An index
 * is immutable: edit() returns the next one, sharing every host list (and, through CowMap, every
 * shard of the maps) it does not touch, so a snapshot being read is never modified by the one
 * being built from it, and a one-policy edit copies a few dozen entries, not the whole index.
 */
export interface HostIndexEditor<T> {
  /** Adds value to the pattern's list, before the first entry `before` says it precedes (else last). */
  add(pattern: string, value: T, before?: (a: T, b: T) => boolean): void;
  remove(pattern: string, value: T): void;
}

/** Writes through to the exact or the wildcard map by the pattern's shape; every touched list is replaced, never changed. */
function editor<T>(exact: CowWriter<readonly T[]>, wildcards: CowWriter<readonly T[]>): HostIndexEditor<T> {
  const slot = (pattern: string): [CowWriter<readonly T[]>, string] => {
    const p = pattern.toLowerCase();
    return p.startsWith('*.') ? [wildcards, p.slice(1)] : [exact, p];
  };
  return {
    add: (pattern, value, before = () => false) => {
      const [map, key] = slot(pattern);
      const list = [...(map.get(key) ?? [])];
      const at = list.findIndex((x) => before(value, x));
      list.splice(at < 0 ? list.length : at, 0, value);
      map.set(key, list);
    },
    remove: (pattern, value) => {
      const [map, key] = slot(pattern);
      const list = (map.get(key) ?? []).filter((x) => x !== value);
      if (list.length > 0) map.set(key, list);
      else map.delete(key);
    },
  };
}

export class HostIndex<T> {
  private constructor(
    private readonly exact: CowMap<readonly T[]>,
    private readonly wildcards: CowMap<readonly T[]>,
  ) {}

  static empty<T>(): HostIndex<T> {
    return new HostIndex<T>(CowMap.empty(), CowMap.empty());
  }

  /** The next index: this one with fn's additions and removals. */
  edit(fn: (e: HostIndexEditor<T>) => void): HostIndex<T> {
    const e = this.editor();
    fn(e);
    return e.done();
  }

  /** An editor of the next index, for changes spread over several event-loop turns. */
  editor(): HostIndexEditor<T> & { done(): HostIndex<T> } {
    const exact = this.exact.edit();
    const wildcards = this.wildcards.edit();
    return {
      ...editor(exact, wildcards),
      done: () => {
        const [ex, wc] = [exact.done(), wildcards.done()];
        return ex === this.exact && wc === this.wildcards ? this : new HostIndex<T>(ex, wc);
      },
    };
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
