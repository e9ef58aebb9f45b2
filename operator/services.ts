/**
 * Services, watched only in the namespaces where some ApiPolicy targets one: a cluster-wide
 * Service informer would cache every Service of a large cluster and wake the operator for each
 * of their changes. A namespace's informer starts when the first policy there targets a Service
 * (a reconcile waits for its first sync, bounded) and stops when the last such policy goes.
 */
import { CoreV1Api, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import { ResilientInformer } from '../kube/informer.js';

export interface ServiceWatchOptions {
  kubeConfig: KubeConfig;
  onChange: (svc: KubernetesObject) => void;
  onError: (namespace: string, err: unknown) => void;
  /** How long a reconcile waits for a namespace's first sync before failing (and retrying). */
  syncTimeoutMs?: number;
}

interface Watched {
  informer: ResilientInformer<KubernetesObject>;
  synced: Promise<void>;
}

export class NamespacedServices {
  private readonly watched = new Map<string, Watched>();
  private readonly core: CoreV1Api;

  constructor(private readonly opts: ServiceWatchOptions) {
    this.core = opts.kubeConfig.makeApiClient(CoreV1Api);
  }

  /** Namespaces watched now. */
  get namespaces(): string[] {
    return [...this.watched.keys()];
  }

  get(name: string, namespace?: string): KubernetesObject | undefined {
    return this.watched.get(namespace ?? '')?.informer.get(name, namespace);
  }

  /** Starts watching `namespace` if needed; resolves once its Services are cached. */
  async ensure(namespace: string): Promise<void> {
    let w = this.watched.get(namespace);
    if (!w) {
      const informer = new ResilientInformer<KubernetesObject>({
        kubeConfig: this.opts.kubeConfig,
        path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/services`,
        list: async () => (await this.core.listNamespacedService({ namespace })) as KubernetesListObject<KubernetesObject>,
        onChange: (svc) => this.opts.onChange(svc),
        onError: (err) => this.opts.onError(namespace, err),
      });
      w = { informer, synced: informer.start() };
      this.watched.set(namespace, w);
    }
    if (w.informer.synced) return;
    await withTimeout(w.synced, this.opts.syncTimeoutMs ?? 10_000, `Services of namespace ${namespace} not synced yet`);
  }

  async release(namespace: string): Promise<void> {
    const w = this.watched.get(namespace);
    if (!w) return;
    this.watched.delete(namespace);
    await w.informer.stop();
  }

  async stop(): Promise<void> {
    await Promise.all(this.namespaces.map((ns) => this.release(ns)));
  }
}

async function withTimeout(p: Promise<void>, ms: number, message: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  try {
    await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
