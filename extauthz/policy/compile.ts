/**
 * The policy compiler: validated sources in, an immutable snapshot out. Everything a Check needs
 * is prepared here (CEL programs, path matchers, host index, tenant directories), so the request
 * path only looks things up and evaluates. The operator imports this module to validate
 * policies with exactly the engine that will run them.
 */
import { PolicyError } from '../errors.js';
import { compileCel, CelCompileError, type CelProgram } from './cel.js';
import { compilePathTemplate, PathTemplateError, type PathTemplate } from './paths.js';
import { objectKey, type ApiPolicyObject, type ApiPolicyRule, type ApiPolicySpec, type PolicySources, type PrincipalType } from './model.js';
import { compileTenants, JwksCache, TenantDirectory } from './tenants.js';
import { PolicySnapshot } from './snapshot.js';
import { compileRuleQuotas, IndexedQuotaError, type RuleQuotaRef } from '../quota/model.js';
import { compilePolicyMasking, type RuleMasking } from '../masking/policy.js';

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
  when?: CelProgram;
  spec: ApiPolicyRule;
  /** Quotas charged when the rule allows (extauthz/quota), compiled at load. */
  quotas?: readonly RuleQuotaRef[];
  /** Masking directive sets, compiled at load (allow rules only). */
  masking?: RuleMasking;
}

export interface CompiledPolicy {
  key: string;
  name: string;
  namespace: string;
  generation?: number;
  hosts: readonly string[];
  defaultAction: 'allow' | 'deny';
  auditFailure: 'allow' | 'deny';
  denyRules: readonly CompiledRule[];
  allowRules: readonly CompiledRule[];
  rules: readonly CompiledRule[];
  tenants: TenantDirectory;
  spec: ApiPolicySpec;
  /** Deterministic age order: creationTimestamp, then namespace/name. */
  age: string;
}

export interface CompileResult {
  snapshot: PolicySnapshot;
  problems: PolicyError[];
  /** Problems per policy key (namespace/name), for the operator's status. */
  policyProblems: Map<string, PolicyError[]>;
  /** Problems per tenant key. */
  tenantProblems: Map<string, PolicyError[]>;
}

export interface CompilerOptions {
  jwks?: JwksCache;
  /** false: tenants' API-key Secrets are not checked (the operator validates without reading Secrets). */
  requireSecrets?: boolean;
}

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

/** The rule's compiled programs: the when condition and its quotas. */
function rulePrograms(rule: ApiPolicyRule): Pick<CompiledRule, 'when' | 'quotas'> {
  return {
    ...(rule.when ? { when: compileCel(rule.when) } : {}),
    ...(rule.quotas?.length ? { quotas: compileRuleQuotas(rule.quotas) } : {}),
  };
}

function compileRule(rule: ApiPolicyRule, index: number): CompiledRule {
  return {
    name: rule.name,
    index,
    effect: rule.effect ?? 'allow',
    ...ruleMatchers(rule),
    anonymous: rule.principals?.anonymous ?? false,
    requireMfa: rule.requireMfa ?? false,
    ...rulePrograms(rule),
    spec: rule,
  };
}

function ruleProblem(err: unknown, base: PolicyError['location'], rule: ApiPolicyRule, i: number): PolicyError {
  if (err instanceof IndexedQuotaError) {
    const at = { ...base, path: `/spec/rules/${i}/${err.pointer}`, rule: rule.name, ...(err.cel ? { line: err.cel.line, column: err.cel.column } : {}) };
    return new PolicyError(err.cel ? 'POLICY_CEL' : 'POLICY_INVALID', err.message, at, { cause: err });
  }
  if (err instanceof CelCompileError) {
    return new PolicyError('POLICY_CEL', err.message, { ...base, path: `/spec/rules/${i}/when`, rule: rule.name, line: err.line, column: err.column });
  }
  const path = err instanceof PathTemplateError ? `/spec/rules/${i}/paths` : `/spec/rules/${i}`;
  return new PolicyError('POLICY_INVALID', (err as Error).message, { ...base, path, rule: rule.name }, { cause: err });
}

export function compilePolicy(obj: ApiPolicyObject, tenants: TenantDirectory): { policy?: CompiledPolicy; problems: PolicyError[] } {
  const base = { ...obj.origin, object: `ApiPolicy ${objectKey(obj)}` };
  const problems: PolicyError[] = [];
  const rules: CompiledRule[] = [];
  const masking = compilePolicyMasking(obj.spec, base);
  problems.push(...masking.problems);
  obj.spec.rules.forEach((rule, i) => {
    try {
      const m = masking.rules[i];
      rules.push({ ...compileRule(rule, i), ...(m ? { masking: m } : {}) });
    } catch (err) {
      problems.push(ruleProblem(err, base, rule, i));
    }
  });
  for (const [i, rule] of obj.spec.rules.entries()) {
    for (const t of rule.principals?.tenants ?? []) {
      if (!tenants.byName.has(t)) problems.push(new PolicyError('POLICY_INVALID', `unknown tenant "${t}" in namespace ${obj.metadata.namespace}`, { ...base, path: `/spec/rules/${i}/principals/tenants`, rule: rule.name }));
    }
  }
  if (problems.length > 0) return { problems };
  return {
    problems,
    policy: {
      key: objectKey(obj),
      name: obj.metadata.name,
      namespace: obj.metadata.namespace,
      ...(obj.metadata.generation !== undefined ? { generation: obj.metadata.generation } : {}),
      hosts: obj.spec.hosts.map((h) => h.toLowerCase()),
      defaultAction: obj.spec.defaultAction ?? 'deny',
      auditFailure: obj.spec.auditFailure ?? 'deny',
      denyRules: rules.filter((r) => r.effect === 'deny'),
      allowRules: rules.filter((r) => r.effect === 'allow'),
      rules,
      tenants,
      spec: obj.spec,
      age: `${obj.metadata.creationTimestamp ?? ''}\u0000${objectKey(obj)}`,
    },
  };
}

function group(problems: PolicyError[]): Map<string, PolicyError[]> {
  const out = new Map<string, PolicyError[]>();
  for (const p of problems) {
    const key = p.location.object?.split(' ')[1] ?? '';
    out.set(key, [...(out.get(key) ?? []), p]);
  }
  return out;
}

let snapshotVersion = 0;

/** Compiles all sources. Broken objects are left out and reported; the rest still compile. */
export function compileSources(sources: PolicySources, options: CompilerOptions = {}): CompileResult {
  const jwks = options.jwks ?? new JwksCache();
  const { directories, problems: tenantProblems } = compileTenants(sources.tenants, sources.secrets, jwks, options.requireSecrets === false ? { requireSecrets: false } : {});
  const policyProblems: PolicyError[] = [];
  const policies: CompiledPolicy[] = [];
  for (const obj of sources.policies) {
    const dir = directories.get(obj.metadata.namespace) ?? new TenantDirectory();
    const { policy, problems } = compilePolicy(obj, dir);
    policyProblems.push(...problems);
    if (policy) policies.push(policy);
  }
  const snapshot = new PolicySnapshot(++snapshotVersion, policies, directories);
  const problems = [...tenantProblems, ...policyProblems];
  return { snapshot, problems, policyProblems: group([...policyProblems, ...snapshot.conflicts]), tenantProblems: group(tenantProblems) };
}
