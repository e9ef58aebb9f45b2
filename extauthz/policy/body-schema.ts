/**
 * Request body schemas (a rule's request.body): JSON Schema draft 2020-12, compiled once when the
 * policy loads with ajv's 2020 dialect in strict mode. Schemas come from tenant namespaces, so
 * before ajv sees one it is bounded here: serialized size, nesting depth, and the size of the
 * schema with every $ref expanded (which also refuses recursive $refs, the only way a finite
 * schema makes validation work grow faster than the body). $ref and $dynamicRef must be local,
 * $id is refused (nothing is registered or fetched), `pattern` runs on RE2 (linear time), and
 * `format` is one of a few formats checked without backtracking regexes.
 */
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { RE2JS } from 're2js';
import { regexCompileWorkProblem } from './cel-regex.js';

/** Largest RE2 program a body schema's pattern may compile to (docs/controls.md). */
const MAX_REGEX_PROGRAM = 2000;

export const BODY_SCHEMA_LIMITS = {
  /** Serialized schema (JSON) bytes. */
  bytes: 64 * 1024,
  /** Nesting of schema objects and arrays. */
  depth: 32,
  /** Schema objects with every $ref expanded. */
  expandedNodes: 1000,
  /** uniqueItems compares every pair of items: only with maxItems at most this. */
  uniqueItemsMax: 1000,
  /** Longest pointer reported (characters). */
  pointerChars: 512,
  /** Worst-case work of one body's validation at maxBodyBytes (workFor), ~tens of ms on one core. */
  work: 2_000_000,
} as const;

const DIALECT = 'https://json-schema.org/draft/2020-12/schema';
const REF_KEYS = ['$ref', '$dynamicRef'];

export class BodySchemaError extends Error {
  /** JSON pointer inside the schema where the problem is ('' for the whole schema). */
  constructor(
    message: string,
    readonly pointer: string,
  ) {
    super(message);
    this.name = 'BodySchemaError';
  }
}

/** Where a body failed its schema, safe to show: no value, and no property name the schema does not declare. */
export interface BodyFailure {
  pointer: string;
  keyword: string;
  message: string;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function escapePointer(s: string): string {
  return s.replace(/~/g, '~0').replace(/\//g, '~1');
}

function unescapePointer(s: string): string {
  return s.replace(/~1/g, '/').replace(/~0/g, '~');
}

// ---- pre-checks, before ajv --------------------------------------------------------------------

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIME = /^(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/i;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const EMAIL_LOCAL = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$/;
const DNS_LABEL = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

function validDate(s: string): boolean {
  const m = DATE.exec(s);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const days = new Date(Date.UTC(y, mo, 0)).getUTCDate();
  return mo >= 1 && mo <= 12 && d >= 1 && d <= days;
}

function validDateTime(s: string): boolean {
  if (s.length > 40) return false;
  const t = s.search(/[Tt ]/);
  if (t !== 10 || !validDate(s.slice(0, 10))) return false;
  const m = TIME.exec(s.slice(11));
  return m !== null && Number(m[1]) < 24 && Number(m[2]) < 60 && Number(m[3]) < 61;
}

function validEmail(s: string): boolean {
  if (s.length > 254) return false;
  const at = s.lastIndexOf('@');
  if (at < 1) return false;
  const domain = s.slice(at + 1).split('.');
  return EMAIL_LOCAL.test(s.slice(0, at)) && domain.length >= 2 && domain.every((l) => DNS_LABEL.test(l));
}

/** The formats a body schema may name, each a bounded check (anchored, no nested quantifiers). */
export const SAFE_FORMATS: Readonly<Record<string, (s: string) => boolean>> = {
  date: validDate,
  'date-time': validDateTime,
  uuid: (s) => UUID.test(s),
  ipv4: (s) => s.length <= 15 && IPV4.test(s),
  email: validEmail,
};

/**
 * What validating one body can cost, counted when the schema compiles, so the worst case for a
 * given body size is known before any request (workFor): ajv's work is one step per (schema
 * node, body value) pair, and RE2's is program size × characters scanned.
 */
export interface SchemaCost {
  /** Nodes that apply to at most one value of the body. */
  single: number;
  /** Nodes below items, additionalProperties, patternProperties, contains...: to every value. */
  many: number;
  /** maxItems of every uniqueItems (its pairwise comparisons are bounded by maxItems × body values). */
  unique: number;
  /** Patterns: RE2 program size, the maxLength beside them, and whether they apply to many values. */
  patterns: { program: number; maxLength: number | undefined; many: boolean }[];
}

interface Walk {
  root: Json;
  expanded: number;
  /** Property names the schema declares (properties, required, dependentRequired): safe to report. */
  names: Set<string>;
  cost: SchemaCost;
}

function resolveLocal(root: Json, ref: string): unknown {
  if (!ref.startsWith('#')) return undefined;
  if (ref === '#') return root;
  if (!ref.startsWith('#/')) return anchorTarget(root, ref.slice(1));
  let node: unknown = root;
  for (const raw of ref.slice(2).split('/')) {
    const key = unescapePointer(decodeURIComponent(raw));
    node = isObject(node) ? node[key] : Array.isArray(node) ? node[Number(key)] : undefined;
  }
  return node;
}

function anchorTarget(node: unknown, anchor: string, depth = 0): unknown {
  if (depth > BODY_SCHEMA_LIMITS.depth || typeof node !== 'object' || node === null) return undefined;
  if (isObject(node) && (node.$anchor === anchor || node.$dynamicAnchor === anchor)) return node;
  for (const v of Object.values(node)) {
    const hit = anchorTarget(v, anchor, depth + 1);
    if (hit !== undefined) return hit;
  }
  return undefined;
}

function checkIdentity(node: Json, at: string): void {
  if ('$id' in node) throw new BodySchemaError('$id is not allowed: body schemas are self-contained (local $ref only)', `${at}/$id`);
  if ('$schema' in node && (at !== '' || node.$schema !== DIALECT)) throw new BodySchemaError(`$schema may only be ${DIALECT}, at the top`, `${at}/$schema`);
}

function checkRefs(node: Json, at: string): void {
  for (const k of REF_KEYS) {
    const ref = node[k];
    if (ref !== undefined && (typeof ref !== 'string' || !ref.startsWith('#'))) throw new BodySchemaError(`${k} must be a local reference (#/...): remote schemas are never fetched`, `${at}/${k}`);
  }
}

function checkCostly(node: Json, at: string): void {
  if (node.format !== undefined && (typeof node.format !== 'string' || !(node.format in SAFE_FORMATS))) {
    throw new BodySchemaError(`format must be one of ${Object.keys(SAFE_FORMATS).join(', ')}`, `${at}/format`);
  }
  if (node.uniqueItems === true && !(typeof node.maxItems === 'number' && node.maxItems <= BODY_SCHEMA_LIMITS.uniqueItemsMax)) {
    throw new BodySchemaError(`uniqueItems needs maxItems of at most ${BODY_SCHEMA_LIMITS.uniqueItemsMax} beside it (it compares every pair of items)`, `${at}/uniqueItems`);
  }
}

function checkKeywords(node: Json, at: string): void {
  checkIdentity(node, at);
  checkRefs(node, at);
  checkCostly(node, at);
}

function collectNames(node: Json, names: Set<string>): void {
  if (isObject(node.properties)) for (const k of Object.keys(node.properties)) names.add(k);
  if (Array.isArray(node.required)) for (const k of node.required) if (typeof k === 'string') names.add(k);
}

/** Where the walk is: the schema pointer, the nesting depth, and the $refs followed to get here. */
interface At {
  at: string;
  depth: number;
  refs: readonly string[];
  /** Below an applicator that applies its schema to every member or element. */
  many: boolean;
  /** False inside $defs (counted only where a $ref applies it). */
  applied: boolean;
}

/** Keywords whose subschema applies to every element or member (the others apply in place, or to one member). */
const MANY_KEYWORDS = new Set(['items', 'prefixItems', 'additionalItems', 'contains', 'unevaluatedItems', 'additionalProperties', 'patternProperties', 'unevaluatedProperties', 'propertyNames']);
const DEFS_KEYWORDS = new Set(['$defs', 'definitions']);

function below(p: At, key: string, keyword?: string): At {
  return { at: `${p.at}/${key}`, depth: p.depth + 1, refs: p.refs, many: p.many || (keyword !== undefined && MANY_KEYWORDS.has(keyword)), applied: p.applied && !(keyword !== undefined && DEFS_KEYWORDS.has(keyword)) };
}

function countCost(w: Walk, node: Json, p: At): void {
  if (!p.applied) return;
  if (p.many) w.cost.many++;
  else w.cost.single++;
  if (node.uniqueItems === true && typeof node.maxItems === 'number') w.cost.unique += node.maxItems;
  const maxLength = typeof node.maxLength === 'number' ? node.maxLength : undefined;
  if (typeof node.pattern === 'string') w.cost.patterns.push({ program: re2Size(node.pattern), maxLength, many: p.many });
  if (isObject(node.patternProperties)) for (const k of Object.keys(node.patternProperties)) w.cost.patterns.push({ program: re2Size(k), maxLength: undefined, many: true });
}

/** RE2 program size of a pattern (0 when it does not compile: ajv refuses it with the reason). */
function re2Size(pattern: string): number {
  // Too costly to compile: ajv's engine refuses it below, with the reason.
  if (regexCompileWorkProblem(pattern, MAX_REGEX_PROGRAM) !== undefined) return 0;
  try {
    return RE2JS.compile(pattern).programSize();
  } catch {
    return 0;
  }
}

/** Keywords whose values are data, not schemas. */
const DATA_KEYWORDS = new Set(['enum', 'const', 'examples', 'default']);

/**
 * Walks the schema with $refs followed, counting nodes; a $ref reached again on its own path is
 * recursion (refused), and the count bounds what one body value can be validated against.
 */
function expand(w: Walk, node: unknown, p: At): void {
  if (p.depth > BODY_SCHEMA_LIMITS.depth) throw new BodySchemaError(`the schema is nested deeper than ${BODY_SCHEMA_LIMITS.depth} levels`, p.at);
  if (Array.isArray(node)) return node.forEach((v, i) => expand(w, v, below(p, String(i))));
  if (!isObject(node)) return;
  if (++w.expanded > BODY_SCHEMA_LIMITS.expandedNodes) throw new BodySchemaError(`the schema expands to more than ${BODY_SCHEMA_LIMITS.expandedNodes} nodes with its $refs followed`, p.at);
  checkKeywords(node, p.at);
  collectNames(node, w.names);
  countCost(w, node, p);
  for (const [k, v] of Object.entries(node)) {
    if (REF_KEYS.includes(k)) followRef(w, v as string, below(p, k));
    else if (!DATA_KEYWORDS.has(k)) expand(w, v, below(p, escapePointer(k), k));
  }
}

function followRef(w: Walk, ref: string, p: At): void {
  if (p.refs.includes(ref)) throw new BodySchemaError(`recursive $ref ${ref} is not allowed (a body schema must be finite)`, p.at);
  const target = resolveLocal(w.root, ref);
  if (target === undefined) throw new BodySchemaError(`$ref ${ref} does not resolve inside the schema`, p.at);
  // Below a $ref, problems are reported where the target is written.
  expand(w, target, { at: ref.startsWith('#/') ? ref.slice(1) : p.at, depth: p.depth, refs: [...p.refs, ref], many: p.many, applied: p.applied });
}

// ---- ajv -------------------------------------------------------------------------------------

/** ajv's pattern engine, on RE2: compiled when the schema compiles, linear-time when it runs. */
function re2Engine(pattern: string): { test: (s: string) => boolean; toString: () => string } {
  const costly = regexCompileWorkProblem(pattern, MAX_REGEX_PROGRAM);
  if (costly) throw new Error(`pattern ${JSON.stringify(pattern.slice(0, 64))}: ${costly}`);
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern);
  } catch (err) {
    throw new Error(`pattern ${JSON.stringify(pattern.slice(0, 64))} is not a valid RE2 expression: ${(err as Error).message}`, { cause: err });
  }
  if (re.programSize() > MAX_REGEX_PROGRAM) throw new Error(`pattern compiles to ${re.programSize()} RE2 instructions, more than ${MAX_REGEX_PROGRAM}`);
  // ajv caches compiled patterns under toString(): it must differ per pattern.
  return { test: (s: string) => re.matcher(s).find(), toString: () => `re2:${pattern}` };
}
re2Engine.code = 'portcullis re2';

let shared: Ajv2020 | undefined;

/** One ajv for every body schema: no schema has an $id, and each is removed from ajv's cache once compiled. */
function ajv(): Ajv2020 {
  shared ??= new Ajv2020({
    strict: true,
    allowUnionTypes: true,
    allErrors: false,
    validateFormats: true,
    formats: SAFE_FORMATS,
    addUsedSchema: false,
    inlineRefs: true,
    code: { regExp: re2Engine as never, optimize: true },
  });
  return shared;
}

export class CompiledBodySchema {
  constructor(
    private readonly fn: ValidateFunction,
    private readonly names: ReadonlySet<string>,
    /** What validation can cost, for the work bound against maxBodyBytes (request-checks.ts). */
    readonly cost: SchemaCost,
  ) {}

  /** Undefined when the value satisfies the schema; else the first failure, safe to report. */
  validate(value: unknown): BodyFailure | undefined {
    let ok: boolean;
    try {
      ok = this.fn(value) as boolean;
    } catch {
      // A body nested deep enough to exhaust the stack: not valid input (fail closed).
      return { pointer: '', keyword: 'depth', message: 'nested too deeply to validate' };
    }
    if (ok) return undefined;
    const e = this.fn.errors?.[0];
    return e ? this.failure(e) : { pointer: '', keyword: 'schema', message: 'does not satisfy the schema' };
  }

  /** The instance pointer with every name the schema does not declare replaced by *. */
  private failure(e: ErrorObject): BodyFailure {
    const parts = e.instancePath === '' ? [] : e.instancePath.slice(1).split('/');
    const safe = parts.map((p) => (/^(0|[1-9][0-9]{0,8})$/.test(p) || this.names.has(unescapePointer(p)) ? p : '*'));
    const missing = e.keyword === 'required' ? (e.params as { missingProperty?: string }).missingProperty : undefined;
    if (missing !== undefined) safe.push(escapePointer(missing));
    let pointer = safe.length === 0 ? '' : `/${safe.join('/')}`;
    if (pointer.length > BODY_SCHEMA_LIMITS.pointerChars) pointer = pointer.slice(0, BODY_SCHEMA_LIMITS.pointerChars);
    return { pointer, keyword: e.keyword, message: describe(e) };
  }
}

/** What failed, from the schema's side only (ajv's messages quote schema values, never data). */
function describe(e: ErrorObject): string {
  if (e.keyword === 'required') return 'a required property is missing';
  if (e.keyword === 'additionalProperties' || e.keyword === 'unevaluatedProperties') return 'has a property the schema does not allow';
  if (e.keyword === 'propertyNames') return 'has a property name the schema does not allow';
  return `${e.keyword}: ${e.message ?? 'does not satisfy the schema'}`;
}

/** Compiles a body schema, or throws BodySchemaError naming where in the schema the problem is. */
export function compileBodySchema(schema: unknown): CompiledBodySchema {
  if (!isObject(schema)) throw new BodySchemaError('a body schema must be an object', '');
  const text = JSON.stringify(schema);
  if (Buffer.byteLength(text) > BODY_SCHEMA_LIMITS.bytes) throw new BodySchemaError(`the schema is larger than ${BODY_SCHEMA_LIMITS.bytes} bytes`, '');
  // A private copy: ajv keeps references into the schema it compiled, and the spec object is shared.
  const own = JSON.parse(text) as Json;
  const walk: Walk = { root: own, expanded: 0, names: new Set(), cost: { single: 0, many: 0, unique: 0, patterns: [] } };
  expand(walk, own, { at: '', depth: 0, refs: [], many: false, applied: true });
  const a = ajv();
  if (!a.validateSchema(own)) {
    const e = a.errors?.[0];
    throw new BodySchemaError(`not a valid draft 2020-12 schema: ${e?.message ?? 'invalid'}`, e?.instancePath ?? '');
  }
  let fn: ValidateFunction;
  try {
    fn = a.compile(own);
  } catch (err) {
    throw new BodySchemaError(`does not compile: ${(err as Error).message}`, '');
  } finally {
    a.removeSchema(own);
  }
  return new CompiledBodySchema(fn, walk.names, walk.cost);
}

/** RE2 steps cost about this many ajv steps (measured: re2js runs a Pike VM, no DFA). */
const RE2_STEP_WEIGHT = 4;

/**
 * The worst-case work (ajv steps) of validating a body of at most maxBodyBytes: a JSON body of B
 * bytes holds at most B/2 + 1 values, and its strings at most B characters together.
 */
export function workFor(cost: SchemaCost, maxBodyBytes: number): number {
  const values = Math.floor(maxBodyBytes / 2) + 1;
  let work = cost.single + (cost.many + cost.unique) * values;
  for (const p of cost.patterns) {
    const chars = Math.min(maxBodyBytes, (p.many ? values : 1) * (p.maxLength ?? maxBodyBytes));
    work += RE2_STEP_WEIGHT * p.program * chars;
  }
  return work;
}
