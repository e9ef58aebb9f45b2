/**
 * Wires the operator: informers feed keyed work queues; the queues run the reconcilers only while
 * this replica leads; HTTP serves health, readiness and metrics. Informers run on every replica,
 * so a new leader starts with warm caches.
 */
import { CoreV1Api, KubernetesObjectApi, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { ResilientInformer } from '../extauthz/kube/informer.js';
import { customPath, listCustom, PLURAL } from '../extauthz/kube/resources.js';
import { createHttpServer } from '../extauthz/server/http.js';
import type { OperatorConfig } from './config.js';
import { OperatorClient } from './kube-client.js';
import { LeaderElector } from './leader.js';
import { WorkQueue } from './queue.js';
import { PolicyReconciler, TenantReconciler } from './reconcile.js';
import { watchTargets } from './targets.js';
import { PolicyValidation } from './validation.js';
import { FIELD_MANAGER, LABEL_MANAGED_BY, LABEL_POLICY, OUTPUT_KINDS } from './translate.js';

class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({ name: 'portcullis_operator_reconciles_total', help: 'Reconciles by kind and result.', labelNames: ['kind', 'result'] as const, registers: [this.registry] });
  readonly duration = new Histogram({ name: 'portcullis_operator_reconcile_duration_seconds', help: 'Reconcile duration.', labelNames: ['kind'] as const, registers: [this.registry] });
  readonly depth = new Gauge({ name: 'portcullis_operator_queue_depth', help: 'Keys waiting in the work queue.', labelNames: ['kind'] as const, registers: [this.registry] });
  readonly leader = new Gauge({ name: 'portcullis_operator_leader', help: '1 while this replica holds the Lease.', registers: [this.registry] });
}

/** Runs a reconcile only while leading, with its duration and result counted and failures logged. */
function timedReconcile(ctx: { metrics: OperatorMetrics; log: Logger; isLeading: () => boolean }, kind: string, fn: (k: string) => Promise<void>): (k: string) => Promise<void> {
  return async (k) => {
    if (!ctx.isLeading()) return;
    const end = ctx.metrics.duration.startTimer({ kind });
    try {
      await fn(k);
      ctx.metrics.reconciles.inc({ kind, result: 'success' });
    } catch (err) {
      ctx.metrics.reconciles.inc({ kind, result: 'error' });
      ctx.log.error({ err: String(err), key: k, kind }, 'reconcile failed; retrying with backoff');
      throw err;
    } finally {
      end();
    }
  };
}

/** Drift: an edited or deleted child re-enqueues its policy, whose reconcile applies it again. */
function childInformers(kc: KubeConfig, cfg: OperatorConfig, enqueue: (key: string) => void, onError: (what: string) => (err: unknown) => void): ResilientInformer<KubernetesObject>[] {
  const objects = KubernetesObjectApi.makeApiClient(kc);
  const selector = `${LABEL_MANAGED_BY}=${FIELD_MANAGER}`;
  const enabled = OUTPUT_KINDS.filter((k) => (k.output === 'istio' ? cfg.outputs.istio : cfg.outputs.envoyGateway));
  return enabled.map((k) => new ResilientInformer<KubernetesObject>({
    kubeConfig: kc, path: `/apis/${k.apiVersion}/${k.plural}`, labelSelector: selector, onError: onError(k.plural),
    list: () => objects.list(k.apiVersion, k.kind, undefined, undefined, undefined, undefined, undefined, selector),
    onChange: (o) => {
      const owner = o.metadata?.labels?.[LABEL_POLICY];
      if (owner) enqueue(`${o.metadata?.namespace ?? ''}/${owner}`);
    },
  }));
}

function listen(http: Server, address: string): Promise<void> {
  const i = address.lastIndexOf(':');
  return new Promise<void>((resolve) => http.listen(Number(address.slice(i + 1)), address.slice(0, i).replace(/^\[|\]$/g, ''), resolve));
}

function key(o: KubernetesObject): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}

export interface RunningOperator {
  httpPort: number;
  readonly isLeader: boolean;
  stop(): Promise<void>;
}

export async function runOperator(cfg: OperatorConfig, kc: KubeConfig, log: Logger, onLostLeadership: () => void): Promise<RunningOperator> {
  const metrics = new OperatorMetrics();
  const client = new OperatorClient(kc);
  let leading = !cfg.leaderElect;
  const onError = (what: string) => (err: unknown) => log.warn({ err: String(err), what }, 'watch failed; retrying');
  const timed = (kind: string, fn: (k: string) => Promise<void>): ((k: string) => Promise<void>) => timedReconcile({ metrics, log, isLeading: () => leading }, kind, fn);
  // The queues and the informers reference each other; the holder breaks the cycle.
  const queues: { policy?: WorkQueue; tenant?: WorkQueue } = {};
  const enqueueNamespace = (ns: string | undefined): void => {
    for (const p of policies.list(ns)) queues.policy?.add(key(p));
  };
  const services = new ResilientInformer<KubernetesObject>({
    kubeConfig: kc, path: '/api/v1/services', onError: onError('services'),
    list: async () => (await kc.makeApiClient(CoreV1Api).listServiceForAllNamespaces()) as KubernetesListObject<KubernetesObject>,
    onChange: (svc) => enqueueNamespace(svc.metadata?.namespace ?? ''),
  });
  // Every ApiPolicy/Tenant event also reaches the validation, which ignores status-only updates.
  const watched = (kind: 'ApiPolicy' | 'Tenant'): ResilientInformer<KubernetesObject> => new ResilientInformer({
    kubeConfig: kc, path: customPath(PLURAL[kind]), list: listCustom(kc, PLURAL[kind]), onError: onError(PLURAL[kind]),
    onChange: (o, event) => {
      validation.observe(kind, o, event);
      (kind === 'ApiPolicy' ? queues.policy : queues.tenant)?.add(key(o));
    },
  });
  const policies = watched('ApiPolicy');
  const tenants = watched('Tenant');
  // Accepted: the engine's checks over every cached policy and tenant, one compile shared by all reconciles.
  const validation = new PolicyValidation({ policies, tenants }, (k) => queues.policy?.add(k));
  const targets = await watchTargets(kc, { grantNamespace: cfg.outputs.service.namespace, onRoute: enqueueNamespace, onGrant: () => enqueueNamespace(undefined), onError });
  const deps = { caches: { policies, tenants, services, targets: targets.caches }, client, outputs: cfg.outputs, validation, log };
  const policyReconciler = new PolicyReconciler(deps);
  const policyQueue = new WorkQueue(timed('ApiPolicy', (k) => policyReconciler.reconcile(k)));
  const tenantReconciler = new TenantReconciler(deps, enqueueNamespace);
  const tenantQueue = new WorkQueue(timed('Tenant', (k) => tenantReconciler.reconcile(k)));
  queues.policy = policyQueue;
  queues.tenant = tenantQueue;

  const children = childInformers(kc, cfg, (k) => policyQueue.add(k), onError);
  const all = [policies, tenants, services, ...targets.informers, ...children];
  const http: Server = createHttpServer({ ready: () => all.every((i) => i.synced), registry: metrics.registry });
  await listen(http, cfg.httpAddress);

  const enqueueAll = (): void => {
    for (const p of policies.list()) queues.policy?.add(key(p));
    for (const t of tenants.list()) queues.tenant?.add(key(t));
  };
  const setLeading = (on: boolean): void => {
    leading = on;
    metrics.leader.set(on ? 1 : 0);
    if (on) {
      log.info({ identity: cfg.identity }, 'became leader');
      enqueueAll();
      return;
    }
    log.error({ identity: cfg.identity }, 'lost leadership');
    onLostLeadership();
  };
  const elector = cfg.leaderElect
    ? new LeaderElector(kc, { namespace: cfg.leaseNamespace, name: cfg.leaseName, identity: cfg.identity, onStartedLeading: () => setLeading(true), onStoppedLeading: () => setLeading(false) })
    : undefined;
  if (!elector) metrics.leader.set(1);
  await Promise.all(all.map((i) => i.start()));
  log.info({ outputs: cfg.outputs, leaderElect: cfg.leaderElect }, 'operator caches synced');
  if (elector) elector.start();
  else enqueueAll();
  const depthTimer = setInterval(() => {
    metrics.depth.set({ kind: 'ApiPolicy' }, policyQueue.depth);
    metrics.depth.set({ kind: 'Tenant' }, tenantQueue.depth);
  }, 1000);
  depthTimer.unref();

  return {
    httpPort: (http.address() as AddressInfo).port,
    get isLeader() {
      return leading;
    },
    stop: async () => {
      clearInterval(depthTimer);
      policyQueue.stop();
      tenantQueue.stop();
      await elector?.stop();
      await Promise.all(all.map((i) => i.stop()));
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
}
