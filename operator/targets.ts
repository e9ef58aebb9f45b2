/**
 * What Programmed needs to know about the world besides the generated objects: whether the
 * HTTPRoutes and Gateways a policy targets exist, and whether a ReferenceGrant in the Portcullis
 * namespace lets Envoy Gateway policies of another namespace reference its Service. Watched with
 * informers, but only when the Gateway API is installed: a cluster without it has no routes or
 * grants, and an informer on an absent resource would never sync.
 */
import { CustomObjectsApi, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import { ResilientInformer } from '../kube/informer.js';
import { httpCode } from '../kube/errors.js';

export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';

interface Lister {
  list(ns?: string): readonly KubernetesObject[];
}

export interface TargetCaches {
  httpRoutes: Lister;
  gateways: Lister;
  /** ReferenceGrants of the Portcullis Service's namespace. */
  referenceGrants: Lister;
}

const EMPTY: Lister = { list: () => [] };

/** "HTTPRoute/name" and "Gateway/name" of the namespace's routes and gateways. */
export function presentRoutes(caches: TargetCaches, namespace: string): Set<string> {
  const out = new Set<string>();
  for (const r of caches.httpRoutes.list(namespace)) out.add(`HTTPRoute/${r.metadata?.name ?? ''}`);
  for (const g of caches.gateways.list(namespace)) out.add(`Gateway/${g.metadata?.name ?? ''}`);
  return out;
}

interface GrantSpec {
  from?: { group?: string; kind?: string; namespace?: string }[];
  to?: { group?: string; kind?: string; name?: string }[];
}

/** The kinds of `fromNamespace` that some ReferenceGrant lets reference Service `service`. */
export function grantedKinds(grants: readonly KubernetesObject[], fromNamespace: string, service: string): Set<string> {
  const out = new Set<string>();
  for (const g of grants) {
    const spec = (g as { spec?: GrantSpec }).spec ?? {};
    const toService = (spec.to ?? []).some((t) => (t.group ?? '') === '' && t.kind === 'Service' && (t.name === undefined || t.name === '' || t.name === service));
    if (!toService) continue;
    for (const f of spec.from ?? []) if (f.group === 'gateway.envoyproxy.io' && f.namespace === fromNamespace && f.kind) out.add(f.kind);
  }
  return out;
}

/**
 * The served version of a Gateway API kind, or undefined when the Gateway API is not installed.
 * Probed in the namespace the informer will watch: the chart grants ReferenceGrants per namespace.
 */
async function servedVersion(kc: KubeConfig, plural: string, versions: readonly string[], namespace: string | undefined): Promise<string | undefined> {
  const api = kc.makeApiClient(CustomObjectsApi);
  for (const version of versions) {
    try {
      if (namespace) await api.listNamespacedCustomObject({ group: GATEWAY_API_GROUP, version, namespace, plural, limit: 1 });
      else await api.listClusterCustomObject({ group: GATEWAY_API_GROUP, version, plural, limit: 1 });
      return version;
    } catch (err) {
      if (httpCode(err) !== 404) throw err;
    }
  }
  return undefined;
}

export interface TargetWatch {
  caches: TargetCaches;
  informers: ResilientInformer<KubernetesObject>[];
}

/**
 * Informers for routes, gateways (all namespaces: targets may be anywhere) and the grants of one
 * namespace. `onRoute` is called with the namespace of a changed route or gateway, `onGrant` on
 * any grant change.
 */
export interface TargetWatchOptions {
  grantNamespace: string;
  onRoute: (namespace: string) => void;
  onGrant: () => void;
  onError: (what: string) => (err: unknown) => void;
}

export async function watchTargets(kc: KubeConfig, opts: TargetWatchOptions): Promise<TargetWatch> {
  const { grantNamespace, onRoute, onGrant, onError } = opts;
  const api = kc.makeApiClient(CustomObjectsApi);
  const informers: ResilientInformer<KubernetesObject>[] = [];
  const make = async (plural: string, versions: readonly string[], namespace: string | undefined, onChange: (o: KubernetesObject) => void): Promise<Lister> => {
    const version = await servedVersion(kc, plural, versions, namespace);
    if (!version) return EMPTY;
    const path = namespace ? `/apis/${GATEWAY_API_GROUP}/${version}/namespaces/${namespace}/${plural}` : `/apis/${GATEWAY_API_GROUP}/${version}/${plural}`;
    const list = async (): Promise<KubernetesListObject<KubernetesObject>> =>
      (namespace
        ? await api.listNamespacedCustomObject({ group: GATEWAY_API_GROUP, version, namespace, plural })
        : await api.listClusterCustomObject({ group: GATEWAY_API_GROUP, version, plural })) as KubernetesListObject<KubernetesObject>;
    const informer = new ResilientInformer<KubernetesObject>({ kubeConfig: kc, path, list, onChange, onError: onError(plural) });
    informers.push(informer);
    return informer;
  };
  const routeChanged = (o: KubernetesObject): void => onRoute(o.metadata?.namespace ?? '');
  const caches: TargetCaches = {
    httpRoutes: await make('httproutes', ['v1'], undefined, routeChanged),
    gateways: await make('gateways', ['v1'], undefined, routeChanged),
    referenceGrants: await make('referencegrants', ['v1', 'v1beta1'], grantNamespace, onGrant),
  };
  return { caches, informers };
}
