/**
 * The kubeconfig both processes use. client-node's loadFromDefault falls back, silently, to
 * http://localhost:8080 when it finds nothing; a process would then retry a server that does not
 * exist forever. Here "nothing found" is an error naming what was looked for.
 */
import { KubeConfig } from '@kubernetes/client-node';
import { PortcullisError } from '../extauthz/errors.js';
import { reuseConnections } from './connections.js';

const FALLBACK_SERVER = 'http://localhost:8080';

export const NO_KUBECONFIG =
  'no Kubernetes configuration found: pass --kubeconfig FILE, set KUBECONFIG, create ~/.kube/config, or run in a pod with a service account token';

export function loadKubeConfig(file?: string): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (file) kc.loadFromFile(file);
    else kc.loadFromDefault();
  } catch (err) {
    throw new PortcullisError('KUBE_CONFIG', `cannot load the kubeconfig${file ? ` ${file}` : ''}: ${(err as Error).message}`, { cause: err });
  }
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new PortcullisError('KUBE_CONFIG', `the kubeconfig${file ? ` ${file}` : ''} has no current context with a cluster`);
  if (!file && cluster.name === 'cluster' && cluster.server === FALLBACK_SERVER) throw new PortcullisError('KUBE_CONFIG', NO_KUBECONFIG);
  if (/undefined/.test(cluster.server)) throw new PortcullisError('KUBE_CONFIG', 'in-cluster configuration without KUBERNETES_SERVICE_HOST/PORT: the process is not running in a pod');
  return reuseConnections(kc);
}
