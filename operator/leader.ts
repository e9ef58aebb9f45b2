/**
 * Leader election on a coordination.k8s.io Lease: only the holder reconciles and writes. A
 * candidate takes the Lease when it is free or expired; the holder renews it well before it
 * expires and, when a renewal fails past the deadline, stops leading (the process exits so it
 * restarts as a follower, as controller-runtime does).
 */
import { CoordinationV1Api, type KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { httpCode } from '../kube/errors.js';

export interface LeaderOptions {
  namespace: string;
  name: string;
  identity: string;
  leaseSeconds?: number;
  retryMs?: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  now?: () => Date;
}

export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export class LeaderElector {
  private readonly api: CoordinationV1Api;
  private leading = false;
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  private lastRenew = 0;

  constructor(
    kc: KubeConfig,
    private readonly opts: LeaderOptions,
  ) {
    this.api = kc.makeApiClient(CoordinationV1Api);
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

  private now(): Date {
    return (this.opts.now ?? (() => new Date()))();
  }

  private get leaseSeconds(): number {
    return this.opts.leaseSeconds ?? 15;
  }

  private async tick(): Promise<void> {
    if (this.stopped) return;
    try {
      const held = await this.tryAcquireOrRenew();
      if (held) this.lastRenew = this.now().getTime();
      this.transition(held);
    } catch {
      // A failed renewal keeps leadership only until the lease would have expired.
      if (this.leading && this.now().getTime() - this.lastRenew > this.leaseSeconds * 1000 * 0.8) this.transition(false);
    }
    this.timer = setTimeout(() => void this.tick(), this.opts.retryMs ?? 2000);
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
    const now = microTime(this.now());
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { ...(base?.metadata ?? {}), name: this.opts.name, namespace: this.opts.namespace },
      spec: {
        holderIdentity: this.opts.identity,
        leaseDurationSeconds: this.leaseSeconds,
        renewTime: now,
        acquireTime: acquire ? now : base?.spec?.acquireTime ? microTime(new Date(base.spec.acquireTime as unknown as string)) : now,
        leaseTransitions: (base?.spec?.leaseTransitions ?? 0) + (acquire ? 1 : 0),
      },
    } as unknown as V1Lease;
  }

  private expired(lease: V1Lease): boolean {
    const renewed = lease.spec?.renewTime ? new Date(lease.spec.renewTime as unknown as string).getTime() : 0;
    return renewed + (lease.spec?.leaseDurationSeconds ?? this.leaseSeconds) * 1000 < this.now().getTime();
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { name, namespace, identity } = this.opts;
    let lease: V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (err) {
      if (httpCode(err) !== 404) throw err;
      await this.api.createNamespacedLease({ namespace, body: this.desired(undefined, true) });
      return true;
    }
    const holder = lease.spec?.holderIdentity;
    if (holder && holder !== identity && !this.expired(lease)) return false;
    try {
      // resourceVersion in the body makes this a compare-and-swap: a concurrent winner gets 409 for us.
      await this.api.replaceNamespacedLease({ name, namespace, body: this.desired(lease, holder !== identity) });
      return true;
    } catch (err) {
      if (httpCode(err) === 409) return false;
      throw err;
    }
  }
}
