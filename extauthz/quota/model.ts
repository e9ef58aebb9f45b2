/**
 * The quota model, compiled once at policy load: durations parsed, numbers checked, CEL for key
 * and cost compiled. A Check only looks these up. Bad values raise QuotaConfigError with the
 * field that is wrong; the policy compiler turns it into a PolicyError with the full path.
 */
import { compileCel, CelCompileError, CelCostError, NO_PARAMS, type CelProgram, type ParamScope } from '../policy/cel.js';
import type { PrincipalType, RuleQuota, TenantQuota } from '../policy/model.js';
import { parseDuration } from './duration.js';

export type Algorithm = 'token-bucket' | 'fixed-window' | 'sliding-window';
export type KeyKind = 'tenant' | 'principal' | 'principalType';

export interface CompiledQuota {
  name: string;
  /** Units admitted per period (token bucket: refill per period). */
  limit: number;
  periodMs: number;
  algorithm: Algorithm;
  /** Token-bucket capacity (defaults to limit); equals limit for the window algorithms. */
  capacity: number;
  key: KeyKind | CelProgram;
  cost: number | CelProgram;
  /** Documented default: deny (fail closed). */
  onBackendError: 'deny' | 'allow';
  appliesTo: ReadonlySet<PrincipalType>;
}

/** A rule's quota entry: inline (its own counter) or a reference to the principal's tenant quota. */
export type RuleQuotaRef =
  | { kind: 'inline'; quota: CompiledQuota }
  | { kind: 'tenant'; name: string; cost?: number | CelProgram };

export class QuotaConfigError extends Error {
  constructor(
    message: string,
    /** Field below the quota entry, e.g. "per" or "cost". */
    readonly field: string,
    readonly cel?: { line: number; column: number },
    /** The expression's estimated cost is over the budget (POLICY_CEL_COST). */
    readonly overBudget = false,
  ) {
    super(message);
    this.name = 'QuotaConfigError';
  }
}

const KEY_KINDS: ReadonlySet<string> = new Set(['tenant', 'principal', 'principalType']);
const ALGORITHMS: ReadonlySet<string> = new Set(['token-bucket', 'fixed-window', 'sliding-window']);
const MAX_UNITS = 1_000_000_000_000;

function positiveInt(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_UNITS) {
    throw new QuotaConfigError(`${field} must be an integer between 1 and ${MAX_UNITS}, got ${JSON.stringify(v)}`, field);
  }
  return v;
}

function cel(source: string, field: string, expect: 'string' | 'int', params: ParamScope): CelProgram {
  try {
    return compileCel(source, { expect, params });
  } catch (err) {
    if (err instanceof CelCompileError) throw new QuotaConfigError(`${field}: ${err.message}`, field, { line: err.line, column: err.column }, err instanceof CelCostError);
    throw err;
  }
}

function compileKey(key: string | undefined, params: ParamScope): KeyKind | CelProgram {
  if (key === undefined) return 'principal';
  if (KEY_KINDS.has(key)) return key as KeyKind;
  return cel(key, 'key', 'string', params);
}

/** params: the path parameters of the rule the expression belongs to (a tenant quota: none). */
export function compileCost(cost: number | string | undefined, params: ParamScope = NO_PARAMS): number | CelProgram {
  if (cost === undefined) return 1;
  if (typeof cost === 'number') return positiveInt(cost, 'cost');
  return cel(cost, 'cost', 'int', params);
}

function compileAlgorithm(q: RuleQuota | TenantQuota): Algorithm {
  const algorithm = q.algorithm ?? 'token-bucket';
  if (!ALGORITHMS.has(algorithm)) throw new QuotaConfigError(`unknown algorithm "${String(algorithm)}"`, 'algorithm');
  if (q.burst !== undefined && algorithm !== 'token-bucket') throw new QuotaConfigError('burst applies only to the token-bucket algorithm', 'burst');
  return algorithm;
}

function periodOf(per: string): number {
  try {
    return parseDuration(per);
  } catch (err) {
    throw new QuotaConfigError((err as Error).message, 'per');
  }
}

/** A complete quota: a tenant's, or a rule's inline one. */
export function compileQuota(q: TenantQuota | RuleQuota, params: ParamScope = NO_PARAMS): CompiledQuota {
  if (q.limit === undefined || q.per === undefined) throw new QuotaConfigError('limit and per go together', q.limit === undefined ? 'limit' : 'per');
  const limit = positiveInt(q.limit, 'limit');
  const algorithm = compileAlgorithm(q);
  const capacity = q.burst !== undefined ? positiveInt(q.burst, 'burst') : limit;
  const onBackendError = q.onBackendError ?? 'deny';
  if (onBackendError !== 'deny' && onBackendError !== 'allow') throw new QuotaConfigError('onBackendError must be deny or allow', 'onBackendError');
  return {
    name: q.name,
    limit,
    periodMs: periodOf(q.per),
    algorithm,
    capacity,
    key: compileKey(q.key, params),
    cost: compileCost(q.cost, params),
    onBackendError,
    appliesTo: new Set((q as TenantQuota).appliesTo ?? []),
  };
}

const REF_FIELDS = ['algorithm', 'burst', 'key', 'onBackendError'] as const;

/** A rule entry: limit+per make it inline; a bare name (optionally with cost) refers to the tenant's quota. */
export function compileRuleQuota(q: RuleQuota, params: ParamScope = NO_PARAMS): RuleQuotaRef {
  if (q.limit !== undefined || q.per !== undefined) return { kind: 'inline', quota: compileQuota(q, params) };
  const extra = REF_FIELDS.find((f) => q[f] !== undefined);
  if (extra) throw new QuotaConfigError(`${extra} needs limit and per; a reference to the tenant quota "${q.name}" may only set cost`, extra);
  return { kind: 'tenant', name: q.name, ...(q.cost !== undefined ? { cost: compileCost(q.cost, params) } : {}) };
}

/** Every quota of a tenant, by name; throws for the first bad one with its index. */
export function compileTenantQuotas(quotas: readonly TenantQuota[]): ReadonlyMap<string, CompiledQuota> {
  const out = new Map<string, CompiledQuota>();
  quotas.forEach((q, i) => {
    try {
      if (out.has(q.name)) throw new QuotaConfigError(`duplicate quota name "${q.name}"`, 'name');
      out.set(q.name, compileQuota(q));
    } catch (err) {
      throw indexed(err, i);
    }
  });
  return out;
}

/** Compiles a rule's entries; throws for the first bad one with its index. */
export function compileRuleQuotas(quotas: readonly RuleQuota[], params: ParamScope = NO_PARAMS): RuleQuotaRef[] {
  const names = new Set<string>();
  return quotas.map((q, i) => {
    try {
      if (names.has(q.name)) throw new QuotaConfigError(`duplicate quota name "${q.name}"`, 'name');
      names.add(q.name);
      return compileRuleQuota(q, params);
    } catch (err) {
      throw indexed(err, i);
    }
  });
}

/** The same error, with the entry index in front of the field (quotas/2/per). */
export class IndexedQuotaError extends QuotaConfigError {
  constructor(
    readonly index: number,
    inner: QuotaConfigError,
  ) {
    super(inner.message, inner.field, inner.cel, inner.overBudget);
    this.name = 'IndexedQuotaError';
  }
  /** JSON pointer relative to the owner of the list: quotas/<i>/<field>. */
  get pointer(): string {
    return `quotas/${this.index}/${this.field}`;
  }
}

function indexed(err: unknown, i: number): unknown {
  return err instanceof QuotaConfigError ? new IndexedQuotaError(i, err) : err;
}

/**
 * Compiles the CEL key and cost expressions of quotas ahead of the object that holds them, one
 * yield after each (the store's sliced reload): the object's own compile then takes them from the
 * program cache (cel.ts), refusals included. Errors are the object compile's to report.
 */
export function* warmQuotaExpressions(quotas: readonly (RuleQuota | TenantQuota)[], params: ParamScope = NO_PARAMS): Generator<void, void, void> {
  for (const q of quotas) {
    if (typeof q.key === 'string' && !KEY_KINDS.has(q.key)) yield* warm(q.key, 'string', params);
    if (typeof q.cost === 'string') yield* warm(q.cost, 'int', params);
  }
}

/** One expression compiled into the cache, whatever the outcome; then a yield. */
export function* warm(source: string, expect: 'bool' | 'string' | 'int', params: ParamScope): Generator<void, void, void> {
  try {
    compileCel(source, { expect, params });
  } catch {
    // Refused: cached as such, and reported by the object's compile.
  }
  yield;
}
