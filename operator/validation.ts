/**
 * Accepted uses the engine's full checks: every ApiPolicy and Tenant the operator caches is
 * compiled together with `compileSources`, the API ext_authz loads them with, so cross-object
 * problems (hosts claimed twice, and whatever else the engine checks across objects) reach
 * status exactly as the data plane sees them. One compile is shared by every reconcile until a
 * spec changes; status-only updates (the operator's own writes) do not invalidate it. When a
 * recompile changes another object's problems, that object is re-enqueued, so a conflict shows
 * on both policies and clears on both.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { compileSources } from '../extauthz/policy/compile.js';
import { JwksCache, TenantDirectory } from '../extauthz/policy/tenants.js';
import { sourcesFrom } from '../extauthz/kube/policy-source.js';
import type { PolicyError } from '../extauthz/errors.js';

interface Lister {
  list(ns?: string): readonly KubernetesObject[];
}

export interface ValidationSources {
  policies: Lister;
  tenants: Lister;
}

interface Compiled {
  policies: Map<string, string[]>;
  tenants: Map<string, string[]>;
  directories: ReadonlyMap<string, TenantDirectory>;
}

function format(problems: readonly PolicyError[] | undefined): string[] {
  return (problems ?? []).map((p) => p.format().replace(/^(ApiPolicy|Tenant) \S+ /, ''));
}

function formatAll(m: ReadonlyMap<string, PolicyError[]>): Map<string, string[]> {
  return new Map([...m].map(([k, v]) => [k, format(v)]));
}

function key(o: KubernetesObject): string {
  return `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
}

function same(a: readonly string[] | undefined, b: readonly string[] | undefined): boolean {
  return (a ?? []).join('\n') === (b ?? []).join('\n');
}

export class PolicyValidation {
  private compiled: Compiled | undefined;
  private readonly generations = new Map<string, number | undefined>();
  private readonly jwks = new JwksCache();

  constructor(
    private readonly sources: ValidationSources,
    /** Called for policies whose problems changed because of another object's edit. */
    private readonly onPolicyChanged: (key: string) => void = () => undefined,
  ) {}

  /** Feed every ApiPolicy and Tenant event here; only spec changes (generation), adds and deletes invalidate. */
  observe(kind: 'ApiPolicy' | 'Tenant', obj: KubernetesObject, event: 'add' | 'update' | 'delete'): void {
    const k = `${kind}:${key(obj)}`;
    const generation = obj.metadata?.generation;
    if (event === 'delete') this.generations.delete(k);
    else if (this.generations.has(k) && this.generations.get(k) === generation) return;
    else this.generations.set(k, generation);
    this.invalidate();
  }

  invalidate(): void {
    this.pending = true;
  }

  private pending = true;

  /** Formatted problems of one ApiPolicy (namespace/name); empty when it is accepted. */
  policyProblems(policyKey: string): string[] {
    return this.current().policies.get(policyKey) ?? [];
  }

  tenantProblems(tenantKey: string): string[] {
    return this.current().tenants.get(tenantKey) ?? [];
  }

  /** The namespace's compiled tenants (for deciding whether agencies can reach a workload). */
  directory(namespace: string): TenantDirectory {
    return this.current().directories.get(namespace) ?? new TenantDirectory();
  }

  private current(): Compiled {
    if (this.compiled && !this.pending) return this.compiled;
    this.pending = false;
    const sources = sourcesFrom(this.sources.policies.list(), this.sources.tenants.list(), []);
    // No Secrets: the operator validates tenants without reading them (least privilege).
    const result = compileSources(sources, { jwks: this.jwks, requireSecrets: false });
    const next: Compiled = { policies: formatAll(result.policyProblems), tenants: formatAll(result.tenantProblems), directories: result.snapshot.tenants };
    const previous = this.compiled;
    this.compiled = next;
    if (previous) this.notifyChanged(previous, next);
    return next;
  }

  private notifyChanged(previous: Compiled, next: Compiled): void {
    for (const k of new Set([...previous.policies.keys(), ...next.policies.keys()])) {
      if (!same(previous.policies.get(k), next.policies.get(k))) this.onPolicyChanged(k);
    }
  }
}
