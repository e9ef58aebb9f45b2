/**
 * An immutable, compiled view of all policies, swapped atomically on reload. Routing: an Envoy
 * context extension portcullis.io/policy=namespace/name selects a policy directly; otherwise the
 * host (exact, then the longest *. wildcard) and the path choose among the policies of that host,
 * oldest first. Two policies claiming the same host and path: the older wins, the newer is reported.
 */
import { PolicyError } from '../errors.js';
import { HostIndex } from './hosts.js';
import { matchPath } from './paths.js';
import type { CompiledPolicy } from './compile.js';
import type { TenantDirectory } from './tenants.js';

export const POLICY_CONTEXT_KEY = 'portcullis.io/policy';

export class PolicySnapshot {
  readonly byKey = new Map<string, CompiledPolicy>();
  readonly conflicts: PolicyError[] = [];
  private readonly hosts = new HostIndex<CompiledPolicy>();
  readonly createdAt = new Date();

  constructor(
    readonly version: number,
    policies: readonly CompiledPolicy[],
    readonly tenants: ReadonlyMap<string, TenantDirectory>,
  ) {
    const ordered = [...policies].sort((a, b) => (a.age < b.age ? -1 : a.age > b.age ? 1 : 0));
    for (const p of ordered) {
      this.byKey.set(p.key, p);
      for (const h of p.hosts) this.hosts.add(h, p);
    }
    this.findConflicts(ordered);
  }

  get policies(): IterableIterator<CompiledPolicy> {
    return this.byKey.values();
  }

  get size(): number {
    return this.byKey.size;
  }

  /** The policy that decides a request, or undefined (deny by default). */
  route(host: string, segments: readonly string[], contextExtensions: Readonly<Record<string, string>>): CompiledPolicy | undefined {
    const named = contextExtensions[POLICY_CONTEXT_KEY];
    if (named !== undefined) return this.byKey.get(named);
    const candidates = this.hosts.lookup(host);
    if (candidates.length <= 1) return candidates[0];
    return candidates.find((p) => coversPath(p, segments)) ?? candidates[0];
  }

  private findConflicts(ordered: readonly CompiledPolicy[]): void {
    const claims = new Map<string, string>();
    for (const p of ordered) {
      const reported = new Set<string>();
      for (const { host, shape, claim } of hostPathClaims(p)) {
        const owner = claims.get(claim);
        if (owner === undefined) claims.set(claim, p.key);
        else if (owner !== p.key && !reported.has(claim)) {
          reported.add(claim);
          this.conflicts.push(
            new PolicyError('POLICY_INVALID', `host ${host} path ${shape} is already claimed by the older policy ${owner}, which wins`, { object: `ApiPolicy ${p.key}`, path: '/spec/hosts' }),
          );
        }
      }
    }
  }
}

/** Every host × path shape a policy claims, hosts in order, as "host shape". */
function hostPathClaims(p: CompiledPolicy): { host: string; shape: string; claim: string }[] {
  const shapes = [...pathShapes(p)];
  return p.hosts.flatMap((host) => shapes.map((shape) => ({ host, shape, claim: `${host} ${shape}` })));
}

function coversPath(p: CompiledPolicy, segments: readonly string[]): boolean {
  return p.rules.some((r) => !r.paths || r.paths.some((t) => matchPath(t, segments) !== undefined));
}

function pathShapes(p: CompiledPolicy): Set<string> {
  const shapes = new Set<string>();
  for (const r of p.rules) {
    if (!r.paths) shapes.add('/**');
    else for (const t of r.paths) shapes.add(t.shape);
  }
  return shapes;
}
