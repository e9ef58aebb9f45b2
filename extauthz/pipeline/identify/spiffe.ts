/**
 * SPIFFE IDs per the SPIFFE ID specification, decided on structure: a string is parsed into a
 * trust domain and path segments, and only a valid ID is ever compared with a tenant's pattern.
 * Comparison is segment by segment, never by string prefix or regex, so `ns/revenue-evil` is not
 * `ns/revenue/*` and `ns/revenue/../x` never reaches a matcher at all.
 */

export const SPIFFE_LIMITS = { idBytes: 2048, trustDomainBytes: 255 } as const;

const SCHEME = 'spiffe://';
// The spec's charsets: trust domain lower-case letters, digits, '.', '-', '_'; path segments
// also upper-case letters. Anything else ('%', '?', '#', ':', '@', non-ASCII) is invalid.
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const SEGMENT = /^[A-Za-z0-9._-]+$/;

export interface SpiffeId {
  readonly trustDomain: string;
  readonly segments: readonly string[];
  /** The ID exactly as validated (already canonical: the spec admits one spelling). */
  readonly text: string;
}

/** Why a string is not a SPIFFE ID, or undefined when it is one. */
export function spiffeIdProblem(s: string): string | undefined {
  if (Buffer.byteLength(s, 'utf8') > SPIFFE_LIMITS.idBytes) return `longer than ${SPIFFE_LIMITS.idBytes} bytes`;
  if (!s.startsWith(SCHEME)) return 'scheme must be spiffe:// (lower case)';
  const rest = s.slice(SCHEME.length);
  const slash = rest.indexOf('/');
  const td = slash < 0 ? rest : rest.slice(0, slash);
  if (td === '') return 'empty trust domain';
  if (td.length > SPIFFE_LIMITS.trustDomainBytes) return `trust domain longer than ${SPIFFE_LIMITS.trustDomainBytes} bytes`;
  if (!TRUST_DOMAIN.test(td)) return 'trust domain may hold only a-z, 0-9, ".", "-" and "_"';
  return slash < 0 ? undefined : pathProblem(rest.slice(slash));
}

function pathProblem(path: string): string | undefined {
  const segments = path.slice(1).split('/');
  for (const seg of segments) {
    if (seg === '') return 'empty path segment or trailing slash';
    if (seg === '.' || seg === '..') return 'dot segment in path';
    if (!SEGMENT.test(seg)) return 'path segments may hold only A-Z, a-z, 0-9, ".", "-" and "_" (no query, fragment or percent-encoding)';
  }
  return undefined;
}

/** The parsed ID, or undefined for anything the specification does not admit. */
export function parseSpiffeId(s: string): SpiffeId | undefined {
  if (spiffeIdProblem(s) !== undefined) return undefined;
  const rest = s.slice(SCHEME.length);
  const slash = rest.indexOf('/');
  if (slash < 0) return { trustDomain: rest, segments: [], text: s };
  return { trustDomain: rest.slice(0, slash), segments: rest.slice(slash + 1).split('/'), text: s };
}

/**
 * A tenant's pattern: a valid SPIFFE ID whose path segments may be `*` (exactly one whole
 * segment), optionally ending in `/*` (one or more whole segments). A `*` inside a segment is
 * refused: it would match across the text of a segment, not the structure.
 */
export interface SpiffePattern {
  readonly trustDomain: string;
  /** undefined: any one segment. */
  readonly segments: readonly (string | undefined)[];
  /** The last segment was `*` and stands for one or more segments. */
  readonly open: boolean;
  readonly source: string;
}

export function compileSpiffePattern(p: string): SpiffePattern {
  // Stand-in segment: replaced by a wildcard after the ID itself is validated.
  const probe = p.split('/').map((part, i) => (i >= 3 && part === '*' ? '_wildcard_' : part)).join('/');
  const problem = spiffeIdProblem(probe);
  if (problem !== undefined) throw new Error(`spiffeIds: ${JSON.stringify(p)} is not a valid SPIFFE ID pattern: ${problem}`);
  const id = parseSpiffeId(probe)!;
  const parts = p.slice(SCHEME.length).split('/').slice(1);
  if (parts.some((s) => s !== '*' && s.includes('*'))) throw new Error(`spiffeIds: ${JSON.stringify(p)}: * must be a whole path segment`);
  const open = parts.length > 0 && parts[parts.length - 1] === '*';
  const segments = (open ? parts.slice(0, -1) : parts).map((s) => (s === '*' ? undefined : s));
  return { trustDomain: id.trustDomain, segments, open, source: p };
}

export function matchSpiffe(pattern: SpiffePattern, id: SpiffeId): boolean {
  if (id.trustDomain !== pattern.trustDomain) return false;
  const n = pattern.segments.length;
  if (pattern.open ? id.segments.length <= n : id.segments.length !== n) return false;
  return pattern.segments.every((s, i) => s === undefined || s === id.segments[i]);
}
