/**
 * The parsed CEL expression as @marcbachmann/cel-js 8.0.0 builds it, seen by our own passes
 * (field checks, RE2 rewrite, cost estimate, step meter, explain). The library's public types
 * describe `op`, `args`, `start`, `end`; macro expansions (all/exists/map/filter/has/cel.bind)
 * hang off `meta`, which the library exposes but does not type. The version is pinned exactly;
 * the RE2 and meter tests (cel-typed.test.ts) fail if this shape changes.
 */

export interface CelNode {
  op: string;
  args: unknown;
  pos: number;
  start: number;
  end: number;
  checkedType?: { name: string; kind: string; type?: string };
  readonly meta: { alternate?: CelNode; macro?: MacroInfo };
}

/** has(): args[0] is the select; cel.bind(): var, val, exp. */
export interface MacroInfo {
  args?: CelNode[];
  var?: string;
  val?: CelNode;
  exp?: CelNode;
}

/** A comprehension (the expansion of all/exists/exists_one/map/filter). */
export interface ComprehensionArgs {
  kind?: string;
  iterable: CelNode;
  iterVarName: string;
  init: CelNode;
  step: CelNode;
  condition?: (accu: unknown) => boolean;
}

export function isNode(v: unknown): v is CelNode {
  return typeof v === 'object' && v !== null && typeof (v as { op?: unknown }).op === 'string' && 'meta' in v;
}

/** The node that evaluates in place of this one (a macro call's expansion), or the node itself. */
export function effective(n: CelNode): CelNode {
  return n.meta.alternate ?? n;
}

/** Immediate child nodes, in evaluation order, including macro expansions and comprehension parts. */
export function children(n: CelNode): CelNode[] {
  const out: CelNode[] = [];
  const add = (v: unknown): void => {
    if (isNode(v)) out.push(v);
    else if (Array.isArray(v)) v.forEach(add);
  };
  if (n.meta.alternate) return [n.meta.alternate];
  if (n.op === 'comprehension') {
    const c = n.args as ComprehensionArgs;
    return [c.iterable, c.init, c.step];
  }
  const m = n.meta.macro;
  if (m) {
    add(m.args);
    add(m.val);
    add(m.exp);
    return out;
  }
  add(n.args);
  return out;
}

/** Every node reachable from root (each once), macro expansions included. */
export function allNodes(root: CelNode): CelNode[] {
  const seen = new Set<CelNode>();
  const stack = [root];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    // Both the call as written and its expansion: they share nodes, and a rewrite must reach all.
    stack.push(...children(n));
    if (n.meta.alternate) addWritten(n, stack);
  }
  return [...seen];
}

function addWritten(n: CelNode, stack: CelNode[]): void {
  const add = (v: unknown): void => {
    if (isNode(v)) stack.push(v);
    else if (Array.isArray(v)) v.forEach(add);
  };
  add(n.args);
}

export function position(source: string, offset: number): { line: number; column: number } {
  const before = source.slice(0, Math.max(0, Math.min(offset, source.length)));
  const line = before.split('\n').length;
  const column = before.length - (before.lastIndexOf('\n') + 1) + 1;
  return { line, column };
}

/** A call's method or function name, receiver (rcall only) and argument nodes. */
export function callParts(n: CelNode): { name: string; receiver?: CelNode; args: CelNode[] } | undefined {
  if (n.op !== 'call' && n.op !== 'rcall') return undefined;
  const a = n.args as unknown[];
  if (n.op === 'rcall') return { name: a[0] as string, receiver: a[1] as CelNode, args: a[2] as CelNode[] };
  return { name: a[0] as string, args: a[1] as CelNode[] };
}
