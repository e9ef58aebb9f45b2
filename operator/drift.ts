/**
 * Drift repair beyond server-side apply. A forced apply reclaims the fields the operator sets,
 * but leaves fields another manager added; some of those weaken a generated object without
 * touching ours: `istio.io/dry-run` turns an AuthorizationPolicy into a no-op, and a
 * `portLevelMtls` entry in a PeerAuthentication exempts a port from STRICT mTLS. Such fields are
 * removed with a merge patch. Istio kinds are closed: any top-level spec field the operator does
 * not set is foreign there. Envoy Gateway kinds are defaulted by their controller, so only the
 * annotation is repaired on them.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { GeneratedObject } from './translate.js';

export const WEAKENING_ANNOTATIONS = ['istio.io/dry-run'] as const;

const ISTIO_GROUPS = ['security.istio.io/', 'networking.istio.io/'];

export interface RepairPatch {
  patch: { metadata?: { annotations: Record<string, null> }; spec?: Record<string, null> };
  /** Paths removed, for the log. */
  removed: string[];
}

function annotationRepairs(live: KubernetesObject): string[] {
  const annotations = live.metadata?.annotations ?? {};
  return WEAKENING_ANNOTATIONS.filter((a) => a in annotations);
}

function foreignSpecFields(desired: GeneratedObject, live: KubernetesObject): string[] {
  if (!ISTIO_GROUPS.some((g) => desired.apiVersion.startsWith(g))) return [];
  const spec = (live as { spec?: Record<string, unknown> }).spec ?? {};
  return Object.keys(spec).filter((k) => !(k in desired.spec));
}

export function repairPatch(desired: GeneratedObject, live: KubernetesObject | undefined): RepairPatch | undefined {
  if (!live) return undefined;
  const annotations = annotationRepairs(live);
  const fields = foreignSpecFields(desired, live);
  if (annotations.length === 0 && fields.length === 0) return undefined;
  const nulls = (keys: readonly string[]): Record<string, null> => Object.fromEntries(keys.map((k) => [k, null]));
  return {
    patch: { ...(annotations.length ? { metadata: { annotations: nulls(annotations) } } : {}), ...(fields.length ? { spec: nulls(fields) } : {}) },
    removed: [...annotations.map((a) => `metadata.annotations.${a}`), ...fields.map((f) => `spec.${f}`)],
  };
}
