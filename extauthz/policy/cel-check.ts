/**
 * Our checker pass over the type-checked AST, for what the library's checker cannot know:
 * which path parameters a rule captures (`params.x` must be captured by every path of the rule;
 * `has(params.x)` by at least one), and fields tested with has(), which the library does not
 * check. Names bound by comprehensions and cel.bind shadow the variables they hide.
 */
import { callParts, children, type CelNode, type ComprehensionArgs } from './cel-ast.js';
import { CEL_SCHEMA, fieldNames, type ObjectVariable } from './cel-env.js';

/** The path parameters a rule's templates capture. */
export interface ParamScope {
  /** Captured by every path template (params.x is always set). */
  all: readonly string[];
  /** Captured by at least one (has(params.x) can be true). */
  some: readonly string[];
  /** The templates, for messages. */
  paths: readonly string[];
}

export const NO_PARAMS: ParamScope = { all: [], some: [], paths: [] };

export class CelCheckError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

/** Levenshtein distance ≤ 2 among candidates, closest first: the "did you mean" hint. */
export function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: { c: string; d: number } | undefined;
  for (const c of candidates) {
    const d = distance(name.toLowerCase(), c.toLowerCase());
    if (d <= 2 && (!best || d < best.d)) best = { c, d };
  }
  return best?.c;
}

function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

function hint(name: string, candidates: readonly string[]): string {
  const c = closest(name, candidates);
  return c ? `; did you mean "${c}"?` : '';
}

export function unknownFieldMessage(v: ObjectVariable, field: string): string {
  return `${v} has no field "${field}"${hint(field, fieldNames(v))} (fields: ${fieldNames(v).join(', ')})`;
}

function paramsMessage(name: string, scope: ParamScope, inHas: boolean): string {
  const where = scope.paths.length ? `paths ${scope.paths.join(', ')}` : 'no paths';
  if (inHas) return `has(params.${name}): no path of this rule captures {${name}} (${where})${hint(name, scope.some)}`;
  const some = scope.some.includes(name) ? `; not every path captures it — test has(params.${name}) first, or split the rule` : hint(name, scope.all);
  return `params.${name}: {${name}} is not captured by every path of this rule (${where})${some}`;
}

/** The root variable and field a select or literal index names, e.g. params.id or params['id']. */
function selected(n: CelNode): { root: string; field: string; at: number } | undefined {
  const a = n.args as [CelNode, unknown];
  if (n.op !== '.' && n.op !== '[]') return undefined;
  const recv = a[0];
  if (recv?.op !== 'id') return undefined;
  const key = n.op === '.' ? a[1] : (a[1] as CelNode).op === 'value' ? (a[1] as CelNode).args : undefined;
  return typeof key === 'string' ? { root: recv.args as string, field: key, at: n.pos } : undefined;
}

/** The select that has(x.f) tests, when n is a has() call. */
function testedByHas(n: CelNode): CelNode | undefined {
  if (!n.meta.macro || callParts(n)?.name !== 'has') return undefined;
  return n.meta.macro.args?.[0];
}

class Pass {
  private readonly shadow: string[] = [];

  constructor(private readonly scope: ParamScope) {}

  visit(n: CelNode): void {
    if (n.op === 'comprehension') return this.comprehension(n.args as ComprehensionArgs);
    const macro = n.meta.macro;
    if (macro?.var && macro.val && macro.exp) return this.bind(macro.var, macro.val, macro.exp);
    const tested = testedByHas(n);
    // has(x.f) tests x.f: the select itself follows has() rules, its receiver the usual ones.
    this.select(tested ?? n, tested !== undefined);
    for (const c of children(tested ?? n)) this.visit(c);
  }

  private comprehension(c: ComprehensionArgs): void {
    this.visit(c.iterable);
    this.visit(c.init);
    this.bound(c.iterVarName, c.step);
  }

  private bind(name: string, value: CelNode, body: CelNode): void {
    this.visit(value);
    this.bound(name, body);
  }

  private bound(name: string, body: CelNode): void {
    this.shadow.push(name);
    try {
      this.visit(body);
    } finally {
      this.shadow.pop();
    }
  }

  private select(n: CelNode, inHas: boolean): void {
    const s = selected(n);
    if (!s || this.shadow.includes(s.root)) return;
    if (s.root === 'params') {
      const ok = inHas ? this.scope.some.includes(s.field) : this.scope.all.includes(s.field);
      if (!ok) throw new CelCheckError(paramsMessage(s.field, this.scope, inHas), s.at);
      return;
    }
    const v = s.root as ObjectVariable;
    if (inHas && v in CEL_SCHEMA && !(s.field in CEL_SCHEMA[v].fields)) throw new CelCheckError(unknownFieldMessage(v, s.field), s.at);
  }
}

/** Throws CelCheckError for the first parameter or has() field the rule cannot provide. */
export function checkScope(root: CelNode, scope: ParamScope): void {
  new Pass(scope).visit(root);
}
