/**
 * The runtime backstop behind the static cost bound: every comprehension iteration of a program
 * ticks a meter; past a step limit, or past a time limit (checked every few steps), evaluation
 * stops with CelBudgetError and the decision denies. The budget is per Check (CelBudget); evaluation is
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

/**
 * One Check's runtime budget: every metered evaluation of the Check draws on it, whatever asks
 * (the rules' conditions, quota keys and costs), so a policy cannot multiply the budget by
 * spreading its loops over rules and quotas. Steps add up; so do the milliseconds spent in the
 * synchronous sections that evaluated (the awaits between phases are not counted: they do not
 * hold the event loop). Once exceeded it stays exceeded for the rest of the Check.
 */
export class CelBudget {
  steps = 0;
  spentMs = 0;
  exceeded: string | undefined;
  constructor(
    readonly limits: MeterLimits = RUNTIME_LIMITS,
    readonly clock: () => number = CLOCK,
  ) {}
}

/** One synchronous section drawing on a budget; its clock starts at its first metered evaluation. */
interface Section {
  budget: CelBudget;
  started?: number;
  deadline?: number;
}

let active: Section | undefined;
let section: Section | undefined;

function tick(): void {
  const a = active;
  if (!a) return;
  const b = a.budget;
  b.steps++;
  if (b.exceeded) throw new CelBudgetError(b.exceeded);
  if (b.steps > b.limits.steps) b.exceeded = `evaluation exceeded ${b.limits.steps} steps`;
  else if (b.steps % CLOCK_EVERY === 0 && b.clock() > a.deadline!) b.exceeded = `evaluation exceeded ${b.limits.ms} ms`;
  if (b.exceeded) throw new CelBudgetError(b.exceeded);
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

function CLOCK(): number {
  return performance.now();
}

/**
 * Every metered evaluation inside fn draws on budget (default: a fresh one). The pipeline passes
 * its Check's budget to each phase that evaluates CEL. Costs nothing until a program with a
 * comprehension runs.
 */
export function sharedBudget<T>(fn: () => T, budget: CelBudget = new CelBudget()): T {
  const outer = section;
  const own: Section = { budget };
  section = own;
  try {
    return fn();
  } finally {
    if (own.started !== undefined) budget.spentMs += budget.clock() - own.started;
    section = outer;
  }
}

function start(s: Section): Section {
  if (s.started === undefined) {
    s.started = s.budget.clock();
    s.deadline = s.started + s.budget.limits.ms - s.budget.spentMs;
  }
  return s;
}

/**
 * Runs fn under a meter (the enclosing section's budget, or a fresh one with these limits). An
 * exceeded budget throws CelBudgetError even when CEL's error absorption (`exceeded || true`)
 * produced a value.
 */
export function metered<T>(fn: () => T, limits: MeterLimits = RUNTIME_LIMITS, clock: () => number = CLOCK): T {
  const outer = active;
  const a = outer ?? start(section ?? { budget: new CelBudget(limits, clock) });
  active = a;
  try {
    const v = fn();
    if (a.budget.exceeded) throw new CelBudgetError(a.budget.exceeded);
    return v;
  } catch (err) {
    const exceeded = a.budget.exceeded;
    throw exceeded && !(err instanceof CelBudgetError) ? new CelBudgetError(exceeded) : err;
  } finally {
    active = outer;
  }
}
