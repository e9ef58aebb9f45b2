/**
 * Masking as a policy says it, compiled at load next to CEL: each allow rule gets the directive
 * set for its own principals and, for agencies on rules without `detail: true`, the same set
 * plus the policy's defaultMask (anonymised by default). Invalid directives become PolicyErrors
 * pointing at /spec/rules/N/mask/M/field; the request path only picks a prepared set and signs.
 */
import { PolicyError, type SourceLocation } from '../errors.js';
import type { ApiPolicyRule, ApiPolicySpec, MaskDirective, PrincipalType } from '../policy/model.js';
import { MaskCompileError, MaskSet, type MaskSpec } from './engine.js';
import { payloadTail } from './token.js';
import { parsePath } from './path.js';
import { checkPathAgainstSchema, SchemaPathError } from './schema.js';

/** One directive set, ready to sign: compiled (validated), serialised, summarised. */
export interface PreparedMasks {
  set: MaskSet;
  /** payloadTail() of the set, so signing per request only adds rid, iat and exp. */
  tail: string;
  summary: string[];
}

export interface RuleMasking {
  /** Consumers, partners, and agencies on rules with detail: true. */
  own: PreparedMasks;
  /** Agencies on rules without detail: own plus the policy's defaultMask. */
  agency: PreparedMasks;
}

export interface PolicyMasking {
  /** By rule index; undefined for deny rules and rules that failed to compile. */
  rules: (RuleMasking | undefined)[];
  problems: PolicyError[];
}

function prepare(spec: MaskSpec): PreparedMasks {
  const set = new MaskSet(spec);
  return { set, tail: payloadTail(set.spec), summary: set.summary };
}

/** The policy's onUnmatchedMask applied to directives that do not say it themselves. */
function withDefault(masks: readonly MaskDirective[], onUnmatched: MaskDirective['onUnmatched']): MaskDirective[] {
  return masks.map((m) => (m.onUnmatched || !onUnmatched ? m : { ...m, onUnmatched }));
}

/** Every mask and allowFields path of the rule checked against its responseSchema, when it has one. */
function checkAgainstSchema(rule: ApiPolicyRule, defaults: readonly MaskDirective[]): void {
  const schema = rule.responseSchema?.inline;
  if (!schema) return;
  const check = (field: string, pointer: string, prefix = ''): void => {
    try {
      checkPathAgainstSchema(parsePath(field), schema);
    } catch (err) {
      if (err instanceof SchemaPathError) throw new MaskCompileError(pointer, prefix + err.message, { cause: err, code: 'POLICY_MASK_PATH' });
      // An unparsable path is reported by the directive compile with its own pointer.
    }
  };
  (rule.mask ?? []).forEach((m, i) => check(m.field, `mask/${i}/field`));
  (rule.allowFields ?? []).forEach((f, i) => check(f, `allowFields/${i}`));
  // The policy's defaultMask applies to this rule's agency responses (unless detail): checked too.
  if (!rule.detail) defaults.forEach((m, i) => check(m.field, 'responseSchema/inline', `spec.defaultMask[${i}] on this rule's agency responses: `));
}

function ruleMasking(rule: ApiPolicyRule, defaults: MaskDirective[], onUnmatched: MaskDirective['onUnmatched']): RuleMasking {
  if (rule.detail && !rule.when) throw new MaskCompileError('detail', 'detail: true needs a when condition (such as a purpose of use)');
  checkAgainstSchema(rule, defaults);
  const masks = withDefault(rule.mask ?? [], onUnmatched);
  const own = prepare({ masks, ...(rule.allowFields ? { allowFields: rule.allowFields } : {}) });
  if (rule.detail || defaults.length === 0) return { own, agency: own };
  return { own, agency: prepare({ masks: [...masks, ...withDefault(defaults, onUnmatched)], ...(rule.allowFields ? { allowFields: rule.allowFields } : {}) }) };
}

/** Compiles the masking of every rule of a policy, collecting problems rather than stopping. */
export function compilePolicyMasking(spec: ApiPolicySpec, base: SourceLocation): PolicyMasking {
  const problems: PolicyError[] = [];
  const defaults = spec.defaultMask ?? [];
  try {
    new MaskSet({ masks: defaults });
  } catch (err) {
    const e = err as MaskCompileError;
    problems.push(new PolicyError('POLICY_INVALID', e.message, { ...base, path: `/spec/${e.pointer.replace(/^mask/, 'defaultMask')}` }, { cause: err }));
    return { rules: [], problems };
  }
  const rules = spec.rules.map((rule, i) => {
    if (rule.effect === 'deny') return undefined;
    try {
      return ruleMasking(rule, defaults, spec.onUnmatchedMask);
    } catch (err) {
      if (!(err instanceof MaskCompileError)) throw err;
      problems.push(new PolicyError(err.code, err.message, { ...base, path: `/spec/rules/${i}/${err.pointer}`, rule: rule.name }, { cause: err }));
      return undefined;
    }
  });
  return { rules, problems };
}

/** The prepared set for a principal allowed by a rule; no rule (default allow) means no masks. */
export function masksFor(masking: RuleMasking | undefined, type: PrincipalType | undefined): PreparedMasks | undefined {
  if (!masking) return undefined;
  return type === 'agency' ? masking.agency : masking.own;
}
