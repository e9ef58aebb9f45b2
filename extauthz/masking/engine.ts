/**
 * A compiled set of masking directives and its application to a JSON document: first the
 * allow-list projection (minimisation: everything not listed is dropped), then each mask in
 * order. Paths and actions are compiled once; applying walks the document once per directive,
 * transforming values where the walk finds them (walk.ts), and skips a directive whose first
 * member name the document's root does not have.
 */
import type { MaskDirective } from '../policy/model.js';
import { createSecretKey, type KeyObject } from 'node:crypto';
import { compileAction, MaskActionError, REMOVE, type Transform } from './actions.js';
import { MaskPathError, parsePath, selectKeys, type CompiledPath } from './path.js';
import { applyMaskCounted, setOwn } from './walk.js';

/** The directive set as it travels (policy source, signed header): plain data. */
export interface MaskSpec {
  masks: MaskDirective[];
  /** Minimisation by allow-list; absent means every field is kept. */
  allowFields?: string[];
}

/** A directive that does not compile; pointer is relative to the set (mask/2/field). */
export class MaskCompileError extends Error {
  constructor(
    readonly pointer: string,
    message: string,
    options?: { cause?: unknown; code?: 'POLICY_INVALID' | 'POLICY_MASK_PATH' },
  ) {
    super(message, options);
    this.name = 'MaskCompileError';
    this.code = options?.code ?? 'POLICY_INVALID';
  }
  readonly code: 'POLICY_INVALID' | 'POLICY_MASK_PATH';
}

export interface MaskOptions {
  /** Key of the hash action (HMAC-SHA-256); without one, a hash directive fails at apply time. */
  hashKey?: Buffer;
}

interface CompiledMask {
  directive: MaskDirective;
  path: CompiledPath;
  action: MaskDirective['action'];
  transform: Transform;
}

/** The result of masking a document, with the masks that matched nothing in it. */
export interface MaskReport {
  doc: unknown;
  unmatched: MaskDirective[];
}

/** Keeps only the given directive fields, in a fixed order, so equal sets serialise equally. */
export function normalizeDirective(d: MaskDirective): MaskDirective {
  const out: MaskDirective = { field: d.field, action: d.action };
  if (d.replacement !== undefined) out.replacement = d.replacement;
  if (d.keepFirst !== undefined) out.keepFirst = d.keepFirst;
  if (d.keepLast !== undefined) out.keepLast = d.keepLast;
  if (d.to !== undefined) out.to = d.to;
  if (d.bucketSize !== undefined) out.bucketSize = d.bucketSize;
  if (d.prefixLength !== undefined) out.prefixLength = d.prefixLength;
  // record is the default: left out, so directives (and their signed tokens) stay as they were.
  if (d.onUnmatched === 'deny') out.onUnmatched = 'deny';
  return out;
}

function compileOne(d: MaskDirective, i: number, hashKey: () => KeyObject): CompiledMask {
  let path: CompiledPath;
  try {
    path = parsePath(d.field);
  } catch (err) {
    throw new MaskCompileError(`mask/${i}/field`, (err as Error).message, { cause: err });
  }
  try {
    return { directive: d, path, action: d.action, transform: compileAction(d, hashKey) };
  } catch (err) {
    throw new MaskCompileError(`mask/${i}/action`, (err as Error).message, { cause: err });
  }
}

function compileAllow(fields: string[]): CompiledPath[] {
  return fields.map((f, i) => {
    try {
      return parsePath(f);
    } catch (err) {
      throw new MaskCompileError(`allowFields/${i}`, (err as MaskPathError).message, { cause: err });
    }
  });
}

type KeepTree = Map<string | number, KeepTree | true>;

function keepTree(doc: unknown, paths: readonly CompiledPath[]): KeepTree {
  const root: KeepTree = new Map();
  for (const p of paths) for (const keys of selectKeys(doc, p)) keep(root, keys);
  return root;
}

/** Marks one selected location as kept; a kept ancestor already keeps everything below it. */
function keep(root: KeepTree, keys: (string | number)[]): void {
  let node = root;
  for (const [i, k] of keys.entries()) {
    const existing = node.get(k);
    if (existing === true) return;
    if (i === keys.length - 1) node.set(k, true);
    else node = existing ?? (node.set(k, new Map()), node.get(k) as KeepTree);
  }
}

function project(v: unknown, tree: KeepTree): unknown {
  if (Array.isArray(v)) {
    const out: unknown[] = [];
    v.forEach((x, i) => {
      const t = tree.get(i);
      if (t !== undefined) out.push(t === true ? x : project(x, t));
    });
    return out;
  }
  const out: Record<string, unknown> = {};
  if (typeof v !== 'object' || v === null) return out;
  for (const [k, x] of Object.entries(v)) {
    const t = tree.get(k);
    if (t !== undefined) setOwn(out, k, t === true ? x : project(x, t));
  }
  return out;
}

/** A compiled directive set. */
export class MaskSet {
  private readonly masks: CompiledMask[];
  private readonly allow?: CompiledPath[];
  readonly spec: MaskSpec;

  constructor(spec: MaskSpec, options: MaskOptions = {}) {
    // The HMAC key object is made once per set, not re-imported for every hashed value.
    let keyObject: KeyObject | undefined;
    const key = (): KeyObject => {
      if (!options.hashKey) throw new MaskActionError('the hash action needs a key from configuration (--mask-hash-key-file)');
      return (keyObject ??= createSecretKey(options.hashKey));
    };
    this.spec = { masks: spec.masks.map(normalizeDirective), ...(spec.allowFields ? { allowFields: [...spec.allowFields] } : {}) };
    this.masks = this.spec.masks.map((d, i) => compileOne(d, i, key));
    if (spec.allowFields) this.allow = compileAllow(spec.allowFields);
  }

  /** True when applying the set changes nothing (no masks, no allow-list). */
  get empty(): boolean {
    return this.masks.length === 0 && this.allow === undefined;
  }

  /** One line per directive, e.g. "$.records[*].taxId partial", for audit and explain. */
  get summary(): string[] {
    const out = this.spec.masks.map((m) => `${m.field} ${m.action}`);
    if (this.spec.allowFields) out.push(`allowFields ${this.spec.allowFields.join(',')}`);
    return out;
  }

  /**
   * Masks a parsed JSON document and returns the result. The input may be modified in place
   * (clone it first if you still need the original).
   */
  apply(doc: unknown): unknown {
    return this.applyWithReport(doc).doc;
  }

  /** apply(), and the masks that selected no value in this document (for audit, metrics and onUnmatched). */
  applyWithReport(doc: unknown): MaskReport {
    let out = this.allow ? project(doc, keepTree(doc, this.allow)) : doc;
    const unmatched: MaskDirective[] = [];
    for (const m of this.masks) {
      const first = m.path.steps[0]!;
      // A root member the document does not have: nothing below it can match.
      if (first.kind === 'key' && !(typeof out === 'object' && out !== null && !Array.isArray(out) && Object.hasOwn(out, first.name))) {
        unmatched.push(m.directive);
        continue;
      }
      const r = applyMaskCounted(out, m.path.steps, m.transform);
      out = r.doc;
      if (r.hits === 0) unmatched.push(m.directive);
    }
    if (out === REMOVE) out = null;
    return { doc: out, unmatched };
  }

  /** Parses, masks and serialises a JSON text (UTF-8). Throws SyntaxError on invalid JSON. */
  applyText(text: string): string {
    return JSON.stringify(this.apply(JSON.parse(text)));
  }
}

/** Compiles a directive set; throws MaskCompileError naming the directive that is wrong. */
export function compileMaskSet(spec: MaskSpec, options: MaskOptions = {}): MaskSet {
  return new MaskSet(spec, options);
}
