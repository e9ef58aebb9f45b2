/**
 * Applies one compiled mask to a document in a single depth-first walk, transforming each
 * selected value where it is found: no list of locations, no intermediate arrays (the
 * select()-then-apply approach allocated two objects per visited node and dominated GC).
 *
 * Same result as select() followed by applying the transform to every location in order:
 * locations are visited outer before inner and a replaced value is not walked into (transforms
 * return scalars or REMOVE, so anything inside a replaced value was detached anyway).
 *
 * Removals never `delete`: an array element is marked and the array compacted afterwards, an
 * object member is marked and the object rebuilt without it (deleting turns V8 objects into
 * slow dictionaries, which JSON.stringify and later masks then pay for).
 */
import { REMOVE, type Transform } from './actions.js';
import type { PathStep } from './path.js';

type Container = Record<string, unknown> | unknown[];

/** Where a container hangs: its parent and the member name or index there. */
type Slot = readonly [Container, string | number];

/** A marked object and where it hangs, so its rebuilt copy can replace it. */
interface Marked {
  obj: Record<string, unknown>;
  slot: Slot;
}

/** Defines an own member even for names like __proto__, which plain assignment would not. */
export function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

function isContainer(v: unknown): v is Container {
  return typeof v === 'object' && v !== null;
}

/** The container members of node, last first, so the stack visits them in document order. */
function pushChildren(node: Container, nodes: Container[], slots: Slot[]): void {
  const push = (v: unknown, key: string | number): void => {
    if (!isContainer(v)) return;
    nodes.push(v);
    slots.push([node, key]);
  };
  if (Array.isArray(node)) for (let k = node.length - 1; k >= 0; k--) push(node[k], k);
  else {
    const keys = Object.keys(node);
    for (let k = keys.length - 1; k >= 0; k--) push(node[keys[k]!], keys[k]!);
  }
}

class MaskWalk {
  /** Values the path selected (and the transform saw). */
  hits = 0;
  private readonly arrays = new Set<unknown[]>();
  private readonly objects: Marked[] = [];
  private readonly marked = new Set<object>();

  constructor(
    private readonly steps: readonly PathStep[],
    private readonly transform: Transform,
  ) {}

  /** Transforms node[key], where node hangs at `slot`. */
  private hit(node: Container, key: string | number, slot: Slot): void {
    const c = node as Record<string | number, unknown>;
    this.hits++;
    const next = this.transform(c[key]);
    c[key] = next;
    if (next !== REMOVE) return;
    if (Array.isArray(node)) this.arrays.add(node);
    else if (!this.marked.has(node)) {
      this.marked.add(node);
      this.objects.push({ obj: node, slot });
    }
  }

  /** Steps i.. evaluated at node[key] (the step selected that member). */
  private at(node: Container, key: string | number, i: number, slot: Slot): void {
    if (i === this.steps.length - 1) return this.hit(node, key, slot);
    const v = (node as Record<string | number, unknown>)[key];
    if (isContainer(v)) this.step(v, i + 1, [node, key]);
  }

  /** Evaluates steps[i] on `node`, which hangs at `slot`. */
  step(node: Container, i: number, slot: Slot): void {
    const s = this.steps[i]!;
    switch (s.kind) {
      case 'key':
        if (!Array.isArray(node) && Object.hasOwn(node, s.name)) this.at(node, s.name, i, slot);
        return;
      case 'index':
        if (Array.isArray(node) && s.index < node.length) this.at(node, s.index, i, slot);
        return;
      case 'wild':
        if (Array.isArray(node)) for (let k = 0, n = node.length; k < n; k++) this.at(node, k, i, slot);
        else for (const k of Object.keys(node)) this.at(node, k, i, slot);
        return;
      case 'descend':
        this.descend(node, s.name, i, slot);
    }
  }

  /** Every member `name` at or below node, outer before inner; iterative, so depth cannot overflow the stack. */
  private descend(root: Container, name: string, i: number, rootSlot: Slot): void {
    const nodes: Container[] = [root];
    const slots: Slot[] = [rootSlot];
    while (nodes.length > 0) {
      const node = nodes.pop()!;
      const slot = slots.pop()!;
      if (!Array.isArray(node) && Object.hasOwn(node, name)) this.at(node, name, i, slot);
      // Read after the match was handled: a replaced value is not walked into.
      pushChildren(node, nodes, slots);
    }
  }

  /** Rebuilds marked objects (inner first, so outer copies take the rebuilt inner ones), then compacts arrays. */
  finish(): void {
    for (let j = this.objects.length - 1; j >= 0; j--) {
      const { obj, slot } = this.objects[j]!;
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(obj)) {
        const v = obj[k];
        if (v === REMOVE) continue;
        if (k === '__proto__') setOwn(out, k, v);
        else out[k] = v;
      }
      (slot[0] as Record<string | number, unknown>)[slot[1]] = out;
    }
    for (const a of this.arrays) {
      let w = 0;
      for (let r = 0; r < a.length; r++) if (a[r] !== REMOVE) a[w++] = a[r];
      a.length = w;
    }
  }
}

/** Applies one mask (its path's steps and transform) to doc; returns the document (possibly a new root object). */
export function applyMask(doc: unknown, steps: readonly PathStep[], transform: Transform): unknown {
  return applyMaskCounted(doc, steps, transform).doc;
}

/** applyMask, and how many values the path selected (0: the mask matched nothing). */
export function applyMaskCounted(doc: unknown, steps: readonly PathStep[], transform: Transform): { doc: unknown; hits: number } {
  if (!isContainer(doc) || steps.length === 0) return { doc, hits: 0 };
  const holder: unknown[] = [doc];
  const walk = new MaskWalk(steps, transform);
  walk.step(doc, 0, [holder, 0]);
  walk.finish();
  return { doc: holder[0], hits: walk.hits };
}
