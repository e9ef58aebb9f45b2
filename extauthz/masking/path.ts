/**
 * The JSONPath subset masking directives address fields with, parsed once at policy load:
 *   $            the document
 *   .name        an object member ([A-Za-z0-9_$-]; other names use ['name'] or ["name"])
 *   [n]          an array element (0-based)
 *   [*] or .*    every element of an array or every member value of an object
 *   ..name       the member `name` at any depth (recursive descent)
 * No filters, slices or script expressions: a path is a list of steps evaluated in one walk.
 */

export type PathStep =
  | { kind: 'key'; name: string }
  | { kind: 'index'; index: number }
  | { kind: 'wild' }
  | { kind: 'descend'; name: string };

export interface CompiledPath {
  /** The source text, for explain output and audit. */
  readonly source: string;
  readonly steps: readonly PathStep[];
}

export class MaskPathError extends Error {
  constructor(
    readonly source: string,
    message: string,
    readonly offset: number,
  ) {
    super(`invalid field path "${source}" at character ${offset + 1}: ${message}`);
    this.name = 'MaskPathError';
  }
}

const NAME = /[A-Za-z0-9_$-]+/y;
const INDEX = /\d{1,9}/y;
const MAX_STEPS = 64;

class Cursor {
  pos = 0;
  constructor(readonly text: string) {}
  fail(message: string): never {
    throw new MaskPathError(this.text, message, this.pos);
  }
  eat(s: string): boolean {
    if (!this.text.startsWith(s, this.pos)) return false;
    this.pos += s.length;
    return true;
  }
  match(re: RegExp): string | undefined {
    re.lastIndex = this.pos;
    const m = re.exec(this.text);
    if (!m) return undefined;
    this.pos += m[0].length;
    return m[0];
  }
  get done(): boolean {
    return this.pos >= this.text.length;
  }
}

function quoted(c: Cursor): string {
  const quote = c.text[c.pos];
  if (quote !== "'" && quote !== '"') return c.fail('expected a quoted member name');
  c.pos++;
  let out = '';
  while (!c.done && c.text[c.pos] !== quote) {
    if (c.text[c.pos] === '\\') c.pos++;
    if (c.done) break;
    out += c.text[c.pos];
    c.pos++;
  }
  if (!c.eat(quote)) c.fail('unterminated quoted name');
  if (out === '') c.fail('empty member name');
  return out;
}

function bracket(c: Cursor): PathStep {
  let step: PathStep;
  if (c.eat('*')) step = { kind: 'wild' };
  else {
    const digits = c.match(INDEX);
    step = digits !== undefined ? { kind: 'index', index: Number(digits) } : { kind: 'key', name: quoted(c) };
  }
  if (!c.eat(']')) c.fail('expected ]');
  return step;
}

function descend(c: Cursor): PathStep {
  const name = c.eat('[') ? bracket(c) : { kind: 'key' as const, name: c.match(NAME) ?? c.fail('expected a member name after ..') };
  if (name.kind !== 'key') c.fail('recursive descent takes a member name');
  return { kind: 'descend', name: name.name };
}

function step(c: Cursor): PathStep {
  if (c.eat('..')) return descend(c);
  if (c.eat('.')) {
    if (c.eat('*')) return { kind: 'wild' };
    return { kind: 'key', name: c.match(NAME) ?? c.fail('expected a member name') };
  }
  if (c.eat('[')) return bracket(c);
  return c.fail('expected ., .. or [');
}

/** Parses a field path; throws MaskPathError with the offending position. */
export function parsePath(source: string): CompiledPath {
  const c = new Cursor(source);
  if (!c.eat('$')) c.fail('a path starts with $');
  const steps: PathStep[] = [];
  while (!c.done) {
    steps.push(step(c));
    if (steps.length > MAX_STEPS) c.fail(`more than ${MAX_STEPS} steps`);
  }
  if (steps.length === 0) c.fail('the whole document cannot be a field; name one');
  return { source, steps };
}

/** A place in the document: the container and the member name or array index. */
export interface Location {
  parent: Record<string, unknown> | unknown[];
  key: string | number;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function children(v: unknown): Location[] {
  if (Array.isArray(v)) return v.map((_, i) => ({ parent: v, key: i }));
  if (isObject(v)) return Object.keys(v).map((k) => ({ parent: v, key: k }));
  return [];
}

function valueAt(l: Location): unknown {
  return (l.parent as Record<string | number, unknown>)[l.key];
}

/** Every member called `name` below `v`, outer before inner. Iterative: deep documents cannot overflow the stack. */
function descendants(v: unknown, name: string, out: Location[]): void {
  const stack: unknown[] = [v];
  while (stack.length > 0) {
    const node = stack.pop();
    if (typeof node !== 'object' || node === null) continue;
    const kids = Array.isArray(node) ? node : Object.values(node);
    if (!Array.isArray(node) && Object.hasOwn(node, name)) out.push({ parent: node as Record<string, unknown>, key: name });
    // Only containers go on the stack: scalars cannot hold the member.
    for (let i = kids.length - 1; i >= 0; i--) if (typeof kids[i] === 'object' && kids[i] !== null) stack.push(kids[i]);
  }
}

function advance(v: unknown, s: PathStep, out: Location[]): void {
  switch (s.kind) {
    case 'key':
      if (isObject(v) && Object.hasOwn(v, s.name)) out.push({ parent: v, key: s.name });
      return;
    case 'index':
      if (Array.isArray(v) && s.index < v.length) out.push({ parent: v, key: s.index });
      return;
    case 'wild':
      out.push(...children(v));
      return;
    case 'descend':
      descendants(v, s.name, out);
  }
}

/** Every location the path selects in `doc`; missing members select nothing. */
export function select(doc: unknown, path: CompiledPath): Location[] {
  let current: Location[] = [];
  let values: unknown[] = [doc];
  for (const s of path.steps) {
    current = [];
    for (const v of values) advance(v, s, current);
    values = current.map(valueAt);
  }
  return current;
}

/** The same selection with concrete keys from the root, for the allow-list projection. */
export function selectKeys(doc: unknown, path: CompiledPath): (string | number)[][] {
  let current: { value: unknown; keys: (string | number)[] }[] = [{ value: doc, keys: [] }];
  for (const s of path.steps) {
    const next: typeof current = [];
    for (const c of current) stepWithKeys(c, s, next);
    current = next;
  }
  return current.map((c) => c.keys);
}

function stepWithKeys(c: { value: unknown; keys: (string | number)[] }, s: PathStep, next: { value: unknown; keys: (string | number)[] }[]): void {
  if (s.kind === 'descend') return descendantsWithKeys(c.value, s.name, c.keys, next);
  const out: Location[] = [];
  advance(c.value, s, out);
  for (const l of out) next.push({ value: valueAt(l), keys: [...c.keys, l.key] });
}

function descendantsWithKeys(v: unknown, name: string, prefix: (string | number)[], out: { value: unknown; keys: (string | number)[] }[]): void {
  const stack: { value: unknown; keys: (string | number)[] }[] = [{ value: v, keys: prefix }];
  while (stack.length > 0) {
    const node = stack.pop()!;
    if (isObject(node.value) && Object.hasOwn(node.value, name)) out.push({ value: node.value[name], keys: [...node.keys, name] });
    const kids = children(node.value);
    for (let i = kids.length - 1; i >= 0; i--) stack.push({ value: valueAt(kids[i]!), keys: [...node.keys, kids[i]!.key] });
  }
}
