/**
 * CEL for rule conditions and quota expressions (@marcbachmann/cel-js, see docs/adr/0001).
 * Expressions are parsed and type-checked once when a policy loads; a Check only evaluates.
 *
 * Regular expressions: the library's built-in matches() compiles a JavaScript RegExp on every
 * call, which backtracks (^(a+)+$ blocked the event loop for 36 s). Policies must not be able to
 * do that, so every matches() call is rewritten to re2Matches(), backed by the linear-time RE2
 * port re2js; its pattern must be a string literal, compiled here once, and its input is bounded.
 */
import { Environment } from '@marcbachmann/cel-js';
import { RE2JS } from 're2js';

export const MAX_REGEX_INPUT = 8192;

/** A compiled CEL program: evaluate with an activation, get a value or a thrown CelEvalError. */
export interface CelProgram {
  readonly source: string;
  evaluate(activation: Record<string, unknown>): unknown;
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

export class CelEvalError extends Error {}

interface AstNode {
  op: string;
  args: unknown;
  start: number;
  end: number;
}

const patterns = new Map<string, RE2JS>();

function re2Matches(input: string, pattern: string): boolean {
  if (input.length > MAX_REGEX_INPUT) throw new CelEvalError(`matches(): input longer than ${MAX_REGEX_INPUT} characters`);
  let re = patterns.get(pattern);
  if (!re) {
    // Only reachable for patterns registered at compile time; compiled once and kept.
    re = RE2JS.compile(pattern);
    patterns.set(pattern, re);
  }
  return re.matcher(input).find();
}

/** Variables every rule condition sees. */
export const RULE_VARIABLES = {
  request: 'map<string, dyn>',
  principal: 'map<string, dyn>',
  tenant: 'map<string, dyn>',
  params: 'map<string, string>',
  now: 'google.protobuf.Timestamp',
} as const;

function ruleEnvironment(): Environment {
  const env = new Environment({ limits: { maxAstNodes: 2000, maxDepth: 64, maxListElements: 1000, maxMapEntries: 1000, maxCallArguments: 16 } });
  for (const [name, type] of Object.entries(RULE_VARIABLES)) env.registerVariable(name, type);
  env.registerFunction('string.re2Matches(string): bool', re2Matches);
  env.registerFunction('re2Matches(string, string): bool', re2Matches);
  return env;
}

let shared: Environment | undefined;
function environment(): Environment {
  shared ??= ruleEnvironment();
  return shared;
}

function position(source: string, offset: number): { line: number; column: number } {
  const before = source.slice(0, Math.max(0, offset));
  const line = before.split('\n').length;
  const column = offset - (before.lastIndexOf('\n') + 1) + 1;
  return { line, column };
}

function compileError(source: string, err: unknown): CelCompileError {
  const e = err as { summary?: string; message?: string; range?: { start?: number }; node?: { start?: number; pos?: number } };
  const offset = e.range?.start ?? e.node?.start ?? e.node?.pos ?? 0;
  const { line, column } = position(source, offset);
  return new CelCompileError(e.summary ?? e.message?.split('\n')[0] ?? 'invalid expression', line, column);
}

function isMatchesCall(n: AstNode): boolean {
  return (n.op === 'rcall' || n.op === 'call') && Array.isArray(n.args) && n.args[0] === 'matches';
}

/** The literal pattern of a matches() call, validated and pre-compiled; anything else is an error. */
function checkMatchesCall(n: AstNode, source: string): void {
  const args = n.args as unknown[];
  const argList = (n.op === 'rcall' ? args[2] : args[1]) as AstNode[];
  const pattern = argList[argList.length - 1];
  if (!pattern || pattern.op !== 'value' || typeof pattern.args !== 'string') {
    const { line, column } = position(source, pattern?.start ?? n.start);
    throw new CelCompileError('matches() needs a string literal pattern', line, column);
  }
  compilePattern(pattern.args, source, pattern.start);
}

/** Collects matches() calls; validates and pre-compiles their literal patterns. */
function findMatchesCalls(node: unknown, source: string, out: AstNode[]): void {
  if (!node || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (const n of node) findMatchesCalls(n, source, out);
    return;
  }
  const n = node as AstNode;
  if (isMatchesCall(n)) {
    checkMatchesCall(n, source);
    out.push(n);
  }
  if (n.op !== undefined) findMatchesCalls(n.args, source, out);
}

function compilePattern(pattern: string, source: string, offset: number): void {
  if (patterns.has(pattern)) return;
  try {
    patterns.set(pattern, RE2JS.compile(pattern));
  } catch (err) {
    const { line, column } = position(source, offset);
    throw new CelCompileError(`invalid RE2 pattern: ${(err as Error).message}`, line, column);
  }
}

/** Rewrites each matches call name to re2Matches, from the end so offsets stay valid. */
function rewriteMatches(source: string, calls: AstNode[]): string {
  let out = source;
  for (const call of [...calls].sort((a, b) => b.start - a.start)) {
    const from = call.op === 'rcall' ? ((call.args as unknown[])[1] as AstNode).end : call.start;
    const idx = out.indexOf('matches', from);
    if (idx < 0) continue;
    out = out.slice(0, idx) + 're2Matches' + out.slice(idx + 'matches'.length);
  }
  return out;
}

export interface CompileOptions {
  /** Type the expression must produce: bool for conditions, string or int for quota settings. */
  expect: 'bool' | 'string' | 'int';
}

/** Parses and type-checks once; throws CelCompileError with line and column. */
export function compileCel(source: string, opts: CompileOptions = { expect: 'bool' }): CelProgram {
  const env = environment();
  let parsed: ReturnType<Environment['parse']>;
  try {
    parsed = env.parse(source);
  } catch (err) {
    throw compileError(source, err);
  }
  const checked = env.check(source);
  if (!checked.valid) throw compileError(source, checked.error);
  if (checked.type !== opts.expect && checked.type !== 'dyn') {
    throw new CelCompileError(`expression must return ${opts.expect}, not ${String(checked.type)}`, 1, 1);
  }
  const calls: AstNode[] = [];
  findMatchesCalls((parsed as unknown as { ast: unknown }).ast, source, calls);
  const program = calls.length > 0 ? env.parse(rewriteMatches(source, calls)) : parsed;
  return {
    source,
    evaluate(activation: Record<string, unknown>): unknown {
      try {
        return program(activation);
      } catch (err) {
        const e = err as { summary?: string; message?: string };
        throw new CelEvalError(e.summary ?? e.message?.split('\n')[0] ?? 'evaluation failed', { cause: err });
      }
    },
  };
}
