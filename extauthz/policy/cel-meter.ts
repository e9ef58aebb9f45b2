/**
 * The runtime backstop behind the static cost bound: every comprehension iteration of a program
 * ticks a meter; past a step limit, or past a time limit (checked every few steps), evaluation
 * stops with CelBudgetError and the decision denies. The meter is per evaluation; evaluation is
 * synchronous (no async functions are registered), so one meter is active at a time.
 *
 * The library iterates in its own loop and offers no hook; its comprehension node carries the
 * loop-continue predicate (`condition`), called before every step, which is wrapped here.
 */
import type { CelNode, ComprehensionArgs } from './cel-ast.js';

export interface MeterLimits {
  /** Comprehension iterations per evaluation. */
  steps: number;
  /** Wall-clock milliseconds per evaluation. */
  ms: number;
}

/** Steps between two clock reads. */
const CLOCK_EVERY = 64;

export class CelBudgetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CelBudgetError';
  }
}

interface Active {
  steps: number;
  limits: MeterLimits;
  deadline: number;
  exceeded?: string;
  clock: () => number;
}

let active: Active | undefined;

function tick(): void {
  const a = active;
  if (!a) return;
  a.steps++;
  if (a.exceeded) throw new CelBudgetError(a.exceeded);
  if (a.steps > a.limits.steps) a.exceeded = `evaluation exceeded ${a.limits.steps} steps`;
  else if (a.steps % CLOCK_EVERY === 0 && a.clock() > a.deadline) a.exceeded = `evaluation exceeded ${a.limits.ms} ms`;
  if (a.exceeded) throw new CelBudgetError(a.exceeded);
}

/** Wraps the continue predicate of every comprehension among nodes (cel-ast allNodes of a program). */
export function instrument(nodes: readonly CelNode[]): number {
  let loops = 0;
  for (const n of nodes) {
    if (n.op !== 'comprehension') continue;
    const c = n.args as ComprehensionArgs;
    const inner = c.condition;
    c.condition = inner ? (accu) => (tick(), inner(accu)) : () => (tick(), true);
    loops++;
  }
  return loops;
}

export const RUNTIME_LIMITS: MeterLimits = { steps: 100_000, ms: 5 };

let shared: { meter?: Active; limits: MeterLimits; clock: () => number } | undefined;

const CLOCK = performance.now.bind(performance);

/**
 * Every metered evaluation inside fn draws on one budget (a Check's authorize phase: its rules
 * together, not each rule afresh). Costs nothing until a program with a comprehension runs.
 */
export function sharedBudget<T>(fn: () => T, limits: MeterLimits = RUNTIME_LIMITS, clock: () => number = CLOCK): T {
  const outer = shared;
  shared = { limits, clock };
  try {
    return fn();
  } finally {
    shared = outer;
  }
}

function fresh(limits: MeterLimits, clock: () => number): Active {
  return { steps: 0, limits, deadline: clock() + limits.ms, clock };
}

/**
 * Runs fn under a meter (the shared one, or a fresh one). An exceeded budget throws
 * CelBudgetError even when CEL's error absorption (`exceeded || true`) produced a value.
 */
export function metered<T>(fn: () => T, limits: MeterLimits = RUNTIME_LIMITS, clock: () => number = CLOCK): T {
  const outer = active;
  const a = outer ?? (shared ? (shared.meter ??= fresh(shared.limits, shared.clock)) : fresh(limits, clock));
  active = a;
  try {
    const v = fn();
    if (a.exceeded) throw new CelBudgetError(a.exceeded);
    return v;
  } catch (err) {
    throw a.exceeded && !(err instanceof CelBudgetError) ? new CelBudgetError(a.exceeded) : err;
  } finally {
    active = outer;
  }
}
