/**
 * The policy compiler: validated sources in, an immutable snapshot out. Everything a Check needs
 * is prepared here (CEL programs, path matchers, host index, tenant directories), so the request
 * path only looks things up and evaluates. The operator imports this module to validate
 * policies with exactly the engine that will run them.
 */
import { PolicyError } from '../errors.js';
import { compileCel, CelCompileError, CelCostError, MAX_POLICY_COST, type CelProgram, type ParamScope } from './cel.js';
import { compilePathTemplate, PathTemplateError, type PathTemplate } from './paths.js';
import { objectKey, type ApiPolicyObject, type ApiPolicyRule, type ApiPolicySpec, type Origin, type PrincipalType } from './model.js';
import { TenantDirectory } from './tenants.js';
import { referenceProblems, unreachableRules } from './checks.js';
import { compileRuleQuotas, IndexedQuotaError, warm, warmQuotaExpressions, type RuleQuotaRef } from '../quota/model.js';
import { compilePolicyMasking, type RuleMasking } from '../masking/policy.js';
import { compileRequest, RequestSpecError, type CompiledRequest } from './request-checks.js';
import { BodySchemaError } from './body-schema.js';
import { compileLifecycle, LifecycleSpecError, type CompiledLifecycle } from './lifecycle.js';

export interface CompiledRule {
  name: string;
  index: number;
  effect: 'allow' | 'deny';
  methods?: ReadonlySet<string>;
  paths?: readonly PathTemplate[];
  types?: ReadonlySet<PrincipalType>;
  tenants?: ReadonlySet<string>;
  anonymous: boolean;
  requireMfa: boolean;
  /** A shadow rule: only the policy's shadow view evaluates it (never decides). */
  shadow: boolean;
  /** The request must declare a purpose of use its tenant lists (PURPOSE_REQUIRED otherwise). */
  requirePurpose: boolean;
  /** The path parameter naming the data subject: audited as a keyed pseudonym (resource). */
  subjectParam?: string;
  when?: CelProgram;
  spec: ApiPolicyRule;
  /** Quotas charged when the rule allows (extauthz/quota), compiled at load. */
  quotas?: readonly RuleQuotaRef[];
  /** Masking directive sets, compiled at load (allow rules only). */
  masking?: RuleMasking;
  /** Request validation (content type, size, query, body schema), compiled at load; absent: none. */
  request?: CompiledRequest;
  /** The rule's own deprecation (it overrides the policy's); dates parsed at load. */
  lifecycle?: CompiledLifecycle;
}

export interface CompiledPolicy {
  key: string;
  name: string;
  namespace: string;
  generation?: number;
  /** spec.version: the API version, audited as apiVersion. */
  version?: string;
  hosts: readonly string[];
  defaultAction: 'allow' | 'deny';
  auditFailure: 'allow' | 'deny';
  /** shadow: routed through its own host index and evaluated only as a what-if (pipeline/shadow.ts). */
  mode: 'enforce' | 'shadow';
  /** The rules that decide (shadow rules excluded; in a shadow policy, all of them). */
  denyRules: readonly CompiledRule[];
  allowRules: readonly CompiledRule[];
  /** Every rule, shadow ones included, in spec order. */
  rules: readonly CompiledRule[];
  /**
   * An enforcing policy with shadow rules: the same policy with every rule enforced, evaluated
   * beside it as a what-if. Absent otherwise, so policies without shadow rules pay nothing.
   */
  shadowView?: CompiledPolicy;
  tenants: TenantDirectory;
  spec: ApiPolicySpec;
  /** Deterministic age order: creationTimestamp, then namespace/name. */
  age: string;
  /** Where the object was read from (file and document in folder mode). */
  origin: Origin;
  /** spec.deprecation: every rule's lifecycle unless the rule has its own. */
  lifecycle?: CompiledLifecycle;
}

/** Unlinked policies point at an empty directory until linkPolicy binds their namespace's tenants. */
const EMPTY_DIRECTORY = new TenantDirectory();

/** What the rule matches on: methods, path templates, principal types and tenants (absent: any). */
function ruleMatchers(rule: ApiPolicyRule): Pick<CompiledRule, 'methods' | 'paths' | 'types' | 'tenants'> {
  const p = rule.principals;
  return {
    ...(rule.methods?.length ? { methods: new Set(rule.methods) } : {}),
    ...(rule.paths?.length ? { paths: rule.paths.map(compilePathTemplate) } : {}),
    ...(p?.types?.length ? { types: new Set(p.types) } : {}),
    ...(p?.tenants?.length ? { tenants: new Set(p.tenants) } : {}),
  };
}

/** The path parameters the rule's templates capture: CEL sees exactly these as params. */
export function paramScope(paths: readonly PathTemplate[] | undefined): ParamScope {
  const sets = (paths ?? []).map((t) => t.segments.flatMap((s) => (s.kind === 'param' ? [s.name] : [])));
  const some = [...new Set(sets.flat())];
  const all = sets.length === 0 ? [] : some.filter((n) => sets.every((names) => names.includes(n)));
  return { all, some, paths: (paths ?? []).map((t) => t.source) };
}

/** The rule's compiled programs: the when condition and its quotas, with the rule's params. */
function rulePrograms(rule: ApiPolicyRule, params: ParamScope): Pick<CompiledRule, 'when' | 'quotas'> {
  return {
    ...(rule.when ? { when: compileCel(rule.when, { expect: 'bool', params }) } : {}),
    ...(rule.quotas?.length ? { quotas: compileRuleQuotas(rule.quotas, params) } : {}),
  };
}

/** A problem with one field of a rule (reported at /spec/rules/{i}/{field}). */
export class RuleFieldError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** subjectParam must be captured by every path of the rule, so every match yields the subject. */
function subjectParam(rule: ApiPolicyRule, params: ParamScope): Pick<CompiledRule, 'subjectParam'> {
  const name = rule.subjectParam;
  if (name === undefined) return {};
  if (params.paths.length === 0) throw new RuleFieldError('subjectParam', `subjectParam ${name}: the rule has no paths to capture it from`);
  if (!params.all.includes(name)) throw new RuleFieldError('subjectParam', `subjectParam ${name} is not a parameter of every path of the rule (${params.paths.join(', ')})`);
  return { subjectParam: name };
}

function compileRule(rule: ApiPolicyRule, index: number): CompiledRule {
  const matchers = ruleMatchers(rule);
  const params = paramScope(matchers.paths);
  return {
    name: rule.name,
    index,
    effect: rule.effect ?? 'allow',
    ...matchers,
    anonymous: rule.principals?.anonymous ?? false,
    requireMfa: rule.requireMfa ?? false,
    shadow: rule.shadow ?? false,
    requirePurpose: rule.requirePurpose ?? false,
    ...subjectParam(rule, params),
    ...rulePrograms(rule, params),
    ...(rule.request ? { request: compileRequest(rule.request) } : {}),
    ...(rule.deprecation ? { lifecycle: compileLifecycle(rule.deprecation) } : {}),
    spec: rule,
  };
}

function quotaPrograms(r: CompiledRule): CelProgram[] {
  return (r.quotas ?? []).flatMap((q) => {
    const cost = q.kind === 'inline' ? q.quota.cost : q.cost;
    const key = q.kind === 'inline' ? q.quota.key : undefined;
    return [cost, key].filter((p): p is CelProgram => typeof p === 'object');
  });
}

/** One Check may evaluate every expression of the policy: their estimates together are bounded too. */
function policyCostProblems(found: readonly PolicyError[], rules: readonly CompiledRule[], base: PolicyError['location']): PolicyError[] {
  if (found.length > 0) return [];
  const costs = rules.map((r) => ({ rule: r.name, cost: [...(r.when ? [r.when] : []), ...quotaPrograms(r)].reduce((t, p) => t + p.cost, 0) }));
  const total = costs.reduce((t, c) => t + c.cost, 0);
  if (total <= MAX_POLICY_COST) return [];
  const top = [...costs].sort((a, b) => b.cost - a.cost).slice(0, 3).map((c) => `${c.rule} ${c.cost}`).join(', ');
  return [new PolicyError('POLICY_CEL_COST', `the CEL expressions of this policy together have an estimated cost of ${total}, more than the limit of ${MAX_POLICY_COST} (largest: ${top})`, { ...base, path: '/spec/rules' })];
}

function ruleProblem(err: unknown, base: PolicyError['location'], rule: ApiPolicyRule, i: number): PolicyError {
  if (err instanceof IndexedQuotaError) {
    const at = { ...base, path: `/spec/rules/${i}/${err.pointer}`, rule: rule.name, ...(err.cel ? { line: err.cel.line, column: err.cel.column } : {}) };
    const code = err.overBudget ? 'POLICY_CEL_COST' : err.cel ? 'POLICY_CEL' : 'POLICY_INVALID';
    return new PolicyError(code, err.message, at, { cause: err });
  }
  if (err instanceof CelCompileError) {
    const code = err instanceof CelCostError ? 'POLICY_CEL_COST' : 'POLICY_CEL';
    return new PolicyError(code, `when: ${err.message}`, { ...base, path: `/spec/rules/${i}/when`, rule: rule.name, line: err.line, column: err.column });
  }
  if (err instanceof BodySchemaError) {
    return new PolicyError('POLICY_REQUEST', `request.body: ${err.message}`, { ...base, path: `/spec/rules/${i}/request/body/inline${err.pointer}`, rule: rule.name }, { cause: err });
  }
  if (err instanceof LifecycleSpecError) {
    return new PolicyError('POLICY_INVALID', `deprecation: ${err.message}`, { ...base, path: `/spec/rules/${i}/deprecation/${err.field}`, rule: rule.name }, { cause: err });
  }
  if (err instanceof RequestSpecError) {
    return new PolicyError('POLICY_REQUEST', `request: ${err.message}`, { ...base, path: `/spec/rules/${i}/request/${err.pointer}`, rule: rule.name }, { cause: err });
  }
  const path = err instanceof PathTemplateError ? `/spec/rules/${i}/paths` : err instanceof RuleFieldError ? `/spec/rules/${i}/${err.field}` : `/spec/rules/${i}`;
  return new PolicyError('POLICY_INVALID', (err as Error).message, { ...base, path, rule: rule.name }, { cause: err });
}

/**
 * Compiled rules by content. What a rule compiles to depends only on the rule, its index and the
 * policy's defaultMask and onUnmatchedMask (body schemas from ConfigMaps are inlined by then),
 * and compiled rules are immutable, so policies stamped from one template share one compile of
 * each rule, and a policy that differs in one rule compiles that rule alone. Rules are kept only
 * from policies that compiled without a problem (problems name the object), and only small ones;
 * bounded, least recently used out.
 */
export const MAX_CACHED_RULES = 1024;
const MAX_RULE_KEY = 8192;
const ruleCache = new Map<string, CompiledRule>();

/** Rules held by the compile cache (tests: it stays bounded). */
export function cachedRules(): number {
  return ruleCache.size;
}

function cachedRule(key: string | undefined): CompiledRule | undefined {
  const hit = key === undefined ? undefined : ruleCache.get(key);
  if (hit) {
    ruleCache.delete(key!);
    ruleCache.set(key!, hit);
  }
  return hit;
}

function cacheRule(key: string, rule: CompiledRule): void {
  ruleCache.set(key, rule);
  if (ruleCache.size > MAX_CACHED_RULES) ruleCache.delete(ruleCache.keys().next().value!);
}

function ruleKeys(spec: ApiPolicySpec): (string | undefined)[] {
  const context = `${JSON.stringify(spec.defaultMask ?? null)}\u0000${spec.onUnmatchedMask ?? ''}`;
  return spec.rules.map((rule, i) => {
    const key = `${i}\u0000${context}\u0000${JSON.stringify(rule)}`;
    return key.length <= MAX_RULE_KEY ? key : undefined;
  });
}

/**
 * The policy's rules compiled (CEL, paths, quotas, masks, the policy's cost bound), one yield
 * after each rule compiled (rules found in the cache cost no yield); problems into `problems`.
 */
function* compileRules(spec: ApiPolicySpec, base: PolicyError['location'], problems: PolicyError[]): Generator<void, readonly CompiledRule[], void> {
  const keys = ruleKeys(spec);
  const hits = keys.map(cachedRule);
  if (hits.every((h) => h !== undefined)) {
    const rules = hits as CompiledRule[];
    problems.push(...policyCostProblems([], rules, base));
    return rules;
  }
  const found: PolicyError[] = [];
  const rules: CompiledRule[] = [];
  const masking = compilePolicyMasking(spec, base);
  found.push(...masking.problems);
  for (const [i, rule] of spec.rules.entries()) {
    const hit = hits[i];
    if (hit) {
      rules.push(hit);
      continue;
    }
    yield* warmRule(rule);
    try {
      const m = masking.rules[i];
      rules.push({ ...compileRule(rule, i), ...(m ? { masking: m } : {}) });
    } catch (err) {
      found.push(ruleProblem(err, base, rule, i));
    }
    yield;
  }
  found.push(...policyCostProblems(found, rules, base));
  problems.push(...found);
  if (found.length === 0) keys.forEach((k, i) => k !== undefined && !hits[i] && cacheRule(k, rules[i]!));
  return rules;
}

/** The rule's CEL compiled ahead, one expression per yield (compileRule then finds each in the cache). */
function* warmRule(rule: ApiPolicyRule): Generator<void, void, void> {
  let params: ParamScope;
  try {
    params = paramScope(ruleMatchers(rule).paths);
  } catch {
    return; // bad paths: compileRule reports them
  }
  if (rule.when) yield* warm(rule.when, 'bool', params);
  yield* warmQuotaExpressions(rule.quotas ?? [], params);
}

export type UnlinkedResult = { policy?: CompiledPolicy; problems: PolicyError[]; warnings: PolicyError[] };

/**
 * Compiles one policy on its own (CEL, paths, quotas, masks): nothing here depends on another
 * object, so an unchanged policy is never compiled again when a tenant changes. `tenants` is
 * filled by linkPolicy. Unreachable rules come back as warnings.
 */
export function compilePolicyUnlinked(obj: ApiPolicyObject): UnlinkedResult {
  const steps = compilePolicySteps(obj);
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/**
 * compilePolicyUnlinked as a generator that yields after each rule: the store's sliced reload
 * gives the event loop a turn between rules, so a policy of many costly rules (each expression
 * bounded on its own, cel.ts and regex-size.ts) cannot hold in-flight Checks for its whole compile.
 */
export function* compilePolicySteps(obj: ApiPolicyObject): Generator<void, UnlinkedResult, void> {
  const base = { ...obj.origin, object: `ApiPolicy ${objectKey(obj)}` };
  const problems: PolicyError[] = [];
  const rules = yield* compileRules(obj.spec, base, problems);
  const lifecycle = policyLifecycle(obj, base, problems);
  if (problems.length > 0) return { problems, warnings: [] };
  const mode = obj.spec.mode ?? 'enforce';
  // In an enforcing policy shadow rules never decide; in a shadow policy every rule is evaluated (and nothing decides).
  const deciding = mode === 'shadow' ? rules : rules.filter((r) => !r.shadow);
  const policy: CompiledPolicy = {
    key: objectKey(obj),
    name: obj.metadata.name,
    namespace: obj.metadata.namespace,
    ...(obj.metadata.generation !== undefined ? { generation: obj.metadata.generation } : {}),
    ...(obj.spec.version !== undefined ? { version: obj.spec.version } : {}),
    hosts: obj.spec.hosts.map((h) => h.toLowerCase()),
    defaultAction: obj.spec.defaultAction ?? 'deny',
    auditFailure: obj.spec.auditFailure ?? 'deny',
    mode,
    denyRules: deciding.filter((r) => r.effect === 'deny'),
    allowRules: deciding.filter((r) => r.effect === 'allow'),
    rules,
    tenants: EMPTY_DIRECTORY,
    spec: obj.spec,
    age: `${obj.metadata.creationTimestamp ?? ''}\u0000${objectKey(obj)}`,
    origin: obj.origin,
    ...(lifecycle ? { lifecycle } : {}),
  };
  return { problems, warnings: unreachableRules(deciding, base), policy: withShadowView(policy) };
}

/** Adds the what-if view of an enforcing policy with shadow rules: every rule enforced, same tenants. */
function withShadowView(policy: CompiledPolicy): CompiledPolicy {
  if (policy.mode === 'shadow' || !policy.rules.some((r) => r.shadow)) return policy;
  const view: CompiledPolicy = { ...policy, mode: 'shadow', denyRules: policy.rules.filter((r) => r.effect === 'deny'), allowRules: policy.rules.filter((r) => r.effect === 'allow') };
  delete view.shadowView;
  return { ...policy, shadowView: view };
}

/** spec.deprecation compiled, or a problem at its field. */
function policyLifecycle(obj: ApiPolicyObject, base: PolicyError['location'], problems: PolicyError[]): CompiledLifecycle | undefined {
  const spec = obj.spec.deprecation;
  if (!spec) return undefined;
  try {
    return compileLifecycle(spec);
  } catch (err) {
    const field = err instanceof LifecycleSpecError ? err.field : '';
    problems.push(new PolicyError('POLICY_INVALID', `deprecation: ${(err as Error).message}`, { ...base, path: `/spec/deprecation/${field}` }, { cause: err }));
    return undefined;
  }
}


/**
 * Binds a compiled policy to its namespace's tenants: unknown tenant names and quotas no tenant
 * defines are errors (the policy is refused), quotas some tenants lack are warnings. Cheap: no
 * CEL is compiled, so a tenant change relinks the namespace's policies without recompiling them.
 */
export function linkPolicy(policy: CompiledPolicy, tenants: TenantDirectory): { policy?: CompiledPolicy; problems: PolicyError[]; warnings: PolicyError[] } {
  const found = referenceProblems(policy.rules, policy.namespace, tenants, { ...policy.origin, object: `ApiPolicy ${policy.key}` });
  const problems = found.filter((p) => p.severity === 'error');
  const warnings = found.filter((p) => p.severity === 'warning');
  if (problems.length > 0) return { problems, warnings };
  return { policy: withShadowView({ ...policy, tenants }), problems, warnings };
}

/** One policy against its namespace's tenants, as the operator validates it (no host checks: those need every policy). */
export function compilePolicy(obj: ApiPolicyObject, tenants: TenantDirectory): { policy?: CompiledPolicy; problems: PolicyError[]; warnings: PolicyError[] } {
  const own = compilePolicyUnlinked(obj);
  if (!own.policy) return own;
  const linked = linkPolicy(own.policy, tenants);
  return { ...linked, warnings: [...own.warnings, ...linked.warnings] };
}
