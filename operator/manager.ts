/**
 * Wires the operator: informers feed keyed work queues; the queues run the reconcilers only while
 * this replica leads; HTTP serves health, readiness and metrics. Informers run on every replica,
 * so a new leader starts with warm caches. Events are filtered before they reach a queue: the
 * operator's own status and child writes are not work, and a Service change wakes only the
 * policies that target it (an index, not a scan).
 */
import { KubernetesObjectApi, type KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { randomBytes } from 'node:crypto';
import { secretReferences } from '../extauthz/policy/tenants.js';
import { objectKey, ResilientInformer } from '../kube/informer.js';
import { sourcesFrom } from '../kube/objects.js';
import { LabelledSecrets } from '../kube/secrets.js';
import { customPath, listConfigMaps, listCustom, PLURAL, REVOCATION_LABEL, SCHEMA_LABEL } from '../kube/resources.js';
import type { OperatorConfig } from './config.js';
import { createProbeServer, listen } from './http.js';
import { childKey, OperatorClient, statusKey } from './kube-client.js';
import { LeaderElector } from './leader.js';
import { OwnWrites } from './own-writes.js';
import { WorkQueue } from './queue.js';
import { enabledOutputs, PolicyReconciler, TenantReconciler, type ReconcilerDeps } from './reconcile.js';
import { NamespacedServices } from './services.js';
import { watchTargets } from './targets.js';
import { SecretStandIns } from './secret-stand-ins.js';
import { PolicyValidation } from './validation.js';
import { FIELD_MANAGER, isShared, LABEL_MANAGED_BY, LABEL_POLICY, OUTPUT_KINDS } from './translate.js';
import { NamespaceLocks } from './namespace-lock.js';
import { SharedObjectsReconciler } from './shared-objects.js';

class OperatorMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({ name: 'portcullis_operator_reconciles_total', help: 'Reconciles by kind and result.', labelNames: ['kind', 'result'] as const, registers: [this.registry] });
  readonly duration = new Histogram({ name: 'portcullis_operator_reconcile_duration_seconds', help: 'Reconcile duration.', labelNames: ['kind'] as const, registers: [this.registry] });
  readonly depth = new Gauge({ name: 'portcullis_operator_queue_depth', help: 'Keys waiting in the work queue.', labelNames: ['kind'] as const, registers: [this.registry] });
  readonly leader = new Gauge({ name: 'portcullis_operator_leader', help: '1 while this replica holds the Lease.', registers: [this.registry] });
  readonly skipped = new Counter({ name: 'portcullis_operator_own_write_events_total', help: 'Watch events of the operator\'s own writes, not re-queued.', labelNames: ['kind'] as const, registers: [this.registry] });
  readonly serviceNamespaces = new Gauge({ name: 'portcullis_operator_service_watch_namespaces', help: 'Namespaces whose Services are watched (some policy there targets a Service).', registers: [this.registry] });
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

interface PolicyLike extends KubernetesObject {
  spec?: { targetRefs?: { kind?: string; name?: string }[] };
}

/** `ns/name` of each Service the policy targets. */
function serviceTargets(p: PolicyLike): string[] {
  const ns = p.metadata?.namespace ?? '';
  return (p.spec?.targetRefs ?? []).filter((r) => r.kind === 'Service' && r.name).map((r) => `${ns}/${r.name}`);
}

function splitKey(key: string): [string, string] {
  const i = key.indexOf('/');
  return [key.slice(0, i), key.slice(i + 1)];
}

export interface RunningOperator {
  httpPort: number;
  readonly isLeader: boolean;
  stop(): Promise<void>;
}

/** Everything runOperator builds, so its helpers can share it. */
interface Wiring {
  cfg: OperatorConfig;
  kc: KubeConfig;
  log: Logger;
  metrics: OperatorMetrics;
  own: OwnWrites;
  leading: boolean;
  /** Every informer synced: before that a reconcile would see half a cluster. */
  synced: boolean;
  policyQueue?: WorkQueue;
  tenantQueue?: WorkQueue;
  /** Namespaces whose shared Istio objects need a pass (shared-objects.ts). */
  sharedQueue?: WorkQueue;
  /** Sees every ApiPolicy and Tenant event (it ignores status-only ones itself). */
  validation?: PolicyValidation;
}

function enqueue(w: Wiring, queue: 'policyQueue' | 'tenantQueue' | 'sharedQueue', key: string): void {
  // Without Istio outputs there are no shared objects, and no pass to run.
  if (queue === 'sharedQueue' && !w.cfg.outputs.istio) return;
  if (w.leading && w.synced) w[queue]?.add(key);
}

/** True when the event is the echo of our own write (counted, not queued). */
function ownEcho(w: Wiring, kind: string, key: string, o: KubernetesObject): boolean {
  if (!w.own.observe(key, o.metadata?.resourceVersion)) return false;
  w.metrics.skipped.inc({ kind });
  return true;
}

function onError(w: Wiring, what: string): (err: unknown) => void {
  return (err) => w.log.warn({ err: String(err), what }, 'list/watch failed; retrying');
}

/**
 * Drift: an edited or deleted child re-enqueues its policy, whose reconcile applies it again; a
 * shared object re-enqueues its namespace's pass.
 */
function childInformers(w: Wiring): Map<string, ResilientInformer<KubernetesObject>> {
  const objects = KubernetesObjectApi.makeApiClient(w.kc);
  const selector = `${LABEL_MANAGED_BY}=${FIELD_MANAGER}`;
  const outputs = enabledOutputs(w.cfg.outputs);
  const enabled = OUTPUT_KINDS.filter((k) => outputs.has(k.output));
  const owner = (o: KubernetesObject): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.labels?.[LABEL_POLICY] ?? ''}`;
  const informers = new Map<string, ResilientInformer<KubernetesObject>>();
  for (const k of enabled) {
    informers.set(k.kind, new ResilientInformer<KubernetesObject>({
      kubeConfig: w.kc, path: `/apis/${k.apiVersion}/${k.plural}`, labelSelector: selector, onError: onError(w, k.plural),
      list: () => objects.list(k.apiVersion, k.kind, undefined, undefined, undefined, undefined, undefined, selector),
      indexes: isShared(k) ? {} : { owner: (o) => [owner(o)] },
      onChange: (o, event) => {
        const key = childKey({ ...o, apiVersion: k.apiVersion, kind: k.kind });
        if (event === 'delete') w.own.forget(key);
        else if (ownEcho(w, k.kind, key, o)) return;
        if (isShared(k)) enqueue(w, 'sharedQueue', o.metadata?.namespace ?? '');
        else if (o.metadata?.labels?.[LABEL_POLICY]) enqueue(w, 'policyQueue', owner(o));
      },
    }));
  }
  return informers;
}

function policyInformer(w: Wiring, onTargetsChanged: (namespace: string) => void): ResilientInformer<PolicyLike> {
  return new ResilientInformer<PolicyLike>({
    kubeConfig: w.kc, path: customPath(PLURAL.ApiPolicy), list: listCustom<PolicyLike>(w.kc, PLURAL.ApiPolicy), onError: onError(w, 'apipolicies'),
    indexes: { service: serviceTargets, serviceNamespace: (p) => (serviceTargets(p).length > 0 ? [p.metadata?.namespace ?? ''] : []) },
    onChange: (p, event) => {
      w.validation?.observe('ApiPolicy', p, event);
      const ns = p.metadata?.namespace ?? '';
      const sk = statusKey(PLURAL.ApiPolicy, ns, p.metadata?.name ?? '');
      if (event !== 'add') onTargetsChanged(ns);
      if (event === 'delete') {
        w.own.forget(sk); // its own children go with it (ownerReferences); shared ones may not
        enqueue(w, 'sharedQueue', ns);
        return;
      }
      if (ownEcho(w, 'ApiPolicy', sk, p)) return;
      enqueue(w, 'policyQueue', objectKey(p));
      // A new policy applies what it needs itself; an edit may leave a shared object unneeded.
      if (event === 'update') enqueue(w, 'sharedQueue', ns);
    },
  });
}

/** `ns/name` of each Secret the tenant names: a Secret event wakes exactly these tenants. */
function tenantSecrets(t: KubernetesObject): string[] {
  const [tenant] = sourcesFrom([], [t], []).tenants;
  return tenant ? secretReferences(tenant).map((r) => r.secret) : [];
}

function tenantInformer(w: Wiring, enqueueNamespace: (ns: string) => void): ResilientInformer<KubernetesObject> {
  return new ResilientInformer<KubernetesObject>({
    kubeConfig: w.kc, path: customPath(PLURAL.Tenant), list: listCustom(w.kc, PLURAL.Tenant), onError: onError(w, 'tenants'),
    indexes: { secret: tenantSecrets },
    onChange: (t, event) => {
      w.validation?.observe('Tenant', t, event);
      if (event !== 'delete' && ownEcho(w, 'Tenant', statusKey(PLURAL.Tenant, t.metadata?.namespace ?? '', t.metadata?.name ?? ''), t)) return;
      if (event !== 'delete') enqueue(w, 'tenantQueue', objectKey(t));
      // The namespace's policies validate against its tenants.
      enqueueNamespace(t.metadata?.namespace ?? '');
    },
  });
}

/** Revocation ConfigMaps (label-selected): a change re-validates and re-enqueues the namespace's tenants. */
function revocationConfigMapInformer(w: Wiring, tenants: ResilientInformer<KubernetesObject>): ResilientInformer<KubernetesObject> {
  return new ResilientInformer<KubernetesObject>({
    kubeConfig: w.kc, path: '/api/v1/configmaps', labelSelector: REVOCATION_LABEL, list: listConfigMaps(w.kc, REVOCATION_LABEL), onError: onError(w, 'configmaps'),
    onChange: (c) => {
      w.validation?.observeConfigMap();
      for (const t of tenants.list(c.metadata?.namespace ?? '')) enqueue(w, 'tenantQueue', objectKey(t));
      // A tenant refused or accepted again changes which workloads agencies reach (PeerAuthentication).
      enqueue(w, 'sharedQueue', c.metadata?.namespace ?? '');
    },
  });
}

/**
 * The label-selected Secrets ext_authz reads (kube/secrets.ts), cached as stand-ins that hold no
 * value (secret-stand-ins.ts): a change re-validates, and re-enqueues exactly the tenants naming it.
 */
function secretInformers(w: Wiring, tenants: ResilientInformer<KubernetesObject>): LabelledSecrets {
  const standIns = new SecretStandIns(randomBytes(32));
  return new LabelledSecrets({
    kubeConfig: w.kc, onError: onError(w, 'secrets'), transform: (s) => standIns.reduce(s),
    ...(w.cfg.secretNamespaces ? { namespaces: w.cfg.secretNamespaces } : {}),
    onChange: (s) => {
      w.validation?.observeSecret();
      for (const t of tenants.byIndex('secret', objectKey(s))) {
        enqueue(w, 'tenantQueue', objectKey(t));
        enqueue(w, 'sharedQueue', t.metadata?.namespace ?? ''); // as for revocation ConfigMaps
      }
    },
  });
}

/** Body-schema ConfigMaps (label-selected): a change re-validates and re-enqueues the namespace's policies. */
function schemaConfigMapInformer(w: Wiring, enqueueNamespace: (ns: string) => void): ResilientInformer<KubernetesObject> {
  return new ResilientInformer<KubernetesObject>({
    kubeConfig: w.kc, path: '/api/v1/configmaps', labelSelector: SCHEMA_LABEL, list: listConfigMaps(w.kc, SCHEMA_LABEL), onError: onError(w, 'configmaps'),
    onChange: (c) => {
      w.validation?.observeConfigMap();
      enqueueNamespace(c.metadata?.namespace ?? '');
    },
  });
}

/** The ConfigMaps and (with verifySecrets) Secrets that tenants and policies name. */
function referencedObjects(w: Wiring, tenants: ResilientInformer<KubernetesObject>, enqueueNamespace: (ns: string) => void): { configMaps: ResilientInformer<KubernetesObject>; schemas: ResilientInformer<KubernetesObject>; secrets?: LabelledSecrets } {
  const secrets = w.cfg.verifySecrets ? secretInformers(w, tenants) : undefined;
  return { configMaps: revocationConfigMapInformer(w, tenants), schemas: schemaConfigMapInformer(w, enqueueNamespace), ...(secrets ? { secrets } : {}) };
}

function leaderElector(w: Wiring, enqueueAll: () => void, onLostLeadership: () => void): LeaderElector | undefined {
  const setLeading = (on: boolean): void => {
    w.leading = on;
    w.metrics.leader.set(on ? 1 : 0);
    if (on) {
      w.log.info({ identity: w.cfg.identity }, 'became leader');
      enqueueAll();
      return;
    }
    w.log.error({ identity: w.cfg.identity }, 'lost leadership');
    onLostLeadership();
  };
  if (!w.cfg.leaderElect) return undefined;
  return new LeaderElector(w.kc, { namespace: w.cfg.leaseNamespace, name: w.cfg.leaseName, identity: w.cfg.identity, onStartedLeading: () => setLeading(true), onStoppedLeading: () => setLeading(false) });
}

/** The client with the caches it reads instead of the API server, and where a raced write re-queues. */
function operatorClient(w: Wiring, policies: ResilientInformer<PolicyLike>, tenants: ResilientInformer<KubernetesObject>, children: Map<string, ResilientInformer<KubernetesObject>>): OperatorClient {
  return new OperatorClient(w.kc, {
    own: w.own,
    children: (kind, ns, policy) => children.get(kind)?.byIndex('owner', `${ns}/${policy}`) ?? [],
    child: (kind, ns, name) => children.get(kind)?.get(name, ns),
    inNamespace: (kind, ns) => children.get(kind)?.list(ns) ?? [],
    requeueShared: (ns) => enqueue(w, 'sharedQueue', ns),
    cached: (plural, ns, name) => (plural === PLURAL.ApiPolicy ? policies : tenants).get(name, ns),
    requeue: (plural, ns, name) => enqueue(w, plural === PLURAL.Tenant ? 'tenantQueue' : 'policyQueue', `${ns}/${name}`),
  });
}

/** The work queues and their reconcilers; each reconcile runs only while this replica leads. */
function workQueues(w: Wiring, deps: ReconcilerDeps, policies: ResilientInformer<PolicyLike>, services: NamespacedServices): void {
  const { cfg, log } = w;
  const policyReconciler = new PolicyReconciler(deps);
  const sharedReconciler = new SharedObjectsReconciler(deps);
  const tenantReconciler = new TenantReconciler(deps, () => undefined); // tenant events enqueue the namespace themselves
  const timed = (kind: string, fn: (k: string) => Promise<void>): ((k: string) => Promise<void>) => timedReconcile({ metrics: w.metrics, log, isLeading: () => w.leading }, kind, fn);
  w.policyQueue = new WorkQueue(timed('ApiPolicy', async (k) => {
    const [ns, name] = splitKey(k);
    const p = policies.get(name, ns);
    if (p && serviceTargets(p).length > 0) await services.ensure(ns);
    await policyReconciler.reconcile(k);
  }), { workers: cfg.workers });
  w.tenantQueue = new WorkQueue(timed('Tenant', (k) => tenantReconciler.reconcile(k)), { workers: Math.min(cfg.workers, 4) });
  w.sharedQueue = new WorkQueue(timed('Namespace', async (ns) => {
    if (policies.count('serviceNamespace', ns) > 0) await services.ensure(ns);
    await sharedReconciler.reconcile(ns);
  }), { workers: Math.min(cfg.workers, 4) });
}

export async function runOperator(cfg: OperatorConfig, kc: KubeConfig, log: Logger, onLostLeadership: () => void): Promise<RunningOperator> {
  const w: Wiring = { cfg, kc, log, metrics: new OperatorMetrics(), own: new OwnWrites(), leading: !cfg.leaderElect, synced: false };
  const enqueueNamespace = (ns: string): void => {
    for (const p of policies.list(ns)) enqueue(w, 'policyQueue', objectKey(p));
    enqueue(w, 'sharedQueue', ns);
  };
  const services = new NamespacedServices({
    kubeConfig: kc,
    onChange: (svc) => {
      for (const p of policies.byIndex('service', objectKey(svc))) enqueue(w, 'policyQueue', objectKey(p));
      enqueue(w, 'sharedQueue', svc.metadata?.namespace ?? '');
    },
    onError: (namespace, err) => log.warn({ err: String(err), what: 'services', namespace }, 'list/watch failed; retrying'),
  });
  const releaseServices = (ns: string): void => {
    if (policies.count('serviceNamespace', ns) === 0) void services.release(ns);
  };
  const policies = policyInformer(w, releaseServices);
  const tenants = tenantInformer(w, enqueueNamespace);
  const children = childInformers(w);
  const { configMaps, schemas, secrets } = referencedObjects(w, tenants, enqueueNamespace);
  // Accepted: the engine's PolicyStore over every cached policy and tenant, shared by all reconciles.
  // A verdict changed by another object's edit: the policy's status follows, and a refusal that
  // held back the namespace's deletions may have cleared.
  w.validation = new PolicyValidation({ policies, tenants, configMaps: { list: () => [...configMaps.list(), ...schemas.list()] }, ...(secrets ? { secrets } : {}) }, (k) => {
    enqueue(w, 'policyQueue', k);
    enqueue(w, 'sharedQueue', splitKey(k)[0]);
  });
  const targets = await watchTargets(kc, {
    grantNamespace: cfg.outputs.service.namespace,
    onRoute: enqueueNamespace,
    onGrant: () => {
      for (const p of policies.list()) enqueue(w, 'policyQueue', objectKey(p));
    },
    onError: (what) => onError(w, what),
  });
  const client = operatorClient(w, policies, tenants, children);
  const deps = { caches: { policies, tenants, services, targets: targets.caches }, client, outputs: cfg.outputs, validation: w.validation, locks: new NamespaceLocks(), log };
  workQueues(w, deps, policies, services);

  const all = [policies, tenants, configMaps, schemas, ...(secrets?.informers ?? []), ...targets.informers, ...children.values()];
  const http: Server = createProbeServer(() => all.every((i) => i.synced), w.metrics.registry);
  await listen(http, cfg.httpAddress);

  const enqueueAll = (): void => {
    // Namespaces first: their passes (beside the policy queue, apart from it by the namespace
    // lock) usually write a cold start's shared objects before most policy reconciles get there.
    const namespaces = new Set([...policies.list(), ...[...children.values()].flatMap((i) => i.list())].map((o) => o.metadata?.namespace ?? ''));
    for (const ns of namespaces) enqueue(w, 'sharedQueue', ns);
    for (const p of policies.list()) enqueue(w, 'policyQueue', objectKey(p));
    for (const t of tenants.list()) enqueue(w, 'tenantQueue', objectKey(t));
  };
  const elector = leaderElector(w, enqueueAll, onLostLeadership);
  w.metrics.leader.set(elector ? 0 : 1);
  await Promise.all(all.map((i) => i.start()));
  w.synced = true;
  log.info({ outputs: cfg.outputs, leaderElect: cfg.leaderElect, policies: policies.size, tenants: tenants.size, verifySecrets: cfg.verifySecrets }, 'operator caches synced');
  if (elector) elector.start();
  else enqueueAll();
  const gauges = setInterval(() => {
    w.metrics.depth.set({ kind: 'ApiPolicy' }, w.policyQueue?.depth ?? 0);
    w.metrics.depth.set({ kind: 'Tenant' }, w.tenantQueue?.depth ?? 0);
    w.metrics.depth.set({ kind: 'Namespace' }, w.sharedQueue?.depth ?? 0);
    w.metrics.serviceNamespaces.set(services.namespaces.length);
  }, 1000);
  gauges.unref();

  return {
    httpPort: (http.address() as AddressInfo).port,
    get isLeader() {
      return w.leading;
    },
    stop: async () => {
      clearInterval(gauges);
      w.policyQueue?.stop();
      w.tenantQueue?.stop();
      w.sharedQueue?.stop();
      await elector?.stop();
      await Promise.all([...all.map((i) => i.stop()), services.stop()]);
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
}
