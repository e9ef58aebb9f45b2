/**
 * Level-triggered, idempotent reconcilers, one per kind. Each reads the current state from the
 * informer caches (never the event), validates with the ext_authz engine itself, applies the
 * desired children and writes status. Running one twice changes nothing the second time.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { compilePolicy } from '../extauthz/policy/compile.js';
import { API_VERSION, type ApiPolicyObject, type TenantObject } from '../extauthz/policy/model.js';
import { compileTenants, JwksCache, TenantDirectory } from '../extauthz/policy/tenants.js';
import { httpCode } from '../kube/errors.js';
import { sourcesFrom } from '../kube/objects.js';
import { PLURAL } from '../kube/resources.js';
import { mergeConditions, policyConditions, tenantConditions, type ConditionInput, type ObjectStatus } from './conditions.js';
import type { OperatorClient } from './kube-client.js';
import { translate, type OutputConfig, type GeneratedObject } from './translate.js';

export interface Caches {
  policies: { list(ns?: string): readonly KubernetesObject[]; get(name: string, ns?: string): KubernetesObject | undefined };
  tenants: { list(ns?: string): readonly KubernetesObject[]; get(name: string, ns?: string): KubernetesObject | undefined };
  services: { get(name: string, ns?: string): KubernetesObject | undefined };
}

export interface ReconcilerDeps {
  caches: Caches;
  client: OperatorClient;
  outputs: OutputConfig;
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

/** The namespace's tenants compiled for validation (Secrets are ext_authz's business). */
function tenantDirectory(caches: Caches, ns: string): { dir: TenantDirectory; problems: Map<string, string[]> } {
  const sources = sourcesFrom([], caches.tenants.list(ns) as never, []);
  const { directories, problems } = compileTenants(sources.tenants, [], new JwksCache(), { requireSecrets: false });
  const byTenant = new Map<string, string[]>();
  for (const p of problems) {
    const key = p.location.object?.split(' ')[1] ?? '';
    byTenant.set(key, [...(byTenant.get(key) ?? []), p.message]);
  }
  return { dir: directories.get(ns) ?? new TenantDirectory(), problems: byTenant };
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

export class PolicyReconciler {
  constructor(private readonly deps: ReconcilerDeps) {}

  async reconcile(key: string): Promise<void> {
    const [ns, name] = splitKey(key);
    const raw = this.deps.caches.policies.get(name, ns);
    if (!raw) return; // Deleted: ownerReferences let the garbage collector remove the children.
    const [policy] = sourcesFrom([raw], [], []).policies;
    if (!policy) return;
    const { dir } = tenantDirectory(this.deps.caches, ns);
    const { problems } = compilePolicy(policy, dir);
    const formatted = problems.map((p) => p.format().replace(/^ApiPolicy \S+ /, ''));
    // A broken policy keeps its previous outputs: traffic still reaches Portcullis, which denies
    // (the policy is left out of its snapshot). Removing them would let requests bypass it.
    const programmed = problems.length === 0 ? await this.program(policy, raw, dir) : undefined;
    await this.writeStatus(policy, raw, policyConditions({ problems: formatted, ...(programmed ? { programmed } : {}) }));
  }

  private async program(policy: ApiPolicyObject, raw: KubernetesObject, dir: TenantDirectory): Promise<{ ok: boolean; reason: string; message: string }> {
    const { outputs, client, caches } = this.deps;
    const selectors = serviceSelectors(policy, caches);
    const input = { policy: { apiVersion: API_VERSION, kind: 'ApiPolicy', metadata: { name: policy.metadata.name, namespace: policy.metadata.namespace, uid: raw.metadata?.uid ?? '' }, spec: policy.spec }, serviceSelectors: selectors, agencyReachable: agencyReachable(policy, dir) };
    const { objects, problems } = translate(input, outputs);
    const failed = await this.applyAll(objects);
    if (failed) return { ok: false, reason: 'ApplyFailed', message: failed };
    const enabled = new Set([...(outputs.istio ? ['istio'] : []), ...(outputs.envoyGateway ? ['envoyGateway'] : [])]);
    await client.prune(policy.metadata.namespace, policy.metadata.name, enabled, objects);
    if (problems.length > 0) return { ok: false, reason: 'TargetNotFound', message: problems.join('; ') };
    return { ok: true, reason: 'Applied', message: `${objects.length} object(s) applied: ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}` };
  }

  private async applyAll(objects: readonly GeneratedObject[]): Promise<string | undefined> {
    for (const o of objects) {
      try {
        await this.deps.client.apply(o);
      } catch (err) {
        const code = httpCode(err);
        if (code === 404) return `${o.apiVersion} ${o.kind} is not installed in the cluster`;
        if (code === 422 || code === 400) return `${o.kind}/${o.metadata.name} rejected by the API server: ${String((err as { body?: unknown }).body ?? err).slice(0, 500)}`;
        throw err;
      }
    }
    return undefined;
  }

  private async writeStatus(policy: ApiPolicyObject, raw: KubernetesObject, desired: ConditionInput[]): Promise<void> {
    const now = (this.deps.now ?? (() => new Date()))();
    let readyBefore: string | undefined;
    const written = await this.deps.client.writeStatus(PLURAL.ApiPolicy, policy.metadata.namespace, policy.metadata.name, (current) => {
      readyBefore = (current.status as ObjectStatus | undefined)?.conditions?.find((c) => c.type === 'Ready')?.status;
      return statusFor(current, desired, now);
    });
    const ready = desired.find((c) => c.type === 'Ready')!;
    if (written && readyBefore !== ready.status) {
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
    const { problems } = tenantDirectory(this.deps.caches, ns);
    const desired = tenantConditions(problems.get(key) ?? []);
    const now = (this.deps.now ?? (() => new Date()))();
    await this.deps.client.writeStatus(PLURAL.Tenant, ns, name, (current) => statusFor(current, desired, now));
  }
}

export type { TenantObject };
