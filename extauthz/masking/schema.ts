/**
 * Checks a mask path against the JSON Schema of the responses it masks (a rule's
 * responseSchema), so a path that can never select anything — a typo, the wrong case, the wrong
 * nesting — is an error when the policy loads instead of a field sent in clear.
 *
 * The walk follows the path's steps (path.ts) through the schema: properties, patternProperties
 * and additionalProperties for members, items/prefixItems for array elements, every member or
 * element for wildcards, and every reachable property of that name for recursive descent. Local
 * $ref (#/$defs/…, #/definitions/…) and allOf/anyOf/oneOf are followed. A part of the schema
 * that does not constrain its shape (no type, or additionalProperties left open) admits any path
 * below it: the check refuses only what the schema rules out.
 */
import type { CompiledPath, PathStep } from './path.js';

type Schema = Record<string, unknown>;

/** A schema position, or ANY: the schema says nothing about what is below. */
type Node = Schema | typeof ANY;
const ANY = Symbol('any');
const MAX_NODES = 10_000;

export class SchemaPathError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SchemaPathError';
  }
}

function isSchema(v: unknown): v is Schema {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function resolveRef(root: Schema, ref: string): Schema | undefined {
  if (!ref.startsWith('#')) return undefined;
  let node: unknown = root;
  for (const raw of ref.slice(1).split('/').filter(Boolean)) {
    const key = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    node = isSchema(node) ? node[key] : undefined;
  }
  return isSchema(node) ? node : undefined;
}

/** The schema with $ref and allOf/anyOf/oneOf expanded into the plain schemas they stand for. */
function expand(root: Schema, s: unknown, out: Node[], budget: { n: number }): void {
  if (++budget.n > MAX_NODES) throw new SchemaPathError(`the schema expands to more than ${MAX_NODES} nodes`);
  if (s === true || s === undefined) return void out.push(ANY);
  if (!isSchema(s)) return;
  if (typeof s.$ref === 'string') {
    const target = resolveRef(root, s.$ref);
    if (!target) throw new SchemaPathError(`$ref ${s.$ref} does not resolve (only local references are read)`);
    return expand(root, target, out, budget);
  }
  const combos = ['allOf', 'anyOf', 'oneOf'].flatMap((k) => (Array.isArray(s[k]) ? (s[k] as unknown[]) : []));
  // A pure combinator wrapper says nothing itself: only its branches count.
  if (combos.length === 0 || !unconstrained(s)) out.push(s);
  for (const c of combos) expand(root, c, out, budget);
}

function types(s: Schema): Set<string> | undefined {
  if (typeof s.type === 'string') return new Set([s.type]);
  if (Array.isArray(s.type)) return new Set(s.type.map(String));
  return undefined;
}

/** A schema that only says "object" or only "array" and nothing structural is open below that type. */
function admits(s: Schema, type: 'object' | 'array'): boolean {
  const t = types(s);
  if (t) return t.has(type);
  return type === 'object' ? s.properties !== undefined || s.patternProperties !== undefined || s.additionalProperties !== undefined : s.items !== undefined || s.prefixItems !== undefined;
}

/** Schemas with no structural keyword at all (only combinators, descriptions…): they constrain nothing. */
function unconstrained(s: Schema): boolean {
  return types(s) === undefined && !['properties', 'patternProperties', 'additionalProperties', 'items', 'prefixItems', 'enum', 'const'].some((k) => k in s);
}

function memberSchemas(s: Schema, name: string): unknown[] {
  const props = isSchema(s.properties) ? s.properties : {};
  if (Object.hasOwn(props, name)) return [props[name]];
  const patterns = isSchema(s.patternProperties) ? Object.entries(s.patternProperties) : [];
  const matched = patterns.filter(([re]) => safeTest(re, name)).map(([, v]) => v);
  if (matched.length > 0) return matched;
  return extraMembers(s);
}

/**
 * Members the schema does not list. Unlike validation, a listed `properties` closes the object
 * for this check unless additionalProperties says otherwise: the point is to catch a misspelt
 * member, and a schema that lists the members of a response describes them all.
 */
function extraMembers(s: Schema): unknown[] {
  if (s.additionalProperties === false) return [];
  if (s.additionalProperties !== undefined) return [s.additionalProperties];
  return s.properties === undefined && s.patternProperties === undefined ? [true] : [];
}

function safeTest(pattern: string, name: string): boolean {
  try {
    return new RegExp(pattern, 'u').test(name);
  } catch {
    return true; // a pattern we cannot read does not rule the member out
  }
}

function allMembers(s: Schema): unknown[] {
  const props = isSchema(s.properties) ? Object.values(s.properties) : [];
  const patterns = isSchema(s.patternProperties) ? Object.values(s.patternProperties) : [];
  return [...props, ...patterns, ...extraMembers(s)];
}

function elementSchemas(s: Schema, index?: number): unknown[] {
  const tuple = Array.isArray(s.prefixItems) ? (s.prefixItems as unknown[]) : Array.isArray(s.items) ? (s.items as unknown[]) : undefined;
  const rest = Array.isArray(s.items) ? s.additionalItems : s.items;
  if (tuple && index !== undefined) return index < tuple.length ? [tuple[index]] : rest === false ? [] : [rest ?? true];
  return [...(tuple ?? []), ...(rest === false ? [] : [rest ?? true])];
}

function childSchemas(s: Schema, step: Exclude<PathStep, { kind: 'descend' }>): unknown[] {
  if (unconstrained(s)) return [true];
  switch (step.kind) {
    case 'key':
      return admits(s, 'object') ? memberSchemas(s, step.name) : [];
    case 'index':
      return admits(s, 'array') ? elementSchemas(s, step.index) : [];
    case 'wild':
      return [...(admits(s, 'object') ? allMembers(s) : []), ...(admits(s, 'array') ? elementSchemas(s) : [])];
  }
}

/** Every schema reachable below `nodes` (members and elements, at any depth), for recursive descent. */
function descendantsNamed(root: Schema, nodes: Node[], name: string, budget: { n: number }): Node[] {
  const out: Node[] = [];
  const seen = new Set<Schema>();
  const stack = [...nodes];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (n === ANY) return [ANY];
    if (seen.has(n)) continue;
    seen.add(n);
    if (visitForDescent(root, n, name, { out, stack, budget })) return [ANY];
  }
  return out;
}

/** One schema of a recursive descent: collects its member `name`, queues its children; true when it is open (anything may be below). */
function visitForDescent(root: Schema, n: Schema, name: string, acc: { out: Node[]; stack: Node[]; budget: { n: number } }): boolean {
  if (unconstrained(n)) return true;
  const object = admits(n, 'object');
  if (object && isSchema(n.properties) && Object.hasOwn(n.properties, name)) expand(root, n.properties[name], acc.out, acc.budget);
  if (object && extraMembers(n).some((x) => x === true)) return true;
  for (const c of [...(object ? allMembers(n) : []), ...(admits(n, 'array') ? elementSchemas(n) : [])]) expand(root, c, acc.stack, acc.budget);
  return false;
}

function children(root: Schema, nodes: Schema[], step: Exclude<PathStep, { kind: 'descend' }>, budget: { n: number }): Node[] {
  const next: Node[] = [];
  for (const n of nodes) for (const c of childSchemas(n, step)) expand(root, c, next, budget);
  return next;
}

function near(nodes: Node[], name: string): string | undefined {
  const lower = name.toLowerCase();
  for (const n of nodes) {
    if (n === ANY || !isSchema(n.properties)) continue;
    const hit = Object.keys(n.properties).find((k) => k.toLowerCase() === lower || k.replace(/[_-]/g, '').toLowerCase() === lower.replace(/[_-]/g, ''));
    if (hit) return hit;
  }
  return undefined;
}

function describe(step: PathStep): string {
  switch (step.kind) {
    case 'key':
      return `member "${step.name}"`;
    case 'descend':
      return `member "${step.name}" at any depth`;
    case 'index':
      return `element [${step.index}]`;
    case 'wild':
      return 'any member or element';
  }
}

function stepText(step: PathStep): string {
  switch (step.kind) {
    case 'key':
      return `.${step.name}`;
    case 'descend':
      return `..${step.name}`;
    case 'index':
      return `[${step.index}]`;
    case 'wild':
      return '[*]';
  }
}

/** Throws SchemaPathError when no document the schema allows has a value at `path`. */
export function checkPathAgainstSchema(path: CompiledPath, schema: Schema): void {
  const budget = { n: 0 };
  let nodes: Node[] = [];
  expand(schema, schema, nodes, budget);
  for (const [i, step] of path.steps.entries()) {
    if (nodes.includes(ANY)) return;
    const next = step.kind === 'descend' ? descendantsNamed(schema, nodes, step.name, budget) : children(schema, nodes as Schema[], step, budget);
    if (next.length === 0) {
      const hint = step.kind === 'key' || step.kind === 'descend' ? near(nodes, step.name) : undefined;
      const at = i === 0 ? 'the document' : `$${path.steps.slice(0, i).map(stepText).join('')}`;
      throw new SchemaPathError(`"${path.source}" selects nothing in responseSchema: ${at} has no ${describe(step)}${hint ? ` (did you mean "${hint}"?)` : ''}`);
    }
    nodes = next;
  }
}
