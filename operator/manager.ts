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
import { FIELD_MANAGER, LABEL_MANAGED_BY, LABEL_POLICY, OUTPUT_KINDS } from './translate.js';

class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({ name: 'portcullis_operator_reconciles_total', help: 'Reconciles by kind and result.', labelNames: ['kind', 'result'] as const, registers: [this.registry] });
  readonly duration = new Histogram({ name: 'portcullis_operator_reconcile_duration_seconds', help: 'Reconcile duration.', labelNames: ['kind'] as const, registers: [this.registry] });
  readonly depth = new Gauge({ name: 'portcullis_operator_queue_depth', help: 'Keys waiting in the work queue.', labelNames: ['kind'] as const, registers: [this.registry] });
  readonly leader = new Gauge({ name: 'portcullis_operator_leader', help: '1 while this replica holds the Lease.', registers: [this.registry] });
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
  const timed = (kind: string, fn: (k: string) => Promise<void>) => async (k: string): Promise<void> => {
    if (!leading) return;
    const end = metrics.duration.startTimer({ kind });
    try {
      await fn(k);
      metrics.reconciles.inc({ kind, result: 'success' });
    } catch (err) {
      metrics.reconciles.inc({ kind, result: 'error' });
      log.error({ err: String(err), key: k, kind }, 'reconcile failed; retrying with backoff');
      throw err;
    } finally {
      end();
    }
  };

  let policyQueue: WorkQueue | undefined;
  const enqueueNamespace = (ns: string): void => {
    for (const p of policies.list(ns)) policyQueue?.add(key(p));
  };
  const services = new ResilientInformer<KubernetesObject>({
    kubeConfig: kc, path: '/api/v1/services', onError: onError('services'),
    list: async () => (await kc.makeApiClient(CoreV1Api).listServiceForAllNamespaces()) as KubernetesListObject<KubernetesObject>,
    onChange: (svc) => enqueueNamespace(svc.metadata?.namespace ?? ''),
  });
  const policies: ResilientInformer<KubernetesObject> = new ResilientInformer({ kubeConfig: kc, path: customPath(PLURAL.ApiPolicy), list: listCustom(kc, PLURAL.ApiPolicy), onError: onError('apipolicies'), onChange: (p) => policyQueue?.add(key(p)) });
  const tenants: ResilientInformer<KubernetesObject> = new ResilientInformer({ kubeConfig: kc, path: customPath(PLURAL.Tenant), list: listCustom(kc, PLURAL.Tenant), onError: onError('tenants'), onChange: (t) => tenantQueue.add(key(t)) });
  const deps = { caches: { policies, tenants, services }, client, outputs: cfg.outputs, log };
  const policyReconciler = new PolicyReconciler(deps);
  policyQueue = new WorkQueue(timed('ApiPolicy', (k) => policyReconciler.reconcile(k)));
  const tenantReconciler = new TenantReconciler(deps, enqueueNamespace);
  const tenantQueue = new WorkQueue(timed('Tenant', (k) => tenantReconciler.reconcile(k)));

  // Drift: an edited or deleted child re-enqueues its policy, whose reconcile applies it again.
  const objects = KubernetesObjectApi.makeApiClient(kc);
  const selector = `${LABEL_MANAGED_BY}=${FIELD_MANAGER}`;
  const enabled = OUTPUT_KINDS.filter((k) => (k.output === 'istio' ? cfg.outputs.istio : cfg.outputs.envoyGateway));
  const children = enabled.map((k) => new ResilientInformer<KubernetesObject>({
    kubeConfig: kc, path: `/apis/${k.apiVersion}/${k.plural}`, labelSelector: selector, onError: onError(k.plural),
    list: () => objects.list(k.apiVersion, k.kind, undefined, undefined, undefined, undefined, undefined, selector),
    onChange: (o) => {
      const owner = o.metadata?.labels?.[LABEL_POLICY];
      if (owner) policyQueue?.add(`${o.metadata?.namespace ?? ''}/${owner}`);
    },
  }));

  const all = [policies, tenants, services, ...children];
  const http: Server = createHttpServer({ ready: () => all.every((i) => i.synced), registry: metrics.registry });
  const [host, portText] = [cfg.httpAddress.slice(0, cfg.httpAddress.lastIndexOf(':')), cfg.httpAddress.slice(cfg.httpAddress.lastIndexOf(':') + 1)];
  await new Promise<void>((resolve) => http.listen(Number(portText), host.replace(/^\[|\]$/g, ''), resolve));

  const enqueueAll = (): void => {
    for (const p of policies.list()) policyQueue?.add(key(p));
    for (const t of tenants.list()) tenantQueue.add(key(t));
  };
  const elector = cfg.leaderElect
    ? new LeaderElector(kc, {
        namespace: cfg.leaseNamespace, name: cfg.leaseName, identity: cfg.identity,
        onStartedLeading: () => {
          leading = true;
          metrics.leader.set(1);
          log.info({ identity: cfg.identity }, 'became leader');
          enqueueAll();
        },
        onStoppedLeading: () => {
          leading = false;
          metrics.leader.set(0);
          log.error({ identity: cfg.identity }, 'lost leadership');
          onLostLeadership();
        },
      })
    : undefined;
  if (!elector) metrics.leader.set(1);
  await Promise.all(all.map((i) => i.start()));
  log.info({ outputs: cfg.outputs, leaderElect: cfg.leaderElect }, 'operator caches synced');
  if (elector) elector.start();
  else enqueueAll();
  const depthTimer = setInterval(() => {
    metrics.depth.set({ kind: 'ApiPolicy' }, policyQueue?.depth ?? 0);
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
      policyQueue?.stop();
      tenantQueue.stop();
      await elector?.stop();
      await Promise.all(all.map((i) => i.stop()));
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
}
