/**
 * One writer at a time per namespace for the shared Istio objects (shared-objects.ts): a policy's
 * reconcile applying what it needs and the namespace pass deciding what nobody needs any more
 * must not interleave, or the pass could delete an object just applied for a policy it did not
 * see yet. Holders only write a handful of objects, so waiting is short and rare.
 */
export class NamespaceLocks {
  private readonly tails = new Map<string, Promise<void>>();

  /** Runs `fn` once every earlier holder of `namespace` has finished (whether it failed or not). */
  async run<T>(namespace: string, fn: () => Promise<T>): Promise<T> {
    const before = this.tails.get(namespace) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const tail = before.then(() => mine);
    this.tails.set(namespace, tail);
    await before;
    try {
      return await fn();
    } finally {
      release();
      // The last holder leaves no entry behind: the map stays bounded by namespaces in use.
      if (this.tails.get(namespace) === tail) this.tails.delete(namespace);
    }
  }

  /** Namespaces with a holder or a waiter (for tests and leak checks). */
  get size(): number {
    return this.tails.size;
  }
}
