/**
 * Status conditions, computed as pure functions: Accepted (the engine compiled the object, with
 * its cross-object checks), Programmed (the mesh configuration is applied, wired and accepted by
 * the data plane's controller where one reports), Ready (both). lastTransitionTime moves only
 * when a condition's status flips, and `statusEqual` lets the writer skip no-op updates.
 */
export type ConditionStatus = 'True' | 'False' | 'Unknown';

export interface Condition {
  type: string;
  status: ConditionStatus;
  observedGeneration: number;
  lastTransitionTime: string;
  reason: string;
  message: string;
}

export interface ObjectStatus {
  observedGeneration: number;
  conditions: Condition[];
}

export interface ConditionInput {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

const MAX_MESSAGE = 32_000;

/** Merges desired conditions into the previous ones, keeping transition times unless status flips. */
export function mergeConditions(previous: readonly Condition[] | undefined, desired: readonly ConditionInput[], generation: number, now: Date): Condition[] {
  return desired.map((d) => {
    const old = previous?.find((c) => c.type === d.type);
    const lastTransitionTime = old && old.status === d.status ? old.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z');
    return { type: d.type, status: d.status, observedGeneration: generation, lastTransitionTime, reason: d.reason, message: d.message.slice(0, MAX_MESSAGE) };
  });
}

/** Equal apart from nothing: same generation and same conditions (times included, since merge keeps them). */
export function statusEqual(a: ObjectStatus | undefined, b: ObjectStatus): boolean {
  if (!a || a.observedGeneration !== b.observedGeneration || (a.conditions?.length ?? 0) !== b.conditions.length) return false;
  return b.conditions.every((c) => {
    const o = a.conditions.find((x) => x.type === c.type);
    return !!o && o.status === c.status && o.reason === c.reason && o.message === c.message && o.observedGeneration === c.observedGeneration && o.lastTransitionTime === c.lastTransitionTime;
  });
}

/** A condition's verdict before it is merged into status. */
export interface Verdict {
  status: ConditionStatus;
  reason: string;
  message: string;
}

export interface PolicyOutcome {
  /** Compile problems (formatted); empty when accepted. */
  problems: string[];
  /** Engine warnings (unreachable rules, quotas some tenants lack): shown, nothing refused. */
  warnings?: string[];
  /** The generation that keeps serving while the current one is refused. */
  servingGeneration?: number;
  /** Whether the outputs are in force; undefined when not attempted. */
  programmed?: Verdict;
}

function acceptedMessage(ok: string, o: { problems: string[]; warnings?: string[]; servingGeneration?: number }): string {
  if (o.problems.length > 0) {
    const serving = o.servingGeneration !== undefined ? `\nGeneration ${o.servingGeneration}, the last good version, keeps serving.` : '';
    return o.problems.join('\n') + serving;
  }
  const w = o.warnings ?? [];
  return w.length === 0 ? ok : `${ok} ${w.length} warning(s):\n${w.join('\n')}`;
}

/** What Envoy Gateway's own controller reported on one generated policy (status.ancestors). */
export interface ControllerReport {
  object: string;
  accepted: ConditionStatus;
  message: string;
}

export interface ProgrammingFacts {
  /** Set when an apply failed (a kind not installed, or the API server rejected an object). */
  applyFailure?: string;
  /** What the translation could not wire (reason, message), in order. */
  problems: readonly { reason: string; message: string }[];
  /** "Kind/name" of every object applied. */
  objects: readonly string[];
  /** Envoy Gateway's verdict on each generated Envoy Gateway policy. */
  controller: readonly ControllerReport[];
  /** A shadow policy: no objects by design. */
  shadow?: boolean;
}

/**
 * Programmed means enforced as far as the operator can know: every object applied, every target
 * wired and present, and Envoy Gateway's controller has accepted its policies. Istio writes no
 * status, so applied Istio objects count; an Envoy Gateway policy nobody reported on is Unknown.
 */
export function programmedVerdict(f: ProgrammingFacts): Verdict {
  if (f.applyFailure) return { status: 'False', reason: 'ApplyFailed', message: f.applyFailure };
  const first = f.problems[0];
  if (first) return { status: 'False', reason: first.reason, message: f.problems.map((p) => p.message).join('; ') };
  const rejected = f.controller.filter((c) => c.accepted === 'False');
  if (rejected.length > 0) return { status: 'False', reason: 'RejectedByEnvoyGateway', message: rejected.map((c) => `${c.object}: ${c.message}`).join('; ') };
  const pending = f.controller.filter((c) => c.accepted === 'Unknown');
  if (pending.length > 0) {
    return { status: 'Unknown', reason: 'AwaitingEnvoyGateway', message: `applied; no Envoy Gateway controller has accepted ${pending.map((c) => c.object).join(', ')} yet` };
  }
  if (f.shadow) return { status: 'True', reason: 'Shadow', message: 'shadow policy: no mesh objects are generated; ext_authz evaluates it only on requests that enforcing policies of its hosts send to it' };
  return { status: 'True', reason: 'Applied', message: `${f.objects.length} object(s) applied: ${f.objects.join(', ')}` };
}

interface AncestorStatus {
  conditions?: { type?: string; status?: string; message?: string }[];
}

/** Envoy Gateway's verdict from a generated policy's status: every ancestor must be Accepted. */
export function controllerReport(object: string, status: unknown): ControllerReport {
  const ancestors = ((status as { ancestors?: AncestorStatus[] } | undefined)?.ancestors ?? []).filter((a) => a && typeof a === 'object');
  const accepted = ancestors.map((a) => (a.conditions ?? []).find((c) => c.type === 'Accepted'));
  if (ancestors.length === 0 || accepted.some((c) => !c)) return { object, accepted: 'Unknown', message: 'no controller status' };
  const bad = accepted.find((c) => c!.status !== 'True');
  if (bad) return { object, accepted: bad.status === 'False' ? 'False' : 'Unknown', message: String(bad.message ?? '').slice(0, 500) };
  return { object, accepted: 'True', message: '' };
}

const NOT_ACCEPTED: Verdict = { status: 'False', reason: 'NotAccepted', message: 'Outputs are not generated for a policy that does not compile.' };

export function policyConditions(o: PolicyOutcome): ConditionInput[] {
  const message = acceptedMessage('The policy compiled with the Portcullis engine.', o);
  const accepted: ConditionInput = o.problems.length === 0 ? { type: 'Accepted', status: 'True', reason: 'Compiled', message } : { type: 'Accepted', status: 'False', reason: 'Invalid', message };
  const programmed: ConditionInput = { type: 'Programmed', ...(o.programmed ?? NOT_ACCEPTED) };
  return [accepted, programmed, readyOf(accepted, programmed)];
}

/** Ready only when both hold; otherwise the first condition that does not, with its status. */
function readyOf(accepted: ConditionInput, programmed: ConditionInput): ConditionInput {
  if (accepted.status === 'True' && programmed.status === 'True') return { type: 'Ready', status: 'True', reason: 'Ready', message: 'The policy is compiled and enforced by the mesh.' };
  const failing = accepted.status !== 'True' ? accepted : programmed;
  return { type: 'Ready', status: failing.status, reason: failing.reason, message: failing.message };
}

/** What the operator knows of the Secrets a tenant names (absent: it names none). */
export interface TenantSecrets {
  /** "Secret ns/name key k (use)", one per reference, for messages. */
  refs: string[];
  /** False: the operator does not read Secrets (--no-verify-secrets). */
  verified: boolean;
  /** The first error's Secret problem, when one of these Secrets refuses the tenant. */
  problem?: string;
}

export interface TenantOutcome {
  warnings?: string[];
  servingGeneration?: number;
  secrets?: TenantSecrets;
}

/**
 * SecretsVerified (only for a tenant naming Secrets): True when they load as ext_authz loads them,
 * False with the Secret problem, Unknown when the operator does not read Secrets or the tenant is
 * refused for another reason first (its Secrets were then not all read).
 */
function secretsCondition(s: TenantSecrets, problems: string[]): ConditionInput {
  const which = s.refs.join(', ');
  if (!s.verified) {
    return { type: 'SecretsVerified', status: 'Unknown', reason: 'NotVerified', message: `The operator does not read Secrets (operator.verifySecrets=false), so ${which} is not verified; ext_authz refuses the tenant if one is missing or malformed (its log and portcullis_revocation_sources_failing show it).` };
  }
  if (s.problem) return { type: 'SecretsVerified', status: 'False', reason: s.problem, message: problems.join('\n') };
  if (problems.length > 0) return { type: 'SecretsVerified', status: 'Unknown', reason: 'NotChecked', message: `The tenant is refused for another reason (see Accepted), so ${which} is not verified.` };
  return { type: 'SecretsVerified', status: 'True', reason: 'Verified', message: `${which}: present and loaded as ext_authz loads them.` };
}

export function tenantConditions(problems: string[], extra: TenantOutcome = {}): ConditionInput[] {
  const ok = problems.length === 0;
  const o = { problems, ...extra };
  const reason = extra.secrets?.problem ?? 'Invalid';
  const accepted: ConditionInput = ok ? { type: 'Accepted', status: 'True', reason: 'Valid', message: acceptedMessage('The tenant is valid.', o) } : { type: 'Accepted', status: 'False', reason, message: acceptedMessage('', o) };
  const secrets = extra.secrets ? [secretsCondition(extra.secrets, problems)] : [];
  let ready: ConditionInput = { type: 'Ready', status: 'True', reason: 'Ready', message: 'The tenant can authenticate principals.' };
  if (!ok) ready = { type: 'Ready', status: 'False', reason, message: accepted.message };
  else if (secrets[0] && secrets[0].status !== 'True') ready = { type: 'Ready', status: 'Unknown', reason: 'SecretsNotVerified', message: secrets[0].message };
  return [accepted, ...secrets, ready];
}
