/**
 * Leader election on a coordination.k8s.io Lease: only the holder reconciles and writes. As in
 * client-go, a candidate judges the Lease by the API server's view, not by comparing the
 * renewTime another replica wrote with its own clock (replicas' clocks differ): it remembers the
 * Lease's resourceVersion and when (on its own monotonic clock) that last changed, and takes the
 * Lease only after it has stayed unchanged for leaseDurationSeconds. Every write is a
 * compare-and-swap on resourceVersion. The holder renews every retry period; when no renewal has
 * succeeded for the renew deadline it stops leading (the process exits and restarts as a
 * follower, as controller-runtime does).
 */
import { CoordinationV1Api, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { performance } from 'node:perf_hooks';
import { httpCode } from '../kube/errors.js';

/** The Lease calls the elector makes (CoordinationV1Api; tests pass their own). */
export interface LeaseApi {
  readNamespacedLease(p: { name: string; namespace: string }): Promise<V1Lease>;
  createNamespacedLease(p: { namespace: string; body: V1Lease }): Promise<V1Lease>;
  replaceNamespacedLease(p: { name: string; namespace: string; body: V1Lease }): Promise<V1Lease>;
}

export interface LeaderOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseSeconds?: number;
  /** Stop leading when no renewal succeeded for this long (< leaseSeconds). */
  renewDeadlineSeconds?: number;
  retryMs?: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  /** Wall clock, only for the times written into the Lease (informational for humans). */
  now?: () => Date;
  /** Monotonic milliseconds, for every decision. */
  monotonic?: () => number;
  api?: LeaseApi;
}

export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  private readonly api: LeaseApi;
  private leading = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private lastRenew = 0;
  /** The Lease as last seen: its resourceVersion and when (monotonic) it last changed. */
  private observed: { rv: string; at: number } | undefined;

  constructor(
    kc: KubeConfig | undefined,
    private readonly opts: LeaderOptions,
  ) {
    this.api = opts.api ?? kc!.makeApiClient(CoordinationV1Api);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  start(): void {
    void this.tick();
  }

  /** Releases the lease if held, so a successor does not wait for expiry. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    if (!this.leading) return;
    try {
      const lease = await this.api.readNamespacedLease({ name: this.opts.name, namespace: this.opts.namespace });
      if (lease.spec?.holderIdentity === this.opts.identity) {
        lease.spec.holderIdentity = undefined;
        lease.spec.renewTime = undefined;
        lease.spec.acquireTime = undefined;
        await this.api.replaceNamespacedLease({ name: this.opts.name, namespace: this.opts.namespace, body: lease });
      }
    } catch {
      /* best effort */
    }
  }

  private mono(): number {
    return (this.opts.monotonic ?? (() => performance.now()))();
  }

  private get leaseMs(): number {
    return (this.opts.leaseSeconds ?? 15) * 1000;
  }

  /** One round; returns when the next is scheduled (tests await it). */
  async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      const held = await this.tryAcquireOrRenew();
      if (held) this.lastRenew = this.mono();
      this.transition(held);
    } catch {
      // A failed renewal keeps leadership only until the renew deadline.
      if (this.leading && this.mono() - this.lastRenew > (this.opts.renewDeadlineSeconds ?? 10) * 1000) this.transition(false);
    }
    if (!this.stopped) this.timer = setTimeout(() => void this.tick(), this.opts.retryMs ?? 2000);
  }

  private transition(held: boolean): void {
    if (held && !this.leading) {
      this.leading = true;
      this.opts.onStartedLeading();
    } else if (!held && this.leading) {
      this.leading = false;
      this.opts.onStoppedLeading();
    }
  }

  private desired(base: V1Lease | undefined, acquire: boolean): V1Lease {
    // Lease times are MicroTime: the API server rejects the millisecond form Date would produce.
    const now = microTime((this.opts.now ?? (() => new Date()))());
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { ...(base?.metadata ?? {}), name: this.opts.name, namespace: this.opts.namespace },
      spec: {
        holderIdentity: this.opts.identity,
        leaseDurationSeconds: this.leaseMs / 1000,
        renewTime: now,
        acquireTime: acquire ? now : base?.spec?.acquireTime ? microTime(new Date(base.spec.acquireTime as unknown as string)) : now,
        leaseTransitions: (base?.spec?.leaseTransitions ?? 0) + (acquire ? 1 : 0),
      },
    } as unknown as V1Lease;
  }

  /** Records a change of the Lease as seen from the server; returns how long it has been unchanged. */
  private unchangedFor(lease: V1Lease): number {
    const rv = lease.metadata?.resourceVersion ?? '';
    if (this.observed?.rv !== rv) this.observed = { rv, at: this.mono() };
    return this.mono() - this.observed.at;
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { name, namespace, identity } = this.opts;
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (httpCode(err) !== 404) throw err;
      return this.write(() => this.api.createNamespacedLease({ namespace, body: this.desired(undefined, true) }));
    }
    const unchanged = this.unchangedFor(lease);
    const holder = lease.spec?.holderIdentity;
    const duration = (lease.spec?.leaseDurationSeconds ?? this.leaseMs / 1000) * 1000;
    if (holder && holder !== identity && unchanged < duration) return false;
    // resourceVersion in the body makes this a compare-and-swap: a concurrent winner gets 409 for us.
    return this.write(() => this.api.replaceNamespacedLease({ name, namespace, body: this.desired(lease, holder !== identity) }));
  }

  private async write(send: () => Promise<V1Lease>): Promise<boolean> {
    try {
      const written = await send();
      this.observed = { rv: written.metadata?.resourceVersion ?? '', at: this.mono() };
      return true;
    } catch (err) {
      if (httpCode(err) === 409) return false;
      throw err;
    }
  }
}
