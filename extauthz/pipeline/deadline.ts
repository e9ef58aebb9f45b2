/**
 * A Check's deadline as an input: the gRPC deadline (Envoy's ext_authz timeout) or a cancelled
 * call aborts one AbortSignal, which the pipeline checks before every phase and hands to every
 * awaited call (JWKS fetch, Redis). A library call that takes no signal is raced against it: the
 * Check stops waiting, and the shared work it started (a key-set refresh) finishes for the next.
 */
import { PortcullisError } from '../errors.js';

export class DeadlineExceeded extends PortcullisError {
  constructor(what: string) {
    super('DEADLINE_EXCEEDED', `deadline exceeded ${what}`);
    this.name = 'DeadlineExceeded';
  }
}

/** Throws DeadlineExceeded when the signal has fired. */
export function checkDeadline(signal: AbortSignal | undefined, what: string): void {
  if (signal?.aborted) throw new DeadlineExceeded(what);
}

/** The promise's outcome, or DeadlineExceeded as soon as the signal fires. */
export function raceDeadline<T>(work: Promise<T>, signal: AbortSignal | undefined, what: string): Promise<T> {
  if (!signal) return work;
  if (signal.aborted) {
    work.catch(() => undefined);
    return Promise.reject(new DeadlineExceeded(what));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new DeadlineExceeded(what));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

/** A deadline signal for a call: aborts at `deadline` (epoch ms or Date; none: never) or on cancel(). */
export class CallDeadline {
  private readonly controller = new AbortController();
  private readonly shadowController = new AbortController();
  private readonly timers: NodeJS.Timeout[] = [];

  constructor(deadline: Date | number | undefined, now: number = Date.now()) {
    const at = deadline instanceof Date ? deadline.getTime() : deadline;
    if (at === undefined || !Number.isFinite(at)) return;
    const remaining = at - now;
    if (remaining <= 0) this.cancel();
    else {
      this.after(remaining, () => this.cancel());
      this.after(remaining / 2, () => this.shadowController.abort());
    }
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /**
   * The shadow evaluation's deadline: half the time the Check had, so a slow shadow (its own
   * identify, a Redis peek) is abandoned while the enforcing decision still has the other half;
   * shadow mode must never turn a decision into DEADLINE_EXCEEDED.
   */
  get shadowSignal(): AbortSignal {
    return this.shadowController.signal;
  }

  cancel(): void {
    this.shadowController.abort();
    this.controller.abort();
  }

  /** Stops the timers once the call has been answered. */
  dispose(): void {
    for (const t of this.timers) clearTimeout(t);
  }

  private after(ms: number, fn: () => void): void {
    const t = setTimeout(fn, ms);
    t.unref?.();
    this.timers.push(t);
  }
}
