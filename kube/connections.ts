/**
 * One TLS connection pool per API server, not one per request. client-node 2.0.1 builds a new
 * undici Agent inside every API call (KubeConfig.applySecurityAuthentication → createDispatcher),
 * so each request opened its own connection: a fresh SecureContext and a full TLS handshake. At
 * 1,000 ApiPolicies that was the operator's largest CPU cost (profile in docs/benchmarks.md,
 * "Operator scale") and what capped its reconcile rate. Watches are unaffected: client-node
 * already caches the agents they use.
 *
 * The dispatcher is memoised by the server and the TLS material the kubeconfig gives for that
 * call, so a rotated client certificate or CA gets a new pool; past four, the oldest is closed.
 */
import type { KubeConfig } from '@kubernetes/client-node';

interface Closable {
  close?: () => Promise<void> | void;
}

type CreateDispatcher = (cluster: { server?: string; name?: string } | null, agentOptions: Record<string, unknown>) => unknown;

/** Distinct TLS configurations kept at once; more means rotation, and the oldest pool is closed. */
const MAX_POOLS = 4;

interface Pool {
  server: string | undefined;
  options: Record<string, unknown>;
  dispatcher: unknown;
}

// client-node re-reads the CA and key into new Buffers on every call, so compare contents
// (memcmp) rather than identity; cheaper than hashing them per request.
function sameValue(a: unknown, b: unknown): boolean {
  if (Buffer.isBuffer(a) && Buffer.isBuffer(b)) return a.equals(b);
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) return false;
  return typeof a === 'object' && a !== null ? JSON.stringify(a) === JSON.stringify(b) : a === b;
}

function sameOptions(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) if (!sameValue(a[k], b[k])) return false;
  return true;
}

/** Makes `kc` reuse one undici dispatcher per (server, TLS material); returns `kc`. */
export function reuseConnections(kc: KubeConfig): KubeConfig {
  const target = kc as unknown as { createDispatcher?: CreateDispatcher };
  const create = target.createDispatcher;
  // A client-node without this hook (an upgrade changed it) keeps its own behaviour.
  if (typeof create !== 'function') return kc;
  const pools: Pool[] = [];
  target.createDispatcher = (cluster, agentOptions) => {
    const server = cluster?.server;
    const hit = pools.find((p) => p.server === server && sameOptions(p.options, agentOptions));
    if (hit) return hit.dispatcher;
    const dispatcher = create.call(kc, cluster, agentOptions);
    pools.push({ server, options: { ...agentOptions }, dispatcher });
    if (pools.length > MAX_POOLS) {
      const old = pools.shift()!;
      void Promise.resolve((old.dispatcher as Closable | undefined)?.close?.()).catch(() => undefined);
    }
    return dispatcher;
  };
  return kc;
}
