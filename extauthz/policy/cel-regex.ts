/**
 * matches() on RE2, decided on the parsed expression. The library's built-in matches() builds a
 * backtracking JavaScript RegExp (^(a+)+$ on 31 characters blocked the event loop for 36 s), so
 * no policy may reach it: every matches call in the AST that will evaluate — method or function
 * form, inside macros, after comments or line breaks — has its literal pattern compiled with
 * re2js (linear time) and is re-pointed at an RE2 method that exists only in the evaluation
 * environment. Policies are checked in an environment without that method or its pattern type,
 * so they cannot call it; each compiled pattern belongs to its program (no shared cache).
 */
import { RE2JS } from 're2js';
import { callParts, position, type CelNode } from './cel-ast.js';
import { regexSizeBound } from './regex-size.js';

/** Longest input matches() scans; longer is an evaluation error (the rule fails closed). */
export const MAX_REGEX_INPUT = 1024;
/** Largest compiled RE2 program accepted (instructions); the cost estimate scales with it. */
export const MAX_REGEX_PROGRAM = 1000;
/** Longest pattern accepted: compile work grows with the text before any program exists. */
export const MAX_REGEX_PATTERN = 1024;

export const RE2_TYPE = 'portcullis.internal.Re2';
export const RE2_METHOD = 'portcullisRe2Matches';

export class RegexCompileError extends Error {
  constructor(
    message: string,
    readonly line: number,
    readonly column: number,
  ) {
    super(message);
  }
}

export class RegexInputError extends Error {}

/** A pattern compiled at load; the evaluation environment knows it as RE2_TYPE. */
export class CompiledPattern {
  constructor(
    readonly source: string,
    readonly re: RE2JS,
    /** RE2 program size (instructions): the per-character work bound used by the cost estimate. */
    readonly programSize: number,
  ) {}
}

export function re2Matches(input: string, p: CompiledPattern): boolean {
  if (input.length > MAX_REGEX_INPUT) throw new RegexInputError(`matches(): input longer than ${MAX_REGEX_INPUT} characters`);
  return p.re.matcher(input).find();
}

function fail(source: string, offset: number, message: string): RegexCompileError {
  const { line, column } = position(source, offset);
  return new RegexCompileError(message, line, column);
}

/**
 * Why re2js must not compile a pattern (its compile alone would hold the event loop), or
 * undefined. Every RE2 pattern a policy holds goes through this first (CEL matches(), body schemas).
 */
export function regexCompileWorkProblem(pattern: string, maxProgram: number = MAX_REGEX_PROGRAM): string | undefined {
  if (pattern.length > MAX_REGEX_PATTERN) return `RE2 pattern longer than ${MAX_REGEX_PATTERN} characters`;
  const bound = regexSizeBound(pattern);
  if (bound <= maxProgram) return undefined;
  return `RE2 pattern may compile to about ${bound} instructions, more than ${maxProgram}: simplify it (repeat counts multiply; a Unicode class counts as 50)`;
}

function checkCompileWork(pattern: string, source: string, offset: number): void {
  const problem = regexCompileWorkProblem(pattern);
  if (problem) throw fail(source, offset, problem);
}

function compilePattern(pattern: string, source: string, offset: number): CompiledPattern {
  checkCompileWork(pattern, source, offset);
  let re: RE2JS;
  try {
    re = RE2JS.compile(pattern);
  } catch (err) {
    throw fail(source, offset, `invalid RE2 pattern: ${(err as Error).message}`);
  }
  const size = re.programSize();
  if (size > MAX_REGEX_PROGRAM) throw fail(source, offset, `RE2 pattern compiles to ${size} instructions, more than ${MAX_REGEX_PROGRAM}: simplify it (large repeat counts multiply)`);
  return new CompiledPattern(pattern, re, size);
}

export function isMatchesCall(n: CelNode): boolean {
  return callParts(n)?.name === 'matches';
}

/** The pattern argument of a matches call: the last argument in both call forms. */
function patternNode(n: CelNode): CelNode | undefined {
  const parts = callParts(n)!;
  return parts.args[parts.args.length - 1];
}

/**
 * Compiles every matches() pattern of the expression (nodes: all of its AST, cel-ast allNodes) and
 * rewrites the calls in place to the RE2 method, so the AST that evaluates has no path to the
 * library's RegExp-based matches().
 */
export function rewriteMatches(nodes: readonly CelNode[], source: string): CompiledPattern[] {
  const out: CompiledPattern[] = [];
  for (const n of nodes) {
    if (!isMatchesCall(n)) continue;
    const pattern = patternNode(n);
    if (n.op !== 'rcall') throw fail(source, n.start, 'matches() must be called as a method: text.matches(\'pattern\')');
    if (!pattern || pattern.op !== 'value' || typeof pattern.args !== 'string') {
      throw fail(source, pattern?.start ?? n.start, 'matches() needs a string literal pattern');
    }
    const compiled = compilePattern(pattern.args, source, pattern.start);
    (n.args as unknown[])[0] = RE2_METHOD;
    pattern.args = compiled;
    out.push(compiled);
  }
  return out;
}

/** After rewriting: true when no call to the library's matches() is left anywhere in the AST. */
export function hasBuiltinMatches(nodes: readonly CelNode[]): boolean {
  return nodes.some(isMatchesCall);
}
