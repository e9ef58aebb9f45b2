/**
 * Distinguished names as structure: RFC 4514 strings (what OpenSSL's RFC 2253 output and Envoy's
 * XFCC Subject carry, and what tenants write as subject patterns) are parsed into RDNs of
 * (type, value) pairs, and a pattern matches RDN by RDN. A certificate's CN can hold `,`, `+`,
 * `"`, `;` or `O=…`; once parsed it is one value and can never become another attribute.
 */

export const DN_LIMITS = { rdns: 64, attributesPerRdn: 8 } as const;

export interface DnAttribute {
  /** Upper-case short name (CN, O, OU…) or a dotted OID. */
  readonly type: string;
  readonly value: string;
}
/** Attributes of one RDN, sorted by type: a multi-valued RDN is a set. */
export type Rdn = readonly DnAttribute[];
/** Most specific RDN first, as RFC 4514 writes it. */
export type Dn = readonly Rdn[];

/** A pattern attribute: the value split at its unescaped `*` wildcards. */
export interface DnPatternAttribute {
  readonly type: string;
  readonly parts: readonly string[];
}
export type DnPattern = readonly (readonly DnPatternAttribute[])[];

export class DnSyntaxError extends Error {}

// Attribute types by OID, named as OpenSSL prints them (upper-cased for comparison).
const OID_NAMES: Readonly<Record<string, string>> = {
  '2.5.4.3': 'CN', '2.5.4.4': 'SN', '2.5.4.5': 'SERIALNUMBER', '2.5.4.6': 'C', '2.5.4.7': 'L',
  '2.5.4.8': 'ST', '2.5.4.9': 'STREET', '2.5.4.10': 'O', '2.5.4.11': 'OU', '2.5.4.12': 'TITLE',
  '2.5.4.42': 'GN', '2.5.4.97': 'ORGANIZATIONIDENTIFIER', '0.9.2342.19200300.100.1.1': 'UID',
  '0.9.2342.19200300.100.1.25': 'DC', '1.2.840.113549.1.9.1': 'EMAILADDRESS',
};
const NAME_ALIASES: Readonly<Record<string, string>> = { COMMONNAME: 'CN', ORGANIZATIONNAME: 'O', ORGANIZATIONALUNITNAME: 'OU', COUNTRYNAME: 'C', E: 'EMAILADDRESS' };
const DESCR = /^[A-Za-z][A-Za-z0-9-]*$/;
const NUMERICOID = /^\d+(\.\d+)+$/;

/** The comparable name of an attribute type given as a short name, an alias or an OID. */
export function attributeType(t: string): string {
  const trimmed = t.trim();
  if (NUMERICOID.test(trimmed)) return OID_NAMES[trimmed] ?? trimmed;
  if (!DESCR.test(trimmed)) throw new DnSyntaxError(`invalid attribute type ${JSON.stringify(trimmed.slice(0, 40))}`);
  const upper = trimmed.toUpperCase();
  return NAME_ALIASES[upper] ?? upper;
}

const HEX = /^[0-9A-Fa-f]{2}$/;

/** A cursor over an RFC 4514 string. */
class Reader {
  pos = 0;
  constructor(readonly s: string) {}
  get done(): boolean {
    return this.pos >= this.s.length;
  }
  peek(): string {
    return this.s[this.pos] ?? '';
  }
  skipSpaces(): void {
    while (this.peek() === ' ') this.pos++;
  }
}

/** One value: escapes (`\,`, `\"`, `\\`, `\C3\A9`) resolved; with glob, unescaped `*` splits. */
function readValue(r: Reader, glob: boolean): string[] {
  const parts: string[] = [];
  let bytes: number[] = [];
  let trailingSpaces = 0;
  // Unescaped trailing spaces are not part of the value (RFC 4514 requires them escaped).
  const flush = (final: boolean): void => {
    parts.push(decodeUtf8(final ? bytes.slice(0, bytes.length - trailingSpaces) : bytes));
    bytes = [];
    trailingSpaces = 0;
  };
  while (!r.done) {
    const ch = r.peek();
    if (ch === ',' || ch === '+') break;
    r.pos++;
    if (ch === '\\') {
      bytes.push(...escaped(r));
      trailingSpaces = 0;
    } else if (glob && ch === '*') flush(false);
    else if ('";<>'.includes(ch)) throw new DnSyntaxError(`unescaped ${ch} in attribute value`);
    else {
      const b = Buffer.from(ch, 'utf8');
      bytes.push(...b);
      trailingSpaces = ch === ' ' ? trailingSpaces + 1 : 0;
    }
  }
  flush(true);
  return parts;
}

function escaped(r: Reader): number[] {
  const pair = r.s.slice(r.pos, r.pos + 2);
  if (HEX.test(pair)) {
    r.pos += 2;
    return [parseInt(pair, 16)];
  }
  const next = r.s.codePointAt(r.pos);
  if (next === undefined) throw new DnSyntaxError('dangling backslash');
  const ch = String.fromCodePoint(next);
  r.pos += ch.length;
  return [...Buffer.from(ch, 'utf8')];
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(bytes: number[]): string {
  try {
    return UTF8.decode(Uint8Array.from(bytes));
  } catch {
    throw new DnSyntaxError('attribute value is not valid UTF-8');
  }
}

function readAttribute(r: Reader, glob: boolean): DnPatternAttribute {
  r.skipSpaces();
  const eq = r.s.indexOf('=', r.pos);
  if (eq < 0) throw new DnSyntaxError('attribute without =');
  const type = attributeType(r.s.slice(r.pos, eq));
  r.pos = eq + 1;
  r.skipSpaces();
  return { type, parts: readValue(r, glob) };
}

function parse(s: string, glob: boolean): DnPatternAttribute[][] {
  const r = new Reader(s);
  const rdns: DnPatternAttribute[][] = [];
  let rdn: DnPatternAttribute[] = [];
  for (;;) {
    rdn.push(readAttribute(r, glob));
    if (rdn.length > DN_LIMITS.attributesPerRdn) throw new DnSyntaxError('too many attributes in one RDN');
    if (r.peek() === '+') {
      r.pos++;
      continue;
    }
    rdns.push(sortByType(rdn));
    if (rdns.length > DN_LIMITS.rdns) throw new DnSyntaxError(`more than ${DN_LIMITS.rdns} RDNs`);
    if (r.done) return rdns;
    r.pos++; // the ',' that ended the RDN
    rdn = [];
  }
}

function sortByType<T extends { type: string }>(attrs: T[]): T[] {
  return attrs.sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0));
}

/** Parses an RFC 4514 / RFC 2253 distinguished name; throws DnSyntaxError. */
export function parseDn(s: string): Dn {
  if (s.trim() === '') return [];
  return parse(s, false).map((rdn) => rdn.map((a) => ({ type: a.type, value: a.parts.join('') })));
}

/** A subject pattern: an RFC 4514 DN in which an unescaped `*` matches any run within one value. */
export function parseDnPattern(s: string): DnPattern {
  if (s.trim() === '') throw new DnSyntaxError('empty distinguished name');
  return parse(s, true);
}

/** Builds a Dn from a certificate's attributes (ASN.1 order: least specific first). */
export function dnFromCertificate(rdns: readonly (readonly { type: string; value: string }[])[]): Dn {
  return [...rdns].reverse().map((rdn) => sortByType(rdn.map((a) => ({ type: attributeType(a.type), value: a.value }))));
}

/** `*`-glob match, case-insensitive, in linear passes (no regex, no backtracking). */
export function globMatch(parts: readonly string[], value: string): boolean {
  const v = value.toLowerCase();
  const p = parts.map((x) => x.toLowerCase());
  if (p.length === 1) return v === p[0];
  const first = p[0]!;
  const last = p[p.length - 1]!;
  if (v.length < first.length + last.length || !v.startsWith(first) || !v.endsWith(last)) return false;
  let at = first.length;
  const end = v.length - last.length;
  for (const middle of p.slice(1, -1)) {
    const found = v.indexOf(middle, at);
    if (found < 0 || found + middle.length > end) return false;
    at = found + middle.length;
  }
  return true;
}

export function matchDn(pattern: DnPattern, dn: Dn): boolean {
  if (pattern.length !== dn.length) return false;
  return pattern.every((prdn, i) => {
    const rdn = dn[i]!;
    return prdn.length === rdn.length && prdn.every((pa, j) => pa.type === rdn[j]!.type && globMatch(pa.parts, rdn[j]!.value));
  });
}

function escapeChar(ch: string, first: boolean, last: boolean): string {
  const code = ch.codePointAt(0)!;
  if (code < 0x20 || code === 0x7f) return '\\' + code.toString(16).toUpperCase().padStart(2, '0');
  if ('\\"+,;<>'.includes(ch) || (first && ch === '#') || ((first || last) && ch === ' ')) return '\\' + ch;
  return ch;
}

function escapeValue(v: string): string {
  const chars = [...v];
  return chars.map((ch, i) => escapeChar(ch, i === 0, i === chars.length - 1)).join('');
}

/** The RFC 4514 string of a parsed DN, escaped so that it parses back to the same structure. */
export function formatDn(dn: Dn): string {
  return dn.map((rdn) => rdn.map((a) => `${a.type}=${escapeValue(a.value)}`).join('+')).join(',');
}
