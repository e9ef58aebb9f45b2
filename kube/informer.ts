/**
 * A list+watch cache for both processes, on client-node 2.x's ListWatch. The library resumes a
 * watch from its resourceVersion, relists on 410 with proper add/update/delete diffs, and keeps
 * its cache across a restart of the same ListWatch; what it leaves to the caller is an error
 * (refused watch, failed list): it reports it and stops. This class restarts it — waiting what
 * the server's Retry-After asks, else an exponential backoff capped low enough (1 s) that a
 * change made after an API server restart arrives within seconds — and resets the backoff once a
 * list/watch succeeds. It also keeps indexes, so consumers look objects up instead of scanning.
 */
import { ListWatch, type KubeConfig, type KubernetesListObject, type KubernetesObject, type Watch } from '@kubernetes/client-node';
import { retryAfterMs } from './errors.js';
import { RetryAfterWatch, type WatchTransport } from './watch.js';

export type ChangeEvent = 'add' | 'update' | 'delete';
/** Index values of one object (e.g. the Services a policy targets as `ns/name`). */
export type IndexFn<T> = (obj: T) => readonly string[];

export interface InformerOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  /** Watch path, e.g. /apis/portcullis.io/v1alpha1/apipolicies or /api/v1/namespaces/x/services. */
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  /** `old` is the cached object an update or delete replaces. */
  onChange: (obj: T, event: ChangeEvent, old?: T) => void;
  onError?: (err: unknown) => void;
  indexes?: Readonly<Record<string, IndexFn<T>>>;
  minBackoffMs?: number;
  maxBackoffMs?: number;
  /** Longest Retry-After honoured; a larger one is clamped (a server asking for an hour is wrong). */
  maxRetryAfterMs?: number;
  /** Tests: the watch transport. */
  watch?: WatchTransport;
  /**
   * Applied to every listed and watched object before the cache sees it, so the cache (ours and
   * the library's) holds only what the consumer needs (the operator reduces Secrets this way).
   * It receives the object without metadata.managedFields unless keepManagedFields is set.
   */
  transform?: (obj: T) => T;
  /**
   * Keep metadata.managedFields in the cache. Off by default: neither process reads them, and
   * they were 40 % of an ApiPolicy's heap in the cache (one entry per field manager, each a
   * copy of the field set it owns), retained 10,000 times and walked by every major GC.
   */
  keepManagedFields?: boolean;
}

/** The object without metadata.managedFields (a copy; the argument is left as it is). */
export function withoutManagedFields<T extends KubernetesObject>(o: T): T {
  const m = o.metadata;
  if (m?.managedFields === undefined) return o;
  // A copy rather than `delete`: deleting a property leaves V8 a slower dictionary-mode object.
  const metadata: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(m)) if (k !== 'managedFields') metadata[k] = v;
  return { ...o, metadata };
}

export function objectKey(o: KubernetesObject): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}

/** value → keys of the objects carrying it. */
class Index<T> {
  private readonly byValue = new Map<string, Set<string>>();
  constructor(readonly fn: IndexFn<T>) {}

  update(key: string, old: T | undefined, obj: T | undefined): void {
    if (old) for (const v of this.fn(old)) this.remove(v, key);
    if (obj) for (const v of this.fn(obj)) this.add(v, key);
  }

  keys(value: string): ReadonlySet<string> {
    return this.byValue.get(value) ?? EMPTY;
  }

  private add(value: string, key: string): void {
    let set = this.byValue.get(value);
    if (!set) this.byValue.set(value, (set = new Set()));
    set.add(key);
  }

  private remove(value: string, key: string): void {
    const set = this.byValue.get(value);
    if (!set) return;
    set.delete(key);
    if (set.size === 0) this.byValue.delete(value);
  }
}

const EMPTY: ReadonlySet<string> = new Set();
const OBJECT_PHASES = new Set(['ADDED', 'MODIFIED', 'DELETED']);

/** The list and watch with `fn` applied to each object they deliver (not to ERROR or BOOKMARK events). */
function transformed<T extends KubernetesObject>(list: () => Promise<KubernetesListObject<T>>, transport: WatchTransport, fn: (obj: T) => T): { list: () => Promise<KubernetesListObject<T>>; watch: WatchTransport } {
  return {
    list: async () => {
      const l = await list();
      return { ...l, items: l.items.map(fn) };
    },
    watch: {
      watch: (path, params, onEvent, done) =>
        transport.watch(path, params, (phase, obj, raw) => {
          if (!OBJECT_PHASES.has(phase)) return onEvent(phase, obj, raw);
          const out = fn(obj as T);
          onEvent(phase, out, { type: phase, object: out });
        }, done),
    },
  };
}
const NAMESPACE = '\0namespace';

/** What every cached object goes through: managedFields dropped (unless kept), then the consumer's transform. */
function cacheTransform<T extends KubernetesObject>(opts: InformerOptions<T>): ((obj: T) => T) | undefined {
  const user = opts.transform;
  if (opts.keepManagedFields) return user;
  return user ? (o) => user(withoutManagedFields(o)) : withoutManagedFields;
}

export class ResilientInformer<T extends KubernetesObject> {
  private readonly lw: ListWatch<T>;
  private readonly objects = new Map<string, T>();
  private readonly indexes = new Map<string, Index<T>>();
  private backoffMs: number;
  private syncedOnce = false;
  private stopped = false;
  private starting = false;
  private startError: unknown;
  private recovering: Promise<void> | undefined;
  private wake: { timer: NodeJS.Timeout; resolve: () => void } | undefined;

  constructor(private readonly opts: InformerOptions<T>) {
    this.backoffMs = this.minBackoff;
    const transport = opts.watch ?? new RetryAfterWatch(opts.kubeConfig);
    const fn = cacheTransform(opts);
    const { list, watch } = fn ? transformed(opts.list, transport, fn) : { list: opts.list, watch: transport };
    this.lw = new ListWatch<T>(opts.path, watch as unknown as Watch, list, false, opts.labelSelector);
    this.indexes.set(NAMESPACE, new Index<T>((o) => [o.metadata?.namespace ?? '']));
    for (const [name, fn] of Object.entries(opts.indexes ?? {})) this.indexes.set(name, new Index(fn));
    this.lw.on('add', (o) => this.apply(o, 'add'));
    this.lw.on('update', (o) => this.apply(o, 'update'));
    this.lw.on('delete', (o) => this.apply(o, 'delete'));
    this.lw.on('error', (err) => this.failed(err));
  }

  get synced(): boolean {
    return this.syncedOnce;
  }

  get size(): number {
    return this.objects.size;
  }

  /** Objects in the cache (kept while the watch is down). */
  list(namespace?: string): readonly T[] {
    if (namespace === undefined) return [...this.objects.values()];
    return this.byIndex(NAMESPACE, namespace);
  }

  get(name: string, namespace?: string): T | undefined {
    return this.objects.get(`${namespace ?? ''}/${name}`);
  }

  /** Objects whose index `name` yields `value`. */
  byIndex(name: string, value: string): T[] {
    const index = this.indexes.get(name);
    if (!index) throw new Error(`informer ${this.opts.path}: no index ${name}`);
    const out: T[] = [];
    for (const k of index.keys(value)) {
      const o = this.objects.get(k);
      if (o) out.push(o);
    }
    return out;
  }

  /** How many objects index `name` maps to `value`, without building the list. */
  count(name: string, value: string): number {
    const index = this.indexes.get(name);
    if (!index) throw new Error(`informer ${this.opts.path}: no index ${name}`);
    return index.keys(value).size;
  }

  /** Resolves after the first successful list and watch; keeps retrying until then (or stop()). */
  async start(): Promise<void> {
    this.stopped = false;
    await this.connectUntilUp();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.wake) {
      clearTimeout(this.wake.timer);
      this.wake.resolve();
    }
    await this.lw.stop();
    await this.recovering;
  }

  private get minBackoff(): number {
    return this.opts.minBackoffMs ?? 250;
  }

  private apply(obj: T, event: ChangeEvent): void {
    const key = objectKey(obj);
    const old = this.objects.get(key);
    if (event === 'delete') this.objects.delete(key);
    else this.objects.set(key, obj);
    const now = event === 'delete' ? undefined : obj;
    for (const index of this.indexes.values()) index.update(key, old, now);
    this.opts.onChange(obj, event, old);
  }

  private failed(err: unknown): void {
    if (this.starting) {
      this.startError ??= err ?? new Error('list failed');
      return;
    }
    if (this.stopped || this.recovering) return;
    this.opts.onError?.(err);
    this.recovering = this.sleep(this.delayAfter(err))
      .then(() => this.connectUntilUp())
      .finally(() => (this.recovering = undefined));
  }

  private async connectUntilUp(): Promise<void> {
    while (!this.stopped) {
      const err = await this.connectOnce();
      if (err === undefined) return;
      this.opts.onError?.(err);
      await this.sleep(this.delayAfter(err));
    }
  }

  /** One ListWatch start; its error if the list or the watch request failed. */
  private async connectOnce(): Promise<unknown> {
    this.starting = true;
    this.startError = undefined;
    try {
      await this.lw.start();
    } catch (err) {
      this.startError ??= err;
    } finally {
      this.starting = false;
    }
    if (this.startError !== undefined) {
      await this.lw.stop();
      return this.startError;
    }
    this.syncedOnce = true;
    this.backoffMs = this.minBackoff;
    return undefined;
  }

  /** The server's Retry-After when it sent one, else the next exponential backoff step. */
  private delayAfter(err: unknown): number {
    const asked = retryAfterMs(err);
    if (asked !== undefined) return Math.min(asked, this.opts.maxRetryAfterMs ?? 60_000);
    const d = this.backoffMs;
    this.backoffMs = Math.min(d * 2, this.opts.maxBackoffMs ?? 1000);
    return d;
  }

  private sleep(ms: number): Promise<void> {
    if (this.stopped) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = { timer, resolve };
    });
  }
}
