/**
 * One TLS connection pool per API server, not one per request. client-node 2.0.1 builds a new
 * undici Agent inside every API call (KubeConfig.applySecurityAuthentication → createDispatcher),
 * so each request opened its own connection: a fresh SecureContext and a full TLS handshake. At
 * 1,000 ApiPolicies that was the operator's largest CPU cost (profile in docs/benchmarks.md,
 * "Operator scale") and what capped its reconcile rate. Watches are unaffected: client-node
 * already caches the agents they use.
 *
 * The dispatcher is memoised by the server and a digest of the TLS material the kubeconfig gives
 * for that call, so a rotated client certificate or CA gets a new pool and the old one is closed.
 */
import { createHash } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';

interface Closable {
  close?: () => Promise<void> | void;
}

type CreateDispatcher = (cluster: { server?: string; name?: string } | null, agentOptions: Record<string, unknown>) => unknown;

/** Distinct TLS configurations kept at once; more means rotation, and the oldest pool is closed. */
const MAX_POOLS = 4;

function digest(server: string | undefined, agentOptions: Record<string, unknown>): string {
  const h = createHash('sha256');
  h.update(server ?? '');
  for (const k of Object.keys(agentOptions).sort()) {
    const v = agentOptions[k];
    if (v === undefined) continue;
    h.update(`\0${k}=`);
    h.update(Buffer.isBuffer(v) ? v : typeof v === 'string' ? v : JSON.stringify(v));
  }
  return h.digest('hex');
}

/** Makes `kc` reuse one undici dispatcher per (server, TLS material); returns `kc`. */
export function reuseConnections(kc: KubeConfig): KubeConfig {
  const target = kc as unknown as { createDispatcher?: CreateDispatcher };
  const create = target.createDispatcher;
  // A client-node without this hook (an upgrade changed it) keeps its own behaviour.
  if (typeof create !== 'function') return kc;
  const pools = new Map<string, unknown>();
  target.createDispatcher = (cluster, agentOptions) => {
    const key = digest(cluster?.server, agentOptions);
    if (pools.has(key)) return pools.get(key);
    const dispatcher = create.call(kc, cluster, agentOptions);
    pools.set(key, dispatcher);
    if (pools.size > MAX_POOLS) {
      const [oldest, old] = pools.entries().next().value as [string, unknown];
      pools.delete(oldest);
      void Promise.resolve((old as Closable | undefined)?.close?.()).catch(() => undefined);
    }
    return dispatcher;
  };
  return kc;
}
