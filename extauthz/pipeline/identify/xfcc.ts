/**
 * Envoy's x-forwarded-client-cert grammar: elements separated by `,`, key=value pairs by `;`,
 * a value optionally double-quoted, and inside quotes a backslash escapes the next character.
 * The tokenizer walks the header once, so a `,`, `;`, `=` or `"` inside a quoted value (a CN the
 * client chose) never ends the value or starts another key.
 *
 * Envoy quotes Subject with OpenSSL's RFC 2253 text inside, which already escapes `"`, `,`, `;`,
 * `+` and `\` with a backslash: the two escape layers coincide. So a quoted value is kept raw for
 * Subject (the DN parser resolves those escapes, and `\,` must stay an escaped comma inside the
 * value), and unescaped once for every other key.
 *
 * Envoy writes URI and DNS values unquoted, and a URI may hold `;`, `,` and `=` (RFC 3986), so a
 * URI SAN such as `https://partner.example/x;Cert=…` reads as a second pair. What keeps such a
 * pair from being taken for Envoy's is the order Envoy writes an element in: By, Hash, Cert,
 * Chain, Subject, URI, DNS (conn_manager_utility.cc), with Cert, Chain and Subject always quoted.
 * A pair out of that order, or one of those three unquoted, is refused: it can only come from
 * inside an unquoted value. What remains ambiguous is a DNS pair after a URI value (it may be the
 * URI's own text): the element records that, and identity does not bind DNS names from it.
 */

export const XFCC_LIMITS = { elements: 32, pairsPerElement: 64 } as const;

export type XfccKey = 'by' | 'hash' | 'cert' | 'chain' | 'subject' | 'uri' | 'dns';
const KEYS: ReadonlySet<string> = new Set<XfccKey>(['by', 'hash', 'cert', 'chain', 'subject', 'uri', 'dns']);
/** Keys Envoy writes at most once per element. */
const SINGLE: ReadonlySet<string> = new Set<XfccKey>(['hash', 'cert', 'chain', 'subject']);
const KEY = /^[A-Za-z]+$/;
/** Envoy's order within an element; a key of lower rank after a higher one is not Envoy's. */
const RANK: Readonly<Record<XfccKey, number>> = { by: 0, hash: 1, cert: 2, chain: 3, subject: 4, uri: 5, dns: 6 };
/** Keys whose values Envoy always quotes. */
const QUOTED: ReadonlySet<string> = new Set<XfccKey>(['cert', 'chain', 'subject']);

export interface XfccElement {
  by: string[];
  hash?: string;
  /** URL-encoded PEM, as Envoy writes it. */
  cert?: string;
  chain?: string;
  /** RFC 2253 text with its escapes intact, for parseDn. */
  subject?: string;
  uri: string[];
  dns: string[];
  /**
   * A DNS pair followed a non-empty URI value: it may be text of that URI (Envoy does not quote
   * URIs), so the DNS names of this element are not evidence of the certificate's DNS SANs.
   */
  dnsAfterUri?: true;
}

export class XfccSyntaxError extends Error {}

interface Token {
  key: string;
  /** Quoted: the text between the quotes, escapes intact. Unquoted: the text. */
  raw: string;
  quoted: boolean;
}

class Scanner {
  pos = 0;
  constructor(readonly s: string) {}
  peek(): string {
    return this.s[this.pos] ?? '';
  }
  skipSpaces(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.pos++;
  }
}

function readKey(sc: Scanner): string {
  sc.skipSpaces();
  const eq = sc.s.indexOf('=', sc.pos);
  if (eq < 0) throw new XfccSyntaxError('pair without =');
  const key = sc.s.slice(sc.pos, eq).trim();
  if (!KEY.test(key)) throw new XfccSyntaxError(`invalid key ${JSON.stringify(key.slice(0, 40))}`);
  sc.pos = eq + 1;
  return key.toLowerCase();
}

function readQuoted(sc: Scanner): string {
  const start = ++sc.pos;
  for (;;) {
    const ch = sc.peek();
    if (ch === '') throw new XfccSyntaxError('unterminated quoted value');
    if (ch === '"') break;
    sc.pos += ch === '\\' ? 2 : 1;
  }
  const raw = sc.s.slice(start, sc.pos);
  sc.pos++;
  return raw;
}

function readUnquoted(sc: Scanner): string {
  const start = sc.pos;
  while (sc.pos < sc.s.length && !',;'.includes(sc.peek())) {
    if ('"\\'.includes(sc.peek())) throw new XfccSyntaxError('quote or backslash in an unquoted value');
    sc.pos++;
  }
  return sc.s.slice(start, sc.pos).trim();
}

function readPair(sc: Scanner): Token {
  const key = readKey(sc);
  const quoted = sc.peek() === '"';
  const raw = quoted ? readQuoted(sc) : readUnquoted(sc);
  sc.skipSpaces();
  const next = sc.peek();
  if (next !== '' && next !== ',' && next !== ';') throw new XfccSyntaxError('text after a quoted value');
  return { key, raw, quoted };
}

/** Inside quotes a backslash escapes the next character. */
export function unescapeQuoted(raw: string): string {
  return raw.replace(/\\(.)/gsu, '$1');
}

interface Building {
  el: XfccElement;
  /** Rank of the last known key of this element. */
  rank: number;
}

function checkOrder(b: Building, key: XfccKey, t: Token): void {
  if (RANK[key] < b.rank) throw new XfccSyntaxError(`${t.key} after a later key: not the order Envoy writes (a value's text taken for a pair?)`);
  if (QUOTED.has(key) && !t.quoted) throw new XfccSyntaxError(`unquoted ${t.key}: Envoy always quotes it`);
  if (key === 'dns' && b.el.uri.some((u) => u !== '')) b.el.dnsAfterUri = true;
  b.rank = RANK[key];
}

function addPair(b: Building, t: Token): void {
  if (!KEYS.has(t.key)) return; // a key a newer Envoy may add: not an identity
  const key = t.key as XfccKey;
  checkOrder(b, key, t);
  const el = b.el;
  const value = t.key === 'subject' || !t.quoted ? t.raw : unescapeQuoted(t.raw);
  if (SINGLE.has(key)) {
    if (el[key as 'hash'] !== undefined) throw new XfccSyntaxError(`${t.key} appears twice in one element`);
    el[key as 'hash'] = value;
  } else el[key as 'uri'].push(value);
}

function emptyElement(): XfccElement {
  return { by: [], uri: [], dns: [] };
}

/** Every element of the header, in order; throws XfccSyntaxError on anything Envoy would not write. */
export function parseXfcc(header: string): XfccElement[] {
  const sc = new Scanner(header);
  const elements: XfccElement[] = [];
  let b: Building = { el: emptyElement(), rank: 0 };
  let pairs = 0;
  for (;;) {
    addPair(b, readPair(sc));
    if (++pairs > XFCC_LIMITS.pairsPerElement) throw new XfccSyntaxError('too many pairs in one element');
    const sep = sc.peek();
    sc.pos++;
    if (sep === ';') continue;
    elements.push(b.el);
    if (sep === '') return elements;
    if (elements.length >= XFCC_LIMITS.elements) throw new XfccSyntaxError(`more than ${XFCC_LIMITS.elements} elements`);
    b = { el: emptyElement(), rank: 0 };
    pairs = 0;
  }
}
