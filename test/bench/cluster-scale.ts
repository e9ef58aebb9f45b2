/**
 * Operator scale on the test control plane (real etcd + kube-apiserver with the upstream CRDs):
 * N ApiPolicies exist before the operator starts; the clock runs from spawning the operator
 * process (cold: no cache, no children) until every policy reports Ready=True for its current
 * generation. Then, at that scale: a deleted child is restored (drift), and a child deleted while
 * the operator was down is restored after a restart. The operator's peak RSS (VmHWM) sizes the
 * chart's memory defaults. Before the clock starts, every kind the operator watches is listed once
 * (warmWatchCaches): the API server is new, the operator is what starts cold.
 *
 * Then ext_authz (`serve --source kubernetes`, one worker) loads the same N policies; with
 * Checks in flight back to back (from a client process of its own, see checkProbe), one new
 * ApiPolicy is created and the clock runs until its host is allowed. The longest single Check
 * during that window is the stall the target bounds (< 20 ms), beside its p99 and the
 * steady-state p99 at that scale.
 *
 * Istio's objects are per workload (shared by the policies targeting it), so the write count
 * depends on how many workloads the policies target: `--services K` spreads them over K Services
 * per namespace (default 1: 20 workloads; `--services 500` at 10,000: one workload per policy).
 *
 *   node dist/test/bench/cluster-scale.js [--policies 10000] [--namespaces 20] [--services 1] [--workers 16] [--quick]
 *
 * For iterating on ext_authz alone:
 *   --extauthz-only           no operator phase: each policy gets, right after its create, the
 *                             status the operator would write (Accepted, Programmed, Ready), so
 *                             the objects ext_authz lists and watches look as they do after an
 *                             operator run (status and its managedFields entry included)
 *   --repeat K                the ext_authz phase K times on the same cluster (a fresh process
 *                             and a new policy each time: edit-1, edit-2, ...), one row each
 *   --extauthz-main A[,B]     the ext_authz entry point(s) to run (default this build's
 *                             dist/extauthz/cli/main.js); with two, each repeat runs both in
 *                             turn on the same cluster, so two builds compare under one load
 *   --extauthz-node-args S    node flags for the ext_authz child only (space-separated, put
 *                             before its script: NODE_OPTIONS refuses some, such as --trace-gc),
 *                             e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof" or "--trace-gc"; its
 *                             stdout then goes to this process's stderr
 */
import { CustomObjectsApi, KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ResilientInformer } from '../../kube/informer.js';
import { customPath, listCustom, PLURAL } from '../../kube/resources.js';
import { freePort, startTestCluster, type TestCluster } from '../cluster/cluster.js';
import * as grpc from '@grpc/grpc-js';
import { envoyProtos, fromProtoJson } from '../../proto/envoy.js';
import { parse as parseYaml } from 'yaml';
import { OUTPUT_KINDS, workloadObjectName } from '../../operator/translate.js';
import { fmt, formatText, type Table } from './table.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = resolve(HERE, '../../..');
const argv = process.argv.slice(2);
const arg = (name: string, d: string): string => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1]! : d;
};
const QUICK = argv.includes('--quick');
const N = Number(arg('--policies', QUICK ? '1000' : '10000'));
const NAMESPACES = Number(arg('--namespaces', '20'));
const WORKERS = arg('--workers', '16');
const SERVICES = Number(arg('--services', '1'));
const READY_TIMEOUT_MS = 300_000;
const EXTAUTHZ_ONLY = argv.includes('--extauthz-only');
const REPEAT = Number(arg('--repeat', '1'));
const EXTAUTHZ_NODE_ARGS = arg('--extauthz-node-args', '').split(' ').filter((a) => a !== '');
const EXTAUTHZ_MAINS = arg('--extauthz-main', join(ROOT, 'dist/extauthz/cli/main.js')).split(',').map((m) => resolve(m));

/**
 * The chart's default memory limit of a component, in MiB. Both processes run with the V8 heap
 * that limit gives in a container (Node 24 sizes the heap from the cgroup limit, about half of
 * it), so the figures show whether the defaults hold, not what an unconstrained heap grows to.
 */
function chartLimitMiB(component: 'extauthz' | 'operator'): number {
  const values = parseYaml(readFileSync(join(ROOT, 'charts/portcullis/values.yaml'), 'utf8')) as Record<string, { resources: { limits: { memory: string } } }>;
  const m = /^(\d+)(Mi|Gi)$/.exec(values[component]!.resources.limits.memory);
  if (!m) throw new Error(`values.yaml ${component}.resources.limits.memory: expected Mi or Gi`);
  return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
}
const heapFlag = (component: 'extauthz' | 'operator'): string => `--max-old-space-size=${Math.floor(chartLimitMiB(component) / 2)}`;

interface Policy extends KubernetesObject {
  status?: { observedGeneration?: number; conditions?: { type: string; status: string }[] };
}

const ns = (j: number): string => `scale-${j}`;
/** The Service policy i targets (its namespace is ns(i % NAMESPACES)). */
const svc = (i: number): string => (SERVICES === 1 ? 'api' : `api-${Math.floor(i / NAMESPACES) % SERVICES}`);
/** The AuthorizationPolicy of policy i's workload, deleted to measure drift repair. */
const childOf = (i: number): string => workloadObjectName({ kind: 'Service', name: svc(i) });

function policy(i: number): Policy & { spec: unknown } {
  return {
    apiVersion: 'portcullis.io/v1alpha1',
    kind: 'ApiPolicy',
    metadata: { name: `p${i}`, namespace: ns(i % NAMESPACES) },
    spec: {
      hosts: [`p${i}.scale.example`],
      targetRefs: [{ kind: 'Service', name: svc(i) }],
      rules: [{ name: 'read', methods: ['GET'], principals: { types: ['consumer'] } }],
    },
  } as Policy & { spec: unknown };
}

/** Runs `fn` over 0..n-1 with `concurrency` in flight. */
async function pool(n: number, concurrency: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < n) await fn(next++);
  }));
}

/** The status the operator writes on a Ready policy (conditions as operator/conditions.ts words them). */
function operatorStatus(generation: number): Policy['status'] {
  const now = new Date().toISOString();
  const condition = (type: string, reason: string, message: string): Record<string, unknown> => ({ type, status: 'True', observedGeneration: generation, lastTransitionTime: now, reason, message });
  return {
    observedGeneration: generation,
    conditions: [
      condition('Accepted', 'Compiled', 'The policy compiled with the Portcullis engine.'),
      condition('Programmed', 'Applied', `1 object(s) applied: AuthorizationPolicy/${workloadObjectName({ kind: 'Service', name: 'api' })}`),
      condition('Ready', 'Ready', 'The policy is compiled and enforced by the mesh.'),
    ] as never,
  };
}

async function seed(cluster: TestCluster, kc: KubeConfig, withStatus = false): Promise<number> {
  const service = (j: number, name: string): string => `apiVersion: v1\nkind: Service\nmetadata: { name: ${name}, namespace: ${ns(j)} }\nspec: { selector: { app: ${name} }, ports: [{ port: 8080 }] }\n`;
  const names = [...new Set(Array.from({ length: Math.min(N, NAMESPACES * SERVICES) }, (_, i) => svc(i)))];
  const docs = Array.from({ length: NAMESPACES }, (_, j) => [`apiVersion: v1\nkind: Namespace\nmetadata: { name: ${ns(j)} }\n`, ...names.map((n) => service(j, n))].join('---\n'));
  const r = await cluster.kubectl(['apply', '-f', '-'], docs.join('---\n'));
  if (r.code !== 0) throw new Error(r.stderr);
  const api = kc.makeApiClient(CustomObjectsApi);
  const t0 = Date.now();
  await pool(N, 32, async (i) => {
    const body = policy(i);
    const namespace = body.metadata!.namespace!;
    const created = (await api.createNamespacedCustomObject({ group: 'portcullis.io', version: 'v1alpha1', namespace, plural: 'apipolicies', body })) as Policy;
    if (!withStatus) return;
    const status = operatorStatus(created.metadata?.generation ?? 1);
    await api.replaceNamespacedCustomObjectStatus({ group: 'portcullis.io', version: 'v1alpha1', namespace, plural: 'apipolicies', name: body.metadata!.name!, body: { ...created, status } });
  });
  return (Date.now() - t0) / 1000;
}

function isReady(p: Policy): boolean {
  return p.status?.observedGeneration === p.metadata?.generation && (p.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/** Counts Ready policies from a watch of the bench's own. */
class ReadyCounter {
  readonly ready = new Set<string>();
  private waiters: (() => void)[] = [];
  readonly informer: ResilientInformer<Policy>;
  constructor(kc: KubeConfig) {
    this.informer = new ResilientInformer<Policy>({
      kubeConfig: kc, path: customPath(PLURAL.ApiPolicy), list: listCustom<Policy>(kc, PLURAL.ApiPolicy),
      onChange: (p, ev) => {
        const k = `${p.metadata?.namespace}/${p.metadata?.name}`;
        if (ev !== 'delete' && isReady(p)) this.ready.add(k);
        else this.ready.delete(k);
        if (this.ready.size >= N) for (const w of this.waiters.splice(0)) w();
      },
    });
  }
  all(timeoutMs: number): Promise<boolean> {
    if (this.ready.size >= N) return Promise.resolve(true);
    return new Promise((res) => {
      const t = setTimeout(() => res(false), timeoutMs);
      this.waiters.push(() => {
        clearTimeout(t);
        res(true);
      });
    });
  }
}

interface Operator {
  proc: ChildProcess;
  port: number;
  started: number;
}

async function startOperator(kubeconfig: string): Promise<Operator> {
  const port = await freePort();
  const started = Date.now();
  const proc = spawn(process.execPath, [heapFlag('operator'), join(ROOT, 'dist/operator/main.js'), '--kubeconfig', kubeconfig, '--no-leader-elect', '--outputs', 'istio', '--http-address', `127.0.0.1:${port}`, '--log-level', 'warn', '--workers', WORKERS], { stdio: ['ignore', 'ignore', 'inherit'] });
  return { proc, port, started };
}

async function stopOperator(op: Operator): Promise<void> {
  op.proc.kill('SIGTERM');
  await new Promise((r) => op.proc.once('exit', r));
}

function peakRssMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return text.split('\n').filter((l) => l.startsWith(name)).reduce((a, l) => a + Number(l.split(' ').at(-1)), 0);
}

/** ms until `check` holds, polling every 100 ms. */
async function timeUntil(check: () => Promise<boolean>, timeoutMs = 60_000): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    if (await check()) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, 100));
  }
  return NaN;
}

async function childExists(cluster: TestCluster, name: string, namespace: string): Promise<boolean> {
  return (await cluster.kubectl(['get', 'authorizationpolicies.security.istio.io', name, '-n', namespace, '-o', 'name'])).code === 0;
}

async function deleteChild(cluster: TestCluster, name: string, namespace: string): Promise<void> {
  const r = await cluster.kubectl(['delete', 'authorizationpolicies.security.istio.io', name, '-n', namespace, '--wait=false']);
  if (r.code !== 0) throw new Error(r.stderr);
}

type CheckClient = grpc.Client & { Check: (req: unknown, cb: (err: grpc.ServiceError | null, res: { status?: { code?: number } }) => void) => void };

function checkClient(port: number): CheckClient {
  const protos = envoyProtos() as unknown as { envoy: { service: { auth: { v3: { Authorization: grpc.ServiceClientConstructor } } } } };
  return new protos.envoy.service.auth.v3.Authorization(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as CheckClient;
}

const LAG_MAX = 'portcullis_nodejs_eventloop_lag_max_seconds ';
/** prom-client's default eventLoopMonitoringPrecision. */
const LAG_RESOLUTION_MS = 10;
/** The policy the k-th ext_authz phase creates (the first keeps the name earlier runs used). */
const editName = (k: number): string => (k === 0 ? 'edit' : `edit-${k}`);
const editRequest = (host: string): unknown => fromProtoJson('envoy.service.auth.v3.CheckRequest', {
  attributes: { request: { http: { method: 'GET', host, path: '/v1/x', headers: {} } } },
});

/** One Check: its latency in ms and whether it was allowed. */
function timedCheck(client: CheckClient, request: unknown): Promise<{ ms: number; allowed: boolean }> {
  const t0 = process.hrtime.bigint();
  return new Promise((ok, fail) => client.Check(request, (e, v) => (e ? fail(e) : ok({ ms: Number(process.hrtime.bigint() - t0) / 1e6, allowed: (v.status?.code ?? 0) === 0 }))));
}

/**
 * The Check client runs in a process of its own (this file with `--check-probe PORT HOST`), so
 * its latencies carry none of the bench process's pauses (GC after seeding 10,000 objects, the
 * operator phase's watch): one JSON line answers each command line.
 *   steady    2,000 Checks back to back: { p99, max } (the max: this machine's floor, no change running)
 *   window T  (T: the epoch ms the create returned) Checks until the host is allowed, then 500
 *             more (a deferred index build would show there): { editMs, p99, max }
 */
async function checkProbe(port: number, host: string): Promise<void> {
  const client = checkClient(port);
  const request = editRequest(host);
  const reply = (o: object): boolean => process.stdout.write(`${JSON.stringify(o)}\n`);
  for await (const line of createInterface({ input: process.stdin })) {
    const [command, arg] = line.split(' ');
    if (command === 'steady') {
      const steady: number[] = [];
      for (let i = 0; i < 2000; i++) steady.push((await timedCheck(client, request)).ms);
      reply({ p99: p99(steady), max: Math.max(...steady) });
    } else if (command === 'window') reply(await changeWindow(client, request, Number(arg)));
    else break;
  }
  client.close();
}

async function changeWindow(client: CheckClient, request: unknown, created: number): Promise<{ editMs: number; p99: number; max: number }> {
  const during: number[] = [];
  let editMs = NaN;
  while (Date.now() - created < 30_000) {
    const r = await timedCheck(client, request);
    during.push(r.ms);
    if (r.allowed) {
      editMs = Date.now() - created;
      break;
    }
  }
  for (let i = 0; i < 500; i++) during.push((await timedCheck(client, request)).ms);
  return { editMs, p99: p99(during), max: Math.max(...during) };
}

interface Probe {
  ask<T>(command: string): Promise<T>;
  close(): void;
}

function startProbe(port: number, host: string): Probe {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--check-probe', String(port), host], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const waiting: ((line: string) => void)[] = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  return {
    ask: <T>(command: string): Promise<T> =>
      new Promise<T>((ok, fail) => {
        child.once('exit', (code) => fail(new Error(`check probe exited (${code}) before answering ${command}`)));
        waiting.push((line) => ok(JSON.parse(line) as T));
        child.stdin.write(`${command}\n`);
      }),
    close: () => child.stdin.end(),
  };
}

const p99 = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * 0.99))] ?? NaN;

interface ExtAuthzFigures {
  loadS: number;
  steadyP99: number;
  /** The longest steady-state Check: what the machine and the client cost with no change running. */
  steadyMax: number;
  editMs: number;
  editP99: number;
  editMax: number;
  /** ext_authz's own longest event-loop stall in that window (beyond the sampling interval): without the client's or the machine's. */
  loopMaxMs: number;
  rssMiB: number;
}

/** ext_authz on the Kubernetes source at N policies: cold load, then a one-object change under Checks. */
async function extAuthzAtScale(cluster: TestCluster, kc: KubeConfig, k = 0, main = EXTAUTHZ_MAINS[0]!): Promise<ExtAuthzFigures> {
  const grpcPort = await freePort();
  const httpPort = await freePort();
  const t0 = Date.now();
  const proc = spawn(process.execPath, [heapFlag('extauthz'), ...EXTAUTHZ_NODE_ARGS, main, 'serve', '--source', 'kubernetes', '--kubeconfig', cluster.kubeconfig, '--grpc-address', `127.0.0.1:${grpcPort}`, '--http-address', `127.0.0.1:${httpPort}`, '--workers', '1', '--log-level', 'warn'], { stdio: ['ignore', EXTAUTHZ_NODE_ARGS.length > 0 ? 2 : 'ignore', 'inherit'] });
  const name = editName(k);
  try {
    const loaded = await timeUntil(async () => {
      try {
        return (await metric(httpPort, 'portcullis_policies ')) >= N;
      } catch {
        return false;
      }
    }, READY_TIMEOUT_MS);
    const loadS = (Date.now() - t0) / 1000;
    if (Number.isNaN(loaded)) throw new Error(`ext_authz did not load ${N} policies in ${READY_TIMEOUT_MS / 1000} s`);
    const probe = startProbe(grpcPort, `${name}.scale.example`);
    const { p99: steadyP99, max: steadyMax } = await probe.ask<{ p99: number; max: number }>('steady');
    const api = kc.makeApiClient(CustomObjectsApi);
    const body = { apiVersion: 'portcullis.io/v1alpha1', kind: 'ApiPolicy', metadata: { name, namespace: ns(0) }, spec: { hosts: [`${name}.scale.example`], rules: [{ name: 'open', methods: ['GET'], principals: { anonymous: true } }] } };
    // prom-client resets its event-loop delay histogram on every scrape: this one opens the window.
    await metric(httpPort, LAG_MAX);
    await api.createNamespacedCustomObject({ group: 'portcullis.io', version: 'v1alpha1', namespace: ns(0), plural: 'apipolicies', body });
    const window = await probe.ask<{ editMs: number; p99: number; max: number }>(`window ${Date.now()}`);
    probe.close();
    // Node's histogram records whole timer intervals, so an idle loop reads the sampling interval.
    const loopMaxMs = (await metric(httpPort, LAG_MAX)) * 1000 - LAG_RESOLUTION_MS;
    return { loadS, steadyP99, steadyMax, editMs: window.editMs, editP99: window.p99, editMax: window.max, loopMaxMs, rssMiB: peakRssMiB(proc.pid!) };
  } finally {
    proc.kill('SIGTERM');
    await new Promise((r) => proc.once('exit', r));
  }
}

/** The operator phase: cold start to all Ready, drift repair, a child deleted while it was down. */
/**
 * A fresh API server builds a CRD's storage and watch cache on the first request for it and
 * answers 429 "storage is (re)initializing" (Retry-After: 1 s) meanwhile. A cluster that has
 * been running has them already; one list per kind the operator watches makes this one the
 * same, so the cold start measured is the operator's, not the API server's first use of a CRD.
 */
async function warmWatchCaches(cluster: TestCluster): Promise<void> {
  const kinds = ['tenants.portcullis.io', ...OUTPUT_KINDS.map((k) => `${k.plural}.${k.apiVersion.split('/')[0]}`), 'httproutes.gateway.networking.k8s.io', 'gateways.gateway.networking.k8s.io', 'referencegrants.gateway.networking.k8s.io'];
  for (let attempt = 0; attempt < 10; attempt++) {
    const r = await cluster.kubectl(['get', kinds.join(','), '-A', '--chunk-size=1', '-o', 'name']);
    if (r.code === 0) return;
    await new Promise((res) => setTimeout(res, 1000));
  }
  throw new Error('the API server did not serve the watched kinds');
}

async function operatorAtScale(cluster: TestCluster, kc: KubeConfig, createS: number): Promise<Table> {
  const counter = new ReadyCounter(kc);
  try {
    await counter.informer.start();
    await warmWatchCaches(cluster);
    let op = await startOperator(cluster.kubeconfig);
    const allReady = await counter.all(READY_TIMEOUT_MS);
    const readyS = (Date.now() - op.started) / 1000;
    const reconciles = await metric(op.port, 'portcullis_operator_reconciles_total');
    const echoes = await metric(op.port, 'portcullis_operator_own_write_events_total');
    const drift = (await deleteChild(cluster, childOf(7), ns(7 % NAMESPACES)), await timeUntil(() => childExists(cluster, childOf(7), ns(7 % NAMESPACES))));
    const rss = peakRssMiB(op.proc.pid!);
    await stopOperator(op);
    await deleteChild(cluster, childOf(8), ns(8 % NAMESPACES));
    op = await startOperator(cluster.kubeconfig);
    const restored = await timeUntil(() => childExists(cluster, childOf(8), ns(8 % NAMESPACES)), 120_000);
    const rssWarm = peakRssMiB(op.proc.pid!);
    await stopOperator(op);
    return {
      title: `Operator scale: ${N} ApiPolicies in ${NAMESPACES} namespaces on ${Math.min(N, NAMESPACES * SERVICES)} workloads, cold start on the test control plane (--workers ${WORKERS}, Istio outputs)`,
      headers: ['policies', 'create (s)', 'start → all Ready (s)', 'policies/s', 'reconciles', 'own-write echoes skipped', 'drift repair (ms)', 'restart: deleted child back (s)', `peak RSS cold / restart (MiB; chart limit ${chartLimitMiB('operator')})`],
      rows: [[String(N), fmt(createS, 1), allReady ? fmt(readyS, 1) : `> ${READY_TIMEOUT_MS / 1000} (${counter.ready.size} Ready)`, fmt(N / readyS, 0), String(reconciles), String(echoes), fmt(drift, 0), fmt(restored / 1000, 1), `${fmt(rss, 0)} / ${fmt(rssWarm, 0)}`]],
      notes: [`the operator runs with ${heapFlag('operator')} (the heap the chart's memory limit gives in a container)`, 'target: all Ready in < 60 s; reconciles ≈ policies means no policy was reconciled twice (own writes do not re-queue)', 'restart includes process start and the initial list of every policy and child'],
    };
  } finally {
    await counter.informer.stop();
  }
}

async function main(): Promise<void> {
  const cluster = await startTestCluster({ crdFiles: [join(ROOT, 'crds/tenant.yaml'), join(ROOT, 'crds/apipolicy.yaml')], log: (s) => console.error(`[cluster] ${s}`) });
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfig);
  try {
    const createS = await seed(cluster, kc, EXTAUTHZ_ONLY);
    if (EXTAUTHZ_ONLY) console.error(`[bench] ${N} policies created with an operator-like status in ${fmt(createS, 1)} s`);
    else console.log(formatText(await operatorAtScale(cluster, kc, createS)));
    const rows: string[][] = [];
    const label = (main: string): string[] => (EXTAUTHZ_MAINS.length > 1 ? [main] : []);
    for (let k = 0; k < REPEAT * EXTAUTHZ_MAINS.length; k++) {
      const main = EXTAUTHZ_MAINS[k % EXTAUTHZ_MAINS.length]!;
      const ext = await extAuthzAtScale(cluster, kc, k, main);
      rows.push([...label(main), String(N), fmt(ext.loadS, 1), fmt(ext.steadyP99, 2), fmt(ext.steadyMax, 1), fmt(ext.editMs, 0), fmt(ext.editP99, 2), fmt(ext.editMax, 1), fmt(ext.loopMaxMs, 1), fmt(ext.rssMiB, 0)]);
      if (rows.length > 1 || REPEAT > 1) console.error(`[bench] ext_authz run ${k + 1}: ${rows.at(-1)!.join(' | ')}`);
    }
    const extTable: Table = {
      title: `ext_authz on the Kubernetes source at ${N} ApiPolicies (one worker): a one-object change under back-to-back Checks`,
      headers: [...(EXTAUTHZ_MAINS.length > 1 ? ['ext_authz'] : []), 'policies', 'start → all loaded (s)', 'steady Check p99 (ms)', 'steady longest Check (ms)', 'create → decided (ms)', 'Check p99 during the change (ms)', 'longest Check during the change (ms)', 'ext_authz longest event-loop stall then (ms)', `peak RSS (MiB; chart limit ${chartLimitMiB('extauthz')})`],
      rows,
      notes: [`ext_authz runs with ${heapFlag('extauthz')}`, 'targets: create → decided < 1,000 ms; no Check longer than 20 ms; RSS within the chart limit'],
    };
    console.log(formatText(extTable));
  } finally {
    await cluster.stop();
  }
}

const probeAt = argv.indexOf('--check-probe');
(probeAt >= 0 ? checkProbe(Number(argv[probeAt + 1]), argv[probeAt + 2]!) : main()).catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
