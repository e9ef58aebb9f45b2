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
 */

export const XFCC_LIMITS = { elements: 32, pairsPerElement: 64 } as const;

export type XfccKey = 'by' | 'hash' | 'cert' | 'chain' | 'subject' | 'uri' | 'dns';
const KEYS: ReadonlySet<string> = new Set<XfccKey>(['by', 'hash', 'cert', 'chain', 'subject', 'uri', 'dns']);
/** Keys Envoy writes at most once per element. */
const SINGLE: ReadonlySet<string> = new Set<XfccKey>(['hash', 'cert', 'chain', 'subject']);
const KEY = /^[A-Za-z]+$/;

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

function addPair(el: XfccElement, t: Token): void {
  if (!KEYS.has(t.key)) return; // a key a newer Envoy may add: not an identity
  const value = t.key === 'subject' || !t.quoted ? t.raw : unescapeQuoted(t.raw);
  const key = t.key as XfccKey;
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
  let el = emptyElement();
  let pairs = 0;
  for (;;) {
    addPair(el, readPair(sc));
    if (++pairs > XFCC_LIMITS.pairsPerElement) throw new XfccSyntaxError('too many pairs in one element');
    const sep = sc.peek();
    sc.pos++;
    if (sep === ';') continue;
    elements.push(el);
    if (sep === '') return elements;
    if (elements.length >= XFCC_LIMITS.elements) throw new XfccSyntaxError(`more than ${XFCC_LIMITS.elements} elements`);
    el = emptyElement();
    pairs = 0;
  }
}
