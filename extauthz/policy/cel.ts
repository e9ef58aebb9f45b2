/**
 * CEL for rule conditions and quota expressions (@marcbachmann/cel-js, docs/adr/0001 and 0003).
 * Compiled once when a policy loads, never on a Check:
 *   1. parse and type-check in the policy environment (declared request/principal/tenant
 *      types, so an unknown field is an error with line and column), then our checker pass
 *      (params captured by the rule's paths; fields tested with has());
 *   2. parse again in the evaluation environment, rewrite every matches() to RE2 on the AST,
 *      type-check, and wrap comprehensions with the runtime step meter;
 *   3. estimate the worst-case cost from the AST and the input limits; over MAX_EXPRESSION_COST
 *      the expression is refused with its estimate.
 */
import { allNodes, position, type CelNode } from './cel-ast.js';
import { checkScope, CelCheckError, NO_PARAMS, unknownFieldMessage, type ParamScope } from './cel-check.js';
import { CostModelError, estimateCost } from './cel-cost.js';
import { environments, objectVariableOfType, rootSizes, UNKNOWN_SIZE } from './cel-env.js';
import { whyNotTrue } from './cel-explain.js';
import { CelBudgetError, instrument, metered } from './cel-meter.js';
import { hasBuiltinMatches, RegexCompileError, RegexInputError, rewriteMatches } from './cel-regex.js';

export { MAX_REGEX_INPUT } from './cel-regex.js';
export { NO_PARAMS, type ParamScope } from './cel-check.js';
export { CelBudget, sharedBudget, RUNTIME_LIMITS, type MeterLimits } from './cel-meter.js';

/** Static cost bound of one expression (units of about 0.1 µs; docs/adr/0003). */
export const MAX_EXPRESSION_COST = 50_000;
/** Static cost bound of all expressions of one policy together: what one Check can run. */
export const MAX_POLICY_COST = 500_000;

/** A compiled CEL program: evaluate with an activation, get a value or a thrown CelEvalError. */
export interface CelProgram {
  readonly source: string;
  /** Worst-case cost estimated at compile time. */
  readonly cost: number;
  evaluate(activation: Record<string, unknown>): unknown;
  /** Explain time only: the sub-expression that kept the condition from being true. */
  explain(activation: Record<string, unknown>): string;
}

export class CelCompileError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(message);
  }
}

/** The estimate is over the budget: refused at load, with the estimate. */
export class CelCostError extends CelCompileError {
  constructor(
    readonly estimate: number,
    readonly limit: number,
  ) {
    super(`estimated cost ${estimate} exceeds the limit of ${limit} (comprehensions multiply by their range sizes; bound inputs or simplify the expression)`, 1, 1);
  }
}

export class CelEvalError extends Error {}

/** The runtime budget was exhausted: the evaluation was stopped. */
export class CelBudgetExceededError extends CelEvalError {}

export interface CompileOptions {
  /** Type the expression must produce: bool for conditions, string or int for quota settings. */
  expect: 'bool' | 'string' | 'int';
  /** Path parameters of the rule (default: none, so params.x is an error). */
  params?: ParamScope;
}

interface LibError {
  summary?: string;
  message?: string;
  code?: string;
  range?: { start?: number };
  node?: CelNode;
}

function at(source: string, message: string, offset: number): CelCompileError {
  const { line, column } = position(source, offset);
  return new CelCompileError(message, line, column);
}

/** Where the library's error points: the field name of a select, else the start of its range. */
function errorOffset(e: LibError): number {
  if (e.node?.op === '.') return e.node.pos;
  return e.range?.start ?? e.node?.start ?? 0;
}

/** Our message for an unknown field of a declared type (request, principal, tenant). */
function fieldMessage(e: LibError): string | undefined {
  const node = e.node;
  if (e.code !== 'no_such_key' || (node?.op !== '.' && node?.op !== '[]')) return undefined;
  const [recv, key] = node.args as [CelNode, string | CelNode];
  const v = objectVariableOfType(recv.checkedType?.name);
  if (!v) return undefined;
  return unknownFieldMessage(v, typeof key === 'string' ? key : String(key.args));
}

/** The library's error, with our field message when it is an unknown field of a declared type. */
function libraryError(source: string, err: unknown): CelCompileError {
  const e = err as LibError;
  return at(source, fieldMessage(e) ?? e.summary ?? e.message?.split('\n')[0] ?? 'invalid expression', errorOffset(e));
}

/** Step 1: the expression as the author wrote it, checked with declared types and our pass. */
function checkAuthored(source: string, opts: CompileOptions): void {
  let parsed: ReturnType<ReturnType<typeof environments>['policy']['parse']>;
  try {
    parsed = environments().policy.parse(source);
  } catch (err) {
    throw libraryError(source, err);
  }
  const checked = parsed.check();
  if (!checked.valid) throw libraryError(source, checked.error);
  if (checked.type !== opts.expect && checked.type !== 'dyn') {
    throw new CelCompileError(`expression must return ${opts.expect}, not ${String(checked.type)}`, 1, 1);
  }
  try {
    checkScope(parsed.ast as unknown as CelNode, opts.params ?? NO_PARAMS);
  } catch (err) {
    if (err instanceof CelCheckError) throw at(source, err.message, err.offset);
    throw err;
  }
}

type Evaluable = ((activation: Record<string, unknown>) => unknown) & { ast: CelNode; check(): { valid: boolean; error?: unknown } };

/** Step 2: the program that evaluates — RE2 for matches(), comprehensions metered. */
function buildProgram(source: string): { program: Evaluable; loops: number } {
  const program = environments().evaluation.parse(source) as unknown as Evaluable;
  const nodes = allNodes(program.ast);
  try {
    rewriteMatches(nodes, source);
  } catch (err) {
    if (err instanceof RegexCompileError) throw new CelCompileError(err.message, err.line, err.column);
    throw err;
  }
  const checked = program.check();
  if (!checked.valid) throw libraryError(source, checked.error);
  if (hasBuiltinMatches(nodes)) throw new CelCompileError('matches() could not be bound to RE2', 1, 1);
  return { program, loops: instrument(nodes) };
}

function estimate(program: Evaluable, params: ParamScope): number {
  try {
    return estimateCost(program.ast, rootSizes(params.all), UNKNOWN_SIZE).cost;
  } catch (err) {
    if (err instanceof CostModelError) throw new CelCompileError(err.message, 1, 1);
    throw err;
  }
}

function evalError(err: unknown): CelEvalError {
  if (err instanceof CelBudgetError) return new CelBudgetExceededError(err.message, { cause: err });
  const inner = (err as { cause?: unknown }).cause;
  if (inner instanceof RegexInputError) return new CelEvalError(inner.message, { cause: err });
  const e = err as LibError;
  return new CelEvalError(e.summary ?? e.message?.split('\n')[0] ?? 'evaluation failed', { cause: err });
}

/**
 * Programs are immutable, so equal (source, expected type, params) compile once: a reload of
 * thousands of policies built from a few templates reuses them. Refusals are kept too (the same
 * source is refused the same way): the store compiles each expression ahead of its object, one
 * per event-loop slice, and the object's compile then finds it here. Bounded, least recently used out.
 */
export const MAX_CACHED_PROGRAMS = 4096;
const cache = new Map<string, CelProgram | CelCompileError>();

/** Programs held by the compile cache (tests: it stays bounded). */
export function cachedPrograms(): number {
  return cache.size;
}

/** Parses, checks, rewrites and bounds once; throws CelCompileError with line and column. */
export function compileCel(source: string, opts: CompileOptions = { expect: 'bool' }): CelProgram {
  const params = opts.params ?? NO_PARAMS;
  const key = JSON.stringify([source, opts.expect, params.all, params.some]);
  const hit = cache.get(key);
  if (hit) {
    cache.delete(key);
    cache.set(key, hit);
    if (hit instanceof CelCompileError) throw hit;
    return hit;
  }
  let program: CelProgram | CelCompileError;
  try {
    program = compileUncached(source, opts);
  } catch (err) {
    if (!(err instanceof CelCompileError)) throw err;
    program = err;
  }
  cache.set(key, program);
  if (cache.size > MAX_CACHED_PROGRAMS) cache.delete(cache.keys().next().value!);
  if (program instanceof CelCompileError) throw program;
  return program;
}

function compileUncached(source: string, opts: CompileOptions): CelProgram {
  checkAuthored(source, opts);
  const { program, loops } = buildProgram(source);
  const params = opts.params ?? NO_PARAMS;
  const cost = estimate(program, params);
  if (cost > MAX_EXPRESSION_COST) throw new CelCostError(cost, MAX_EXPRESSION_COST);
  // Only programs that can loop need a meter; the rest are bounded by their size alone.
  const run = loops > 0 ? (a: Record<string, unknown>) => metered(() => program(a)) : program;
  const evaluate = (activation: Record<string, unknown>): unknown => {
    try {
      return run(activation);
    } catch (err) {
      throw evalError(err);
    }
  };
  return {
    source,
    cost,
    evaluate,
    explain: (activation) => whyNotTrue(source, program.ast, subEvaluator(activation, params)),
  };
}

function subEvaluator(activation: Record<string, unknown>, params: ParamScope): (source: string) => { value: unknown } | { error: string } {
  return (sub) => {
    try {
      return { value: compileCel(sub, { expect: 'bool', params }).evaluate(activation) };
    } catch (err) {
      return { error: (err as Error).message };
    }
  };
}
