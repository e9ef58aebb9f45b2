/**
 * Revocation lists (docs/revocation.md). A Tenant names one source (a Secret or ConfigMap key in
 * its namespace, or a file in folder mode) holding a JSON document of revoked token ids (`jti`),
 * subjects (`sub`) and API key ids (`apiKeys`), each entry with an optional expiry (`until`).
 *
 * The list is parsed strictly when the tenant compiles (bounded size and entry count, unknown
 * fields refused, RFC 3339 times) into three Maps, so the Check hot path does one Map lookup per
 * kind. A list that does not parse refuses the tenant's current version: its last good version
 * (with its last good list) keeps serving, and a tenant that never had a good list does not serve
 * at all, so none of its principals can authenticate (fail closed).
 */

export const REVOCATION_LIMITS = {
  /** A Secret or ConfigMap holds at most 1 MiB; a file is held to the same bound. */
  bytes: 1024 * 1024,
  entries: 50_000,
  idBytes: 512,
} as const;

export type RevocationKind = 'jti' | 'sub' | 'api-key';

/** Id → epoch ms until which it is revoked (Infinity: no expiry). */
export type RevokedIds = ReadonlyMap<string, number>;

export interface CompiledRevocation {
  jti: RevokedIds;
  sub: RevokedIds;
  apiKeys: RevokedIds;
  /** Where the list came from, for messages (never the ids). */
  source: string;
  /** Entries (ids) in the list, expired ones included. */
  size: number;
}

export class RevocationListError extends Error {}

const FIELDS: Readonly<Record<string, keyof Pick<CompiledRevocation, 'jti' | 'sub' | 'apiKeys'>>> = { jti: 'jti', sub: 'sub', apiKeys: 'apiKeys' };
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

function fail(message: string): never {
  throw new RevocationListError(message);
}

function parseUntil(v: unknown, where: string): number {
  if (v === undefined) return Infinity;
  if (typeof v !== 'string' || !RFC3339.test(v)) fail(`${where}.until must be an RFC 3339 date-time (e.g. 2026-12-31T00:00:00Z)`);
  const ms = Date.parse(v);
  if (!Number.isFinite(ms)) fail(`${where}.until is not a valid date-time`);
  return ms;
}

function parseEntry(e: unknown, where: string): [string, number] {
  if (typeof e === 'string') return [checkId(e, where), Infinity];
  if (!e || typeof e !== 'object' || Array.isArray(e)) fail(`${where} must be an id string or an object { id, until }`);
  const o = e as Record<string, unknown>;
  for (const k of Object.keys(o)) if (k !== 'id' && k !== 'until') fail(`${where} has an unknown field (only id and until are allowed)`);
  if (typeof o.id !== 'string') fail(`${where}.id must be a string`);
  return [checkId(o.id, where), parseUntil(o.until, where)];
}

function checkId(id: string, where: string): string {
  if (id.length === 0) fail(`${where}: an id must not be empty`);
  if (Buffer.byteLength(id, 'utf8') > REVOCATION_LIMITS.idBytes) fail(`${where}: an id is longer than ${REVOCATION_LIMITS.idBytes} bytes`);
  return id;
}

function parseList(list: unknown, field: string, out: Map<string, number>, count: { n: number }): void {
  if (!Array.isArray(list)) fail(`${field} must be a list`);
  for (let i = 0; i < list.length; i++) {
    if (++count.n > REVOCATION_LIMITS.entries) fail(`more than ${REVOCATION_LIMITS.entries} entries`);
    const [id, until] = parseEntry(list[i], `${field}[${i}]`);
    // The same id twice: the later expiry wins (revoking again extends, never shortens).
    const prev = out.get(id);
    if (prev === undefined || prev < until) out.set(id, until);
  }
}

/**
 * Parses a revocation list; throws RevocationListError with a message that never quotes an id.
 * Expired entries are kept and ignored at lookup (the Check's clock decides, not the loader's).
 */
export function parseRevocationList(text: string, source: string): CompiledRevocation {
  if (Buffer.byteLength(text, 'utf8') > REVOCATION_LIMITS.bytes) fail(`larger than ${REVOCATION_LIMITS.bytes} bytes`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    fail('not valid JSON');
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) fail('must be a JSON object with jti, sub and/or apiKeys lists');
  const out = { jti: new Map<string, number>(), sub: new Map<string, number>(), apiKeys: new Map<string, number>() };
  const count = { n: 0 };
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    const field = FIELDS[k];
    if (!field) fail('unknown top-level field (only jti, sub and apiKeys are allowed)');
    parseList(v, k, out[field], count);
  }
  return { jti: out.jti, sub: out.sub, apiKeys: out.apiKeys, source, size: out.jti.size + out.sub.size + out.apiKeys.size };
}

function revoked(ids: RevokedIds, id: unknown, nowMs: number): boolean {
  if (typeof id !== 'string' || ids.size === 0) return false;
  const until = ids.get(id);
  return until !== undefined && until > nowMs;
}

/**
 * The kind under which a credential is revoked, or undefined. Two Map lookups at most: the
 * subject (any method) and the token id (JWT, or an introspected opaque token's jti), or the API
 * key id.
 */
export function revokedKind(rev: CompiledRevocation, p: { method: string; subject: string; claims: Readonly<Record<string, unknown>> }, nowMs: number): RevocationKind | undefined {
  if (p.method === 'api-key') return revoked(rev.apiKeys, p.subject, nowMs) ? 'api-key' : undefined;
  if (revoked(rev.sub, p.subject, nowMs)) return 'sub';
  if ((p.method === 'jwt' || p.method === 'opaque') && revoked(rev.jti, p.claims.jti, nowMs)) return 'jti';
  return undefined;
}
