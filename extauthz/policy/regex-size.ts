/**
 * A bound on the work of compiling an RE2 pattern, computed before re2js sees it. re2js expands
 * counted repetitions and Unicode classes while it compiles, and refuses an oversized program only
 * afterwards: `(a{1,1000})(b{1,1000})(c{1,1000})` took 40–280 ms to compile before being refused,
 * and a policy of a hundred such rules held the event loop for seconds on every reload. This
 * scan over-approximates the program that pattern compiles to (atoms, with counted repetitions
 * multiplying what they repeat, groups included, and a Unicode class weighted by what it costs to
 * build), so anything it passes compiles in a few milliseconds. It decides nothing about what a
 * pattern matches: RE2 still parses and compiles every pattern that passes (linear matching is
 * RE2's guarantee, decided on its own parse).
 */

/** Weight of a Unicode class (`\pL`, `\p{Greek}`): re2js builds its range table each time. */
const UNICODE_CLASS = 50;
const REPEAT = /^\{(\d{1,4})(,(\d{0,4}))?\}/;
const FLAGS = /^\(\?[A-Za-z-]*\)/;

interface Frame {
  size: number;
  /** Size of the last atom or group, which a following repetition multiplies. */
  last: number;
  /** The last token was a repetition: a `?` now only makes it non-greedy. */
  repeated?: boolean;
}

/** Length of the escape at i (a backslash) and its weight. */
function escape(p: string, i: number): [number, number] {
  const next = p[i + 1];
  if (next === 'p' || next === 'P') {
    if (p[i + 2] !== '{') return [3, UNICODE_CLASS];
    const close = p.indexOf('}', i + 3);
    return [close < 0 ? p.length - i : close - i + 1, UNICODE_CLASS];
  }
  if (next === 'Q') {
    const end = p.indexOf('\\E', i + 2);
    const text = end < 0 ? p.length - i - 2 : end - i - 2;
    return [end < 0 ? p.length - i : end - i + 2, Math.max(1, text)];
  }
  return [2, 1];
}

/** Length of the character class at i (an opening bracket) and its weight. */
function charClass(p: string, i: number): [number, number] {
  let j = i + 1;
  if (p[j] === '^') j++;
  if (p[j] === ']') j++;
  let weight = 1;
  while (j < p.length && p[j] !== ']') {
    if (p[j] === '\\') {
      const [len, w] = escape(p, j);
      j += len;
      weight += w === UNICODE_CLASS ? w : 0;
    } else if (p.startsWith('[:', j)) {
      const close = p.indexOf(':]', j + 2);
      j = close < 0 ? p.length : close + 2;
    } else j++;
  }
  return [j - i + 1, weight];
}

/** The repetition `{n}`, `{n,}` or `{n,m}` at i: its length and the copies it makes; undefined: a literal brace. */
function repeat(p: string, i: number): [number, number] | undefined {
  const m = REPEAT.exec(p.slice(i, i + 12));
  if (!m) return undefined;
  const min = Number(m[1]);
  const max = m[2] === undefined ? min : m[3] === '' ? min + 1 : Math.max(min, Number(m[3]));
  return [m[0].length, Math.max(1, max)];
}

/** An atom of `weight`; a repetition copies its `instructions` (a class's table is built once). */
function atom(f: Frame, weight: number, instructions = weight): void {
  f.size += weight;
  f.last = instructions;
  f.repeated = false;
}

/** `*`, `+`, `?`: a branch and an empty match around what they apply to; `?` after one: non-greedy. */
function quantifier(f: Frame, ch: string): void {
  if (ch === '?' && f.repeated) {
    f.size += 1;
    f.repeated = false;
    return;
  }
  f.size += 2;
  f.last += 2;
  f.repeated = true;
}

/** Repeats the frame's last atom or group: each copy is what it repeats plus a branch and an empty match. */
function repetition(f: Frame, copies: number): void {
  const repeated = (f.last + 2) * copies + 2;
  f.size += repeated - f.last;
  f.last = repeated;
  f.repeated = true;
}

/** Groups and flags at i (an opening or closing parenthesis); returns the length consumed, 0 when neither. */
function group(stack: Frame[], p: string, i: number): number {
  const f = stack[stack.length - 1]!;
  const flags = FLAGS.exec(p.slice(i, i + 12));
  if (flags) {
    // (?i) alone changes flags and is no atom: a repetition after it repeats what came before.
    f.repeated = false;
    return flags[0].length;
  }
  if (p[i] === '(') {
    stack.push({ size: 2, last: 0 }); // a capture is two instructions
    return 1;
  }
  if (p[i] !== ')' || stack.length === 1) return 0;
  stack.pop();
  atom(stack[stack.length - 1]!, f.size);
  return 1;
}

/** One token at i; returns its length. */
function token(stack: Frame[], p: string, i: number): number {
  const f = stack[stack.length - 1]!;
  const ch = p[i]!;
  if (ch === '\\' || ch === '[') {
    const [len, weight] = ch === '\\' ? escape(p, i) : charClass(p, i);
    // \Q…\E is a literal of `weight` instructions; a class or a Unicode class is one.
    atom(f, weight, ch === '\\' && p[i + 1] === 'Q' ? weight : 1);
    return len;
  }
  const g = group(stack, p, i);
  if (g > 0) return g;
  const r = ch === '{' ? repeat(p, i) : undefined;
  if (r) {
    repetition(f, r[1]);
    return r[0];
  }
  if ('*+?'.includes(ch)) quantifier(f, ch);
  else atom(f, ch === '|' ? 2 : 1);
  return 1;
}

/** An upper estimate of the RE2 program a pattern compiles to (instructions, Unicode classes weighted). */
export function regexSizeBound(p: string): number {
  const stack: Frame[] = [{ size: 0, last: 0 }];
  for (let i = 0; i < p.length; ) i += token(stack, p, i);
  // The whole-match capture and the final match instruction; unclosed groups (RE2 refuses them) count too.
  return 3 + stack.reduce((t, f) => t + f.size, 0);
}
