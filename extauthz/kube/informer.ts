/**
 * A list+watch cache that survives API server outages. In @kubernetes/client-node 1.4 a watch
 * error stops the informer; this wrapper restarts it with exponential backoff and keeps the last
 * cache meanwhile, so consumers keep serving what they had.
 */
import { KubeConfig, makeInformer, type Informer, type KubernetesListObject, type KubernetesObject, type ObjectCache } from '@kubernetes/client-node';

export interface InformerOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  /** Watch path, e.g. /apis/portcullis.io/v1alpha1/apipolicies. */
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  onChange: (obj: T, event: 'add' | 'update' | 'delete') => void;
  onError?: (err: unknown) => void;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

export class ResilientInformer<T extends KubernetesObject> {
  private informer: (Informer<T> & ObjectCache<T>) | undefined;
  private backoff: number;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private syncedOnce = false;
  private lastGood: readonly T[] = [];

  constructor(private readonly opts: InformerOptions<T>) {
    this.backoff = opts.minBackoffMs ?? 1000;
  }

  get synced(): boolean {
    return this.syncedOnce;
  }

  /** Objects in the cache; the last synced list while the watch is down. */
  list(namespace?: string): readonly T[] {
    const items = this.informer?.list() ?? this.lastGood;
    return namespace === undefined ? items : items.filter((o) => o.metadata?.namespace === namespace);
  }

  get(name: string, namespace?: string): T | undefined {
    return this.list(namespace).find((o) => o.metadata?.name === name);
  }

  /** Resolves after the first successful list; keeps retrying until then. */
  async start(): Promise<void> {
    for (;;) {
      if (this.stopped) return;
      try {
        await this.connect();
        return;
      } catch (err) {
        this.opts.onError?.(err);
        await new Promise((r) => setTimeout(r, this.nextBackoff()));
      }
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.informer?.stop().catch(() => undefined);
  }

  private nextBackoff(): number {
    const b = this.backoff;
    this.backoff = Math.min(b * 2, this.opts.maxBackoffMs ?? 30_000);
    return b;
  }

  private async connect(): Promise<void> {
    const inf = makeInformer<T>(this.opts.kubeConfig, this.opts.path, this.opts.list, this.opts.labelSelector);
    inf.on('add', (o) => this.opts.onChange(o, 'add'));
    inf.on('update', (o) => this.opts.onChange(o, 'update'));
    inf.on('delete', (o) => this.opts.onChange(o, 'delete'));
    // ListWatch.start() resolves even when its list fails (it emits 'error' instead), so an error
    // before the start settles means "not synced": throw, and start() retries with backoff.
    let starting = true;
    let startError: unknown;
    inf.on('error', (err) => {
      if (starting) startError = err ?? new Error('list failed');
      else if (this.informer === inf) this.restart(err);
    });
    await inf.start();
    starting = false;
    if (startError !== undefined) {
      await inf.stop().catch(() => undefined);
      throw startError;
    }
    // Only a synced cache is exposed: until now list() kept answering from the last good one,
    // so a recompile during a relist never sees a half-filled (or empty) cache.
    this.informer = inf;
    this.syncedOnce = true;
    this.backoff = this.opts.minBackoffMs ?? 1000;
    this.lastGood = inf.list();
    // A relist may have dropped or changed objects: tell the consumer to recompute.
    for (const o of this.lastGood) this.opts.onChange(o, 'update');
  }

  private restart(err: unknown): void {
    if (this.stopped) return;
    this.opts.onError?.(err);
    if (this.informer) this.lastGood = this.informer.list();
    this.informer = undefined;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      void this.start();
    }, this.nextBackoff());
  }
}

export function loadKubeConfig(file?: string): KubeConfig {
  const kc = new KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  return kc;
}
