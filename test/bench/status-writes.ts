/**
 * What one ApiPolicy status write costs, by the way it is sent (ADR 0016): client-node's
 * CustomObjectsApi (WHATWG fetch and its ObjectSerializer), a PUT through undici.request (what
 * the operator sends, kube/json-request.ts), and a JSON merge patch through undici.request. On
 * the test control plane (real etcd + kube-apiserver, our CRDs): N policies are created, then each
 * way rewrites every policy's status with C writes in flight, twice in turn. Prints writes/s,
 * the client's CPU per write and the API server's (from /proc, so Linux only).
 *
 *   node dist/test/bench/status-writes.js [--policies 3000] [--concurrency 16]
 */
import { CustomObjectsApi, HttpMethod, KubeConfig, RequestContext } from '@kubernetes/client-node';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request, type Dispatcher } from 'undici';
import { reuseConnections } from '../../kube/connections.js';
import { startTestCluster } from '../cluster/cluster.js';
import { fmt, formatText } from './table.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const argv = process.argv.slice(2);
const arg = (name: string, d: string): string => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1]! : d;
};
const N = Number(arg('--policies', '3000'));
const C = Number(arg('--concurrency', '16'));

/** CPU ms (user + system) of a process so far. */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10; // clock ticks of 10 ms
}

/** The kube-apiserver process serving `port` (its --secure-port), found in /proc. */
function apiServerPid(port: string): number {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const args = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (args[0]?.includes('kube-apiserver') && args.includes(`--secure-port=${port}`)) return Number(d);
    } catch {
      // exited meanwhile
    }
  }
  throw new Error(`no kube-apiserver with --secure-port=${port} in /proc`);
}

async function pool(n: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: C }, async () => {
    while (next < n) await fn(next++);
  }));
}

type Obj = Record<string, unknown> & { metadata: { resourceVersion: string } };

async function main(): Promise<void> {
  const cluster = await startTestCluster({ upstreamCrds: false, crdFiles: [join(ROOT, 'crds/tenant.yaml'), join(ROOT, 'crds/apipolicy.yaml')] });
  try {
    const apiserver = apiServerPid(new URL(cluster.server).port);
    const kc = reuseConnections(new KubeConfig());
    kc.loadFromFile(cluster.kubeconfig);
    const api = kc.makeApiClient(CustomObjectsApi);
    await cluster.kubectl(['create', 'namespace', 'b']);
    const objs: Obj[] = [];
    await pool(N, async (i) => {
      const body = { apiVersion: 'portcullis.io/v1alpha1', kind: 'ApiPolicy', metadata: { name: `p${i}` }, spec: { hosts: [`p${i}.example`], rules: [{ name: 'r', methods: ['GET'], principals: { types: ['consumer'] } }] } };
      objs[i] = (await api.createNamespacedCustomObject({ group: 'portcullis.io', version: 'v1alpha1', namespace: 'b', plural: 'apipolicies', body })) as Obj;
    });
    // A new reason each round, so every write changes the object.
    const status = (round: number): unknown => ({ observedGeneration: 1, conditions: ['Accepted', 'Programmed', 'Ready'].map((type) => ({ type, status: 'True', reason: `Round${round}`, message: 'The policy is compiled and enforced by the mesh.', lastTransitionTime: new Date().toISOString(), observedGeneration: 1 })) });
    const server = kc.getCurrentCluster()!.server;
    const ctx = new RequestContext(server, HttpMethod.PUT);
    await kc.applySecurityAuthentication(ctx);
    const headers = (ctx as unknown as { getHeaders(): Record<string, string> }).getHeaders();
    const dispatcher = (ctx as unknown as { getDispatcher(): Dispatcher }).getDispatcher();
    const url = (i: number): string => `${server}/apis/portcullis.io/v1alpha1/namespaces/b/apipolicies/p${i}/status`;
    const lean = async (i: number, method: 'PUT' | 'PATCH', type: string, body: unknown): Promise<void> => {
      const r = await request(url(i), { method, dispatcher, headers: { ...headers, 'content-type': type, accept: 'application/json' }, body: JSON.stringify(body) });
      const text = await r.body.text();
      if (r.statusCode !== 200) throw new Error(`HTTP ${r.statusCode}: ${text}`);
      objs[i] = JSON.parse(text) as Obj;
    };
    const ways: [string, (i: number, round: number) => Promise<void>][] = [
      ['client-node replaceNamespacedCustomObjectStatus', async (i, round) => {
        objs[i] = (await api.replaceNamespacedCustomObjectStatus({ group: 'portcullis.io', version: 'v1alpha1', namespace: 'b', plural: 'apipolicies', name: `p${i}`, body: { ...objs[i], status: status(round) } })) as Obj;
      }],
      ['undici.request PUT (the operator)', (i, round) => lean(i, 'PUT', 'application/json', { ...objs[i], status: status(round) })],
      ['undici.request JSON merge patch', (i, round) => lean(i, 'PATCH', 'application/merge-patch+json', { metadata: { resourceVersion: objs[i]!.metadata.resourceVersion }, status: status(round) })],
    ];
    const rows: string[][] = [];
    for (let rep = 0; rep < 2; rep++) {
      for (const [k, [name, fn]] of ways.entries()) {
        const cpu0 = process.cpuUsage();
        const a0 = cpuMs(apiserver);
        const t0 = Date.now();
        await pool(N, (i) => fn(i, rep * ways.length + k));
        const wall = Date.now() - t0;
        const cpu = process.cpuUsage(cpu0);
        rows.push([name, String(rep + 1), fmt(N / (wall / 1000), 0), fmt((cpu.user + cpu.system) / 1000 / N, 2), fmt((cpuMs(apiserver) - a0) / N, 2)]);
      }
    }
    console.log(formatText({
      title: `One ApiPolicy status write on the test control plane: ${N} policies, ${C} writes in flight, each way twice in turn`,
      headers: ['sent as', 'round', 'writes/s', 'client CPU ms/write', 'API server CPU ms/write'],
      rows,
      notes: ['the API server CPU is read from /proc at 10 ms resolution; compare ways within a round (the machine is shared)'],
    }));
  } finally {
    await cluster.stop();
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
