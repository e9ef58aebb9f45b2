/**
 * Tells the operator's own writes apart from other changes in its watch streams. Without it each
 * status write and each child it creates comes back as a watch event and re-queues its policy:
 * every policy reconciled twice on a cold start. A write is tracked from before it is sent until
 * its answer (with the new resourceVersion) arrives; an event seen meanwhile waits for that
 * answer, since the watch may deliver the event before the write's own response is read.
 */
export class OwnWrites {
  /** object key → resourceVersion our last write produced (one entry per object at most). */
  private readonly written = new Map<string, string>();
  /** object key → resourceVersions seen while our write to it was in flight. */
  private readonly inflight = new Map<string, Set<string>>();

  get size(): number {
    return this.written.size;
  }

  /**
   * Runs `write` (which resolves to the resourceVersion it produced); `requeue` runs once the
   * write settled if an event seen meanwhile was not this write's own.
   */
  async track(key: string, write: () => Promise<string | undefined>, requeue: () => void): Promise<void> {
    const seen = new Set<string>();
    this.inflight.set(key, seen);
    let rv: string | undefined;
    try {
      rv = await write();
    } finally {
      this.inflight.delete(key);
      this.settle(key, rv, seen, requeue);
    }
  }

  /** True when the event with `rv` for `key` is (or may be, awaiting its answer) our own write. */
  observe(key: string, rv: string | undefined): boolean {
    if (rv === undefined) return false;
    const seen = this.inflight.get(key);
    if (seen) {
      seen.add(rv);
      return true;
    }
    if (this.written.get(key) !== rv) return false;
    this.written.delete(key);
    return true;
  }

  forget(key: string): void {
    this.written.delete(key);
  }

  private settle(key: string, rv: string | undefined, seen: Set<string>, requeue: () => void): void {
    if (rv !== undefined && !seen.has(rv)) this.written.set(key, rv);
    else this.written.delete(key);
    for (const r of seen) {
      if (r === rv) continue;
      requeue();
      return;
    }
  }
}
