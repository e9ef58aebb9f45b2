/**
 * Explain time only: which part of a condition made it false. The top-level && / || / ! structure
 * is taken from the AST and each operand is evaluated on its own (compiled on demand, so the hot
 * path never pays for it): for a && b the first operand that is not true, for a || b every
 * operand. Operands inside macros are not split, since they depend on comprehension variables.
 */
import type { CelNode } from './cel-ast.js';

/** Evaluates one sub-expression (source text) against the activation of the Check. */
export type SubEvaluator = (source: string) => { value: unknown } | { error: string };

function text(source: string, n: CelNode): string {
  return source.slice(n.start, n.end).trim();
}

function describe(source: string, n: CelNode, r: { value: unknown } | { error: string }): string {
  if ('error' in r) return `${text(source, n)} failed: ${r.error}`;
  return `${text(source, n)} is ${r.value === false ? 'false' : `not a bool (${typeof r.value})`}`;
}

function isTrue(r: { value: unknown } | { error: string }): boolean {
  return 'value' in r && r.value === true;
}

function splittable(n: CelNode): boolean {
  return !n.meta.alternate && (n.op === '&&' || n.op === '||');
}

/** Why n did not evaluate to true, named by the smallest operand at fault. */
export function whyNotTrue(source: string, n: CelNode, evaluate: SubEvaluator, depth = 0): string {
  if (!splittable(n) || depth > 16) return describe(source, n, evaluate(text(source, n)));
  const [left, right] = n.args as [CelNode, CelNode];
  if (n.op === '&&') {
    const l = evaluate(text(source, left));
    if (!isTrue(l)) return splittable(left) ? whyNotTrue(source, left, evaluate, depth + 1) : describe(source, left, l);
    return whyNotTrue(source, right, evaluate, depth + 1);
  }
  return `none of the alternatives holds: ${whyNotTrue(source, left, evaluate, depth + 1)}; ${whyNotTrue(source, right, evaluate, depth + 1)}`;
}
