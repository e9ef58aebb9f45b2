/**
 * Level-triggered, idempotent reconcilers, one per kind. Each reads the current state from the
 * informer caches (never the event), validates with the ext_authz engine itself, applies the
 * desired children and writes status. Running one twice changes nothing the second time.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { API_VERSION, type ApiPolicyObject, type TenantObject } from '../extauthz/policy/model.js';
import { secretReferences, type TenantDirectory } from '../extauthz/policy/tenants.js';
import { httpCode } from '../kube/errors.js';
import { sourcesFrom } from '../kube/objects.js';
import { PLURAL } from '../kube/resources.js';
import { controllerReport, mergeConditions, policyConditions, programmedVerdict, tenantConditions, type ConditionInput, type ControllerReport, type ObjectStatus, type TenantSecrets, type Verdict } from './conditions.js';
import type { Verdicts } from './validation.js';
import { repairPatch } from './drift.js';
import type { OperatorClient } from './kube-client.js';
import { grantedKinds, presentRoutes, type TargetCaches } from './targets.js';
import { isShared, translate, type GeneratedObject, type OutputConfig, type Translation } from './translate.js';
import type { NamespaceLocks } from './namespace-lock.js';
import type { PolicyValidation } from './validation.js';

export interface Caches {
  policies: { list(ns?: string): readonly KubernetesObject[]; get(name: string, ns?: string): KubernetesObject | undefined };
  tenants: { list(ns?: string): readonly KubernetesObject[]; get(name: string, ns?: string): KubernetesObject | undefined };
  services: { get(name: string, ns?: string): KubernetesObject | undefined };
  targets: TargetCaches;
}

export interface ReconcilerDeps {
  caches: Caches;
  client: OperatorClient;
  outputs: OutputConfig;
  validation: PolicyValidation;
  /** Serialises writes of a namespace's shared objects (namespace-lock.ts). */
  locks: NamespaceLocks;
  log: Logger;
  now?: () => Date;
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}

function statusFor(current: Record<string, unknown>, desired: ConditionInput[], now: Date): ObjectStatus {
  const generation = Number((current.metadata as { generation?: number }).generation ?? 0);
  const previous = (current.status as ObjectStatus | undefined)?.conditions;
  return { observedGeneration: generation, conditions: mergeConditions(previous, desired, generation, now) };
}

function agencyReachable(policy: ApiPolicyObject, dir: TenantDirectory): boolean {
  const agencies = [...dir.byName.values()].filter((t) => t.principalType === 'agency').map((t) => t.name);
  return policy.spec.rules.some((r) => {
    if ((r.effect ?? 'allow') === 'deny') return false;
    const p = r.principals;
    if (p?.types?.length) return p.types.includes('agency');
    if (p?.tenants?.length) return p.tenants.some((t) => agencies.includes(t));
    return agencies.length > 0;
  });
}

/** Selectors of the Services a policy targets (undefined: missing, or selecting nothing). */
function serviceSelectors(policy: ApiPolicyObject, caches: Caches): Map<string, Record<string, string> | undefined> {
  const selectors = new Map<string, Record<string, string> | undefined>();
  for (const ref of policy.spec.targetRefs ?? []) {
    if (ref.kind !== 'Service') continue;
    const svc = caches.services.get(ref.name, policy.metadata.namespace) as { spec?: { selector?: Record<string, string> } } | undefined;
    const selector = svc?.spec?.selector;
    selectors.set(ref.name, selector && Object.keys(selector).length > 0 ? selector : undefined);
  }
  return selectors;
}

const ENVOY_GATEWAY_API = 'gateway.envoyproxy.io/';

/** The outputs enabled, as translate's OUTPUT_KINDS name them. */
export function enabledOutputs(outputs: OutputConfig): Set<string> {
  return new Set([...(outputs.istio ? ['istio'] : []), ...(outputs.envoyGateway ? ['envoyGateway'] : [])]);
}

/** The translation of one parsed policy against the caches (the input is read, never the event). */
export async function translationOf(deps: ReconcilerDeps, policy: ApiPolicyObject, raw: KubernetesObject): Promise<Translation> {
  const { caches, outputs, validation } = deps;
  const ns = policy.metadata.namespace;
  const input = {
    policy: { apiVersion: API_VERSION, kind: 'ApiPolicy', metadata: { name: policy.metadata.name, namespace: ns, uid: raw.metadata?.uid ?? '' }, spec: policy.spec },
    serviceSelectors: serviceSelectors(policy, caches),
    presentRoutes: presentRoutes(caches.targets, ns),
    grantedKinds: grantedKinds(caches.targets.referenceGrants.list(outputs.service.namespace), ns, outputs.service.name),
    agencyReachable: agencyReachable(policy, await validation.directory(ns)),
  };
  return translate(input, outputs);
}

/**
 * Applies every object and repairs weakening fields others added; returns Envoy Gateway's
 * reports, or why an object could not be applied.
 */
export async function applyObjects(deps: ReconcilerDeps, objects: readonly GeneratedObject[]): Promise<ControllerReport[] | string> {
  const reports: ControllerReport[] = [];
  for (const o of objects) {
    try {
      const live = await deps.client.apply(o);
      const repair = repairPatch(o, live);
      if (repair) {
        deps.log.warn({ object: `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`, removed: repair.removed }, 'removed fields that weaken a generated object');
        await deps.client.mergePatch(o, repair.patch);
      }
      if (o.apiVersion.startsWith(ENVOY_GATEWAY_API)) reports.push(controllerReport(`${o.kind}/${o.metadata.name}`, live?.status));
    } catch (err) {
      const code = httpCode(err);
      if (code === 404) return `${o.apiVersion} ${o.kind} is not installed in the cluster`;
      if (code === 422 || code === 400) return `${o.kind}/${o.metadata.name} rejected by the API server: ${String((err as { body?: unknown }).body ?? err).slice(0, 500)}`;
      throw err;
    }
  }
  return reports;
}

export class PolicyReconciler {
  constructor(private readonly deps: ReconcilerDeps) {}

  async reconcile(key: string): Promise<void> {
    const [ns, name] = splitKey(key);
    const raw = this.deps.caches.policies.get(name, ns);
    // Deleted: ownerReferences let the garbage collector remove its own children; the namespace
    // pass (queued by the delete event) removes shared objects no other policy needs.
    if (!raw) return;
    const [policy] = sourcesFrom([raw], [], []).policies;
    if (!policy) return;
    const verdict = await this.deps.validation.policy(key);
    // A refused policy keeps its previous outputs: traffic still reaches Portcullis, which serves
    // the last good version or, with none, denies. Removing them would let requests bypass it.
    const programmed = verdict.errors.length === 0 ? await this.program(policy, raw) : undefined;
    if (verdict.errors.length === 0 && !programmed) return; // superseded: its event queued the next reconcile
    await this.writeStatus(policy, raw, policyConditions({ problems: verdict.errors, warnings: verdict.warnings, ...(verdict.servingGeneration !== undefined ? { servingGeneration: verdict.servingGeneration } : {}), ...(programmed ? { programmed } : {}) }));
  }

  /** The Programmed verdict, or undefined when the policy changed meanwhile (its next reconcile writes status). */
  private async program(policy: ApiPolicyObject, raw: KubernetesObject): Promise<Verdict | undefined> {
    const { caches, outputs, client, locks } = this.deps;
    const ns = policy.metadata.namespace;
    // Translated and applied under the namespace's lock, from the caches as they are then: a
    // translation of older inputs (spec, Service selector, tenants) applied after a namespace
    // pass would bring back what the pass removed, and nothing would queue another pass. And
    // the pass never deletes an object this policy is about to report in place.
    const step = await locks.run(ns, async () => {
      // Compared by generation, not identity: the echo of our own status write replaces the
      // cached object and queues nothing, while a spec change queues the next reconcile.
      const now = caches.policies.get(policy.metadata.name, ns);
      if (now?.metadata?.uid !== raw.metadata?.uid || now?.metadata?.generation !== raw.metadata?.generation) return undefined;
      const translation = await translationOf(this.deps, policy, raw);
      return { translation, applied: await applyObjects(this.deps, translation.objects.filter(isShared)) };
    });
    if (!step) return undefined;
    const { translation: { objects, problems, shadow }, applied: shared } = step;
    const applied = typeof shared === 'string' ? shared : await applyObjects(this.deps, objects.filter((o) => !isShared(o)));
    if (typeof applied === 'string') return programmedVerdict({ applyFailure: applied, problems, objects: [], controller: [] });
    await client.prune(ns, policy.metadata.name, enabledOutputs(outputs), objects);
    return programmedVerdict({ problems, objects: objects.map((o) => `${o.kind}/${o.metadata.name}`), controller: [...(shared as ControllerReport[]), ...applied], ...(shadow ? { shadow } : {}) });
  }

  private async writeStatus(policy: ApiPolicyObject, raw: KubernetesObject, desired: ConditionInput[]): Promise<void> {
    const now = (this.deps.now ?? (() => new Date()))();
    let readyBefore: string | undefined;
    const written = await this.deps.client.writeStatus(PLURAL.ApiPolicy, policy.metadata.namespace, policy.metadata.name, (current) => {
      readyBefore = (current.status as ObjectStatus | undefined)?.conditions?.find((c) => c.type === 'Ready')?.status;
      return statusFor(current, desired, now);
    });
    const ready = desired.find((c) => c.type === 'Ready')!;
    // An Event marks a flip a human should notice: any move to False/Unknown, and a recovery to
    // True. A new object's first Ready=True is the expected path and its status already says so;
    // recording it cost one API write per object, a third of a cold start's writes at scale.
    const firstReady = readyBefore === undefined && ready.status === 'True';
    if (written && readyBefore !== ready.status && !firstReady) {
      const involved = { apiVersion: API_VERSION, kind: 'ApiPolicy', name: policy.metadata.name, namespace: policy.metadata.namespace, ...(raw.metadata?.uid ? { uid: raw.metadata.uid } : {}) };
      await this.deps.client.event(involved, ready.status === 'True' ? 'Normal' : 'Warning', ready.reason, ready.message);
    }
  }
}

export class TenantReconciler {
  constructor(
    private readonly deps: ReconcilerDeps,
    private readonly enqueuePolicies: (namespace: string) => void,
  ) {}

  async reconcile(key: string): Promise<void> {
    const [ns, name] = splitKey(key);
    this.enqueuePolicies(ns);
    const raw = this.deps.caches.tenants.get(name, ns);
    if (!raw) return;
    const v = await this.deps.validation.tenant(key);
    const [tenant] = sourcesFrom([], [raw], []).tenants;
    const secrets = tenant ? this.secrets(tenant, v) : undefined;
    const desired = tenantConditions(v.errors, { warnings: v.warnings, ...(v.servingGeneration !== undefined ? { servingGeneration: v.servingGeneration } : {}), ...(secrets ? { secrets } : {}) });
    const now = (this.deps.now ?? (() => new Date()))();
    await this.deps.client.writeStatus(PLURAL.Tenant, ns, name, (current) => statusFor(current, desired, now));
  }

  /** The Secrets the tenant names, as its SecretsVerified condition describes them; undefined when it names none. */
  private secrets(tenant: TenantObject, v: Verdicts): TenantSecrets | undefined {
    const refs = secretReferences(tenant).map((r) => `Secret ${r.secret}${r.key !== undefined ? ` key ${r.key}` : ''} (${r.use})`);
    if (refs.length === 0) return undefined;
    return { refs, verified: this.deps.validation.verifiesSecrets, ...(v.secretProblem ? { problem: v.secretProblem } : {}) };
  }
}

export type { TenantObject };
