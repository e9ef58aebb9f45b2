/**
 * The hash chain's encoding: RFC 8785 (JSON Canonicalization Scheme), so an auditor can recompute
 * every hash with any JCS implementation, independently of how the line was formatted on disk.
 */
import { createHash } from 'node:crypto';
import canonicalizeModule from 'canonicalize';

// The package is CommonJS (module.exports = fn) while its typings declare an ES default export;
// under NodeNext the default import is the function itself at run time.
const canonicalize = canonicalizeModule as unknown as (input: unknown) => string | undefined;

export function canonicalJson(value: unknown): string {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('value has no canonical JSON form');
  return text;
}

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

/** The hash a successor carries in `prev`: SHA-256 over the canonical JSON of the whole entry. */
export function entryHash(entry: object): string {
  return sha256Hex(canonicalJson(entry));
}
