/**
 * Status conditions, computed as pure functions: Accepted (the engine compiled the object),
 * Programmed (the mesh configuration is applied), Ready (both). lastTransitionTime moves only
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

export interface PolicyOutcome {
  /** Compile problems (formatted); empty when accepted. */
  problems: string[];
  /** Result of applying the outputs; undefined when not attempted. */
  programmed?: { ok: boolean; reason: string; message: string };
}

export function policyConditions(o: PolicyOutcome): ConditionInput[] {
  const accepted: ConditionInput =
    o.problems.length === 0
      ? { type: 'Accepted', status: 'True', reason: 'Compiled', message: 'The policy compiled with the Portcullis engine.' }
      : { type: 'Accepted', status: 'False', reason: 'Invalid', message: o.problems.join('\n') };
  const programmed: ConditionInput = o.programmed
    ? { type: 'Programmed', status: o.programmed.ok ? 'True' : 'False', reason: o.programmed.reason, message: o.programmed.message }
    : { type: 'Programmed', status: 'False', reason: 'NotAccepted', message: 'Outputs are not generated for a policy that does not compile.' };
  const ready: ConditionInput =
    accepted.status === 'True' && programmed.status === 'True'
      ? { type: 'Ready', status: 'True', reason: 'Ready', message: 'The policy is compiled and programmed.' }
      : { type: 'Ready', status: 'False', reason: accepted.status !== 'True' ? accepted.reason : programmed.reason, message: accepted.status !== 'True' ? accepted.message : programmed.message };
  return [accepted, programmed, ready];
}

export function tenantConditions(problems: string[]): ConditionInput[] {
  const ok = problems.length === 0;
  return [
    ok ? { type: 'Accepted', status: 'True', reason: 'Valid', message: 'The tenant is valid.' } : { type: 'Accepted', status: 'False', reason: 'Invalid', message: problems.join('\n') },
    ok ? { type: 'Ready', status: 'True', reason: 'Ready', message: 'The tenant can authenticate principals.' } : { type: 'Ready', status: 'False', reason: 'Invalid', message: problems.join('\n') },
  ];
}
