/**
 * `portcullis-operator cleanup`: the uninstall path (the chart's opt-in pre-delete hook runs it,
 * or an operator runs it by hand). It stops the operator (scales its Deployment to zero, so drift
 * repair cannot recreate what is deleted), deletes every mesh object the operator generated
 * (label app.kubernetes.io/managed-by=portcullis-operator, all namespaces), and marks every
 * ApiPolicy and Tenant Ready=False "Uninstalled" so no stale Ready survives.
 *
 * The trade-off, also in docs/operator.md: while the CUSTOM AuthorizationPolicies exist without
 * Portcullis, the protected workloads fail closed (every request is refused). Removing them makes
 * the workloads reachable without any Portcullis decision. Run this only when that is intended.
 */
import { AppsV1Api, KubernetesObjectApi, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { PLURAL } from '../kube/resources.js';
import { mergeConditions, type ConditionInput, type ObjectStatus } from './conditions.js';
import { httpCode } from '../kube/errors.js';
import { OperatorClient } from './kube-client.js';
import { FIELD_MANAGER, LABEL_MANAGED_BY, OUTPUT_KINDS } from './translate.js';

export interface CleanupOptions {
  /** The operator's Deployment, stopped first; undefined when it is already stopped. */
  deployment?: { namespace: string; name: string };
  /** Bound on waiting for the operator's pods to go. */
  timeoutMs: number;
  log: (line: string) => void;
}

export interface CleanupResult {
  deleted: number;
  policies: number;
  tenants: number;
}

const UNINSTALLED: ConditionInput[] = [
  { type: 'Programmed', status: 'False', reason: 'Uninstalled', message: 'Portcullis was uninstalled: its mesh configuration was removed.' },
  { type: 'Ready', status: 'False', reason: 'Uninstalled', message: 'Portcullis was uninstalled: requests are not decided by Portcullis.' },
];

async function stopOperator(kc: KubeConfig, d: { namespace: string; name: string }, timeoutMs: number): Promise<void> {
  const apps = kc.makeApiClient(AppsV1Api);
  try {
    await apps.replaceNamespacedDeploymentScale({ name: d.name, namespace: d.namespace, body: { metadata: { name: d.name, namespace: d.namespace }, spec: { replicas: 0 } } });
  } catch (err) {
    if (httpCode(err) === 404) return;
    throw err;
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const scale = await apps.readNamespacedDeploymentScale({ name: d.name, namespace: d.namespace });
    if ((scale.status?.replicas ?? 0) === 0) return;
    await sleep(1000);
  }
  throw new Error(`the operator Deployment ${d.namespace}/${d.name} still has pods after ${timeoutMs} ms`);
}

/** One pass over every generated kind; returns how many objects it deleted. */
async function deletePass(objects: KubernetesObjectApi): Promise<number> {
  const selector = `${LABEL_MANAGED_BY}=${FIELD_MANAGER}`;
  let deleted = 0;
  for (const k of OUTPUT_KINDS) {
    let items: KubernetesObject[];
    try {
      items = (await objects.list(k.apiVersion, k.kind, undefined, undefined, undefined, undefined, undefined, selector)).items;
    } catch (err) {
      if (httpCode(err) === 404) continue; // kind not installed
      throw err;
    }
    for (const item of items) {
      await objects.delete({ apiVersion: k.apiVersion, kind: k.kind, metadata: { name: item.metadata?.name ?? '', namespace: item.metadata?.namespace ?? '' } }).catch((err) => {
        if (httpCode(err) !== 404) throw err;
      });
      deleted++;
    }
  }
  return deleted;
}

async function markAll(kc: KubeConfig, client: OperatorClient, plural: string): Promise<number> {
  const objects = KubernetesObjectApi.makeApiClient(kc);
  const list = await objects.list('portcullis.io/v1alpha1', plural === PLURAL.ApiPolicy ? 'ApiPolicy' : 'Tenant');
  const now = new Date();
  for (const o of list.items) {
    await client.writeStatus(plural, o.metadata?.namespace ?? '', o.metadata?.name ?? '', (current) => {
      const generation = Number((current.metadata as { generation?: number }).generation ?? 0);
      const previous = (current.status as ObjectStatus | undefined)?.conditions ?? [];
      const kept = previous.filter((c) => !UNINSTALLED.some((u) => u.type === c.type));
      return { observedGeneration: generation, conditions: [...kept, ...mergeConditions(previous, UNINSTALLED, generation, now)] };
    });
  }
  return list.items.length;
}

export async function cleanup(kc: KubeConfig, opts: CleanupOptions): Promise<CleanupResult> {
  if (opts.deployment) {
    opts.log(`stopping the operator Deployment ${opts.deployment.namespace}/${opts.deployment.name}`);
    await stopOperator(kc, opts.deployment, opts.timeoutMs);
  }
  const objects = KubernetesObjectApi.makeApiClient(kc);
  let deleted = 0;
  // Repeat until a pass finds nothing: a reconcile that was in flight may have written one more.
  for (let pass = 0; pass < 5; pass++) {
    const n = await deletePass(objects);
    deleted += n;
    if (n === 0) break;
  }
  const client = new OperatorClient(kc);
  const policies = await markAll(kc, client, PLURAL.ApiPolicy);
  const tenants = await markAll(kc, client, PLURAL.Tenant);
  opts.log(`deleted ${deleted} generated object(s); marked ${policies} ApiPolicy and ${tenants} Tenant object(s) Ready=False Uninstalled`);
  return { deleted, policies, tenants };
}
