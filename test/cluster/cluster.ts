/**
 * A real, throw-away Kubernetes control plane for tests: etcd + kube-apiserver (+ optionally
 * kube-controller-manager) built from their upstream Go modules by test/tools/build.sh and
 * cached by version, started on free loopback ports with freshly generated certificates, with
 * the upstream CRDs (Istio, Gateway API standard channel, Envoy Gateway) installed so the API
 * server validates objects against the real schemas.
 *
 *   const cluster = await startTestCluster({ withControllerManager: true });
 *   try { await cluster.kubectl(['apply', '-f', '-'], yaml); } finally { await cluster.stop(); }
 *
 * Needs on the machine: `openssl`, `kubectl` (or $KUBECTL), and for the first run a Go
 * toolchain (build.sh builds what is missing). Environment:
 *   PORTCULLIS_CACHE        cache root (default ${XDG_CACHE_HOME:-~/.cache}/portcullis)
 *   PORTCULLIS_TOOLS_DIR    test/tools directory, if it can't be found from here or the cwd
 *   PORTCULLIS_KEEP_CLUSTER=1  keep the temp dir (logs, certs, etcd data) after stop()
 *   KUBECTL                 kubectl binary to use
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface KubectlResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface TestCluster {
  /** Path of an admin (system:masters) kubeconfig. */
  kubeconfig: string;
  /** https://127.0.0.1:<port> */
  server: string;
  /** Runs kubectl against this cluster; never throws on a non-zero exit. */
  kubectl(args: string[], input?: string): Promise<KubectlResult>;
  /** Stops kube-apiserver only (etcd and the controller manager keep running). */
  stopApiServer(): Promise<void>;
  /** (Re)starts kube-apiserver on the same port and etcd, and waits for /readyz. */
  startApiServer(): Promise<void>;
  /** Stops every process and removes `dir`. Idempotent. */
  stop(): Promise<void>;
  /** Temp dir holding certs, kubeconfig, etcd data and the component logs. */
  dir: string;
}

export interface StartTestClusterOptions {
  /** Extra CRD (or other manifest) files applied after the upstream CRDs. */
  crdFiles?: string[];
  /** Also run kube-controller-manager (default controllers: garbagecollector, namespace). */
  withControllerManager?: boolean;
  /** Override the controller-manager --controllers list. */
  controllers?: string[];
  /** Install the cached upstream CRDs (default true). */
  upstreamCrds?: boolean;
  log?: (s: string) => void;
}

// ---------------------------------------------------------------------------------------------
// Tool locations (same layout as test/tools/build.sh)

function findToolsDir(): string {
  const fromEnv = process.env['PORTCULLIS_TOOLS_DIR'];
  if (fromEnv) return fromEnv;
  const starts = [path.dirname(fileURLToPath(import.meta.url)), process.cwd()];
  for (const start of starts) {
    let d = start;
    for (;;) {
      const candidate = path.join(d, 'test', 'tools');
      if (fs.existsSync(path.join(candidate, 'versions.env'))) return candidate;
      const up = path.dirname(d);
      if (up === d) break;
      d = up;
    }
  }
  throw new Error(
    'cannot find test/tools/versions.env above ' + starts.join(' or ') + '; set PORTCULLIS_TOOLS_DIR',
  );
}

export interface ToolVersions {
  KUBE_VERSION: string;
  ETCD_VERSION: string;
  HELM_VERSION: string;
  ISTIO_API_VERSION: string;
  GATEWAY_API_VERSION: string;
  ENVOY_GATEWAY_VERSION: string;
  PROMETHEUS_OPERATOR_VERSION: string;
}

/** The versions pinned in test/tools/versions.env. */
export function toolVersions(): ToolVersions {
  const text = fs.readFileSync(path.join(findToolsDir(), 'versions.env'), 'utf8');
  const vars: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^\s*([A-Z0-9_]+)=(\S*)\s*$/.exec(line);
    if (m?.[1] !== undefined && m[2] !== undefined) vars[m[1]] = m[2];
  }
  const need = (k: keyof ToolVersions): string => {
    const v = vars[k];
    if (!v) throw new Error(`versions.env: ${k} is not set`);
    return v;
  };
  return {
    KUBE_VERSION: need('KUBE_VERSION'),
    ETCD_VERSION: need('ETCD_VERSION'),
    HELM_VERSION: need('HELM_VERSION'),
    ISTIO_API_VERSION: need('ISTIO_API_VERSION'),
    GATEWAY_API_VERSION: need('GATEWAY_API_VERSION'),
    ENVOY_GATEWAY_VERSION: need('ENVOY_GATEWAY_VERSION'),
    PROMETHEUS_OPERATOR_VERSION: need('PROMETHEUS_OPERATOR_VERSION'),
  };
}

/** Cache root shared with build.sh. */
export function cacheDir(): string {
  const explicit = process.env['PORTCULLIS_CACHE'];
  if (explicit) return explicit;
  const xdg = process.env['XDG_CACHE_HOME'] || path.join(os.homedir(), '.cache');
  return path.join(xdg, 'portcullis');
}

type BuildTarget = 'kube' | 'etcd' | 'helm' | 'crds';
type BinName = 'kube-apiserver' | 'kube-controller-manager' | 'etcd' | 'helm';

/** Path of a cached upstream binary (may not exist yet; see ensureTools). */
export function toolPath(name: BinName): string {
  const v = toolVersions();
  const version = name === 'etcd' ? v.ETCD_VERSION : name === 'helm' ? v.HELM_VERSION : v.KUBE_VERSION;
  return path.join(cacheDir(), 'bin', `${name}-${version}`);
}

function upstreamCrdDirs(): string[] {
  const v = toolVersions();
  const root = path.join(cacheDir(), 'crds');
  return [
    path.join(root, `istio-${v.ISTIO_API_VERSION}`),
    path.join(root, `gateway-api-${v.GATEWAY_API_VERSION}`),
    path.join(root, `envoy-gateway-${v.ENVOY_GATEWAY_VERSION}`),
  ];
}

// Not applied to test clusters: only the chart's PrometheusRule is validated against it.
function prometheusOperatorCrdDir(): string {
  return path.join(cacheDir(), 'crds', `prometheus-operator-${toolVersions().PROMETHEUS_OPERATOR_VERSION}`);
}

/** The Prometheus Operator's PrometheusRule CRD manifest. Throws if `build.sh crds` has not fetched it. */
export function prometheusRuleCrdFile(): string {
  const dir = prometheusOperatorCrdDir();
  if (!fs.existsSync(path.join(dir, '.complete'))) throw new Error(`PrometheusRule CRD missing in ${dir}: run test/tools/build.sh crds`);
  return path.join(dir, 'monitoring.coreos.com_prometheusrules.yaml');
}

/**
 * The cached upstream CRD manifests (Istio, Gateway API standard channel, Envoy Gateway), in
 * apply order. Throws if they have not been fetched (run `test/tools/build.sh crds`, or
 * `await ensureTools(['crds'])`).
 */
export function upstreamCrdFiles(): string[] {
  const files: string[] = [];
  for (const dir of upstreamCrdDirs()) {
    if (!fs.existsSync(path.join(dir, '.complete'))) {
      throw new Error(`upstream CRDs missing in ${dir}: run test/tools/build.sh crds`);
    }
    for (const f of fs.readdirSync(dir).sort()) {
      if (f.endsWith('.yaml') || f.endsWith('.yml')) files.push(path.join(dir, f));
    }
  }
  return files;
}

/** Runs build.sh for whichever of the given targets is not cached yet. */
export async function ensureTools(
  targets: BuildTarget[],
  log: (s: string) => void = () => {},
): Promise<void> {
  const missing = targets.filter((t) => {
    switch (t) {
      case 'kube':
        return !isExecutable(toolPath('kube-apiserver')) || !isExecutable(toolPath('kube-controller-manager'));
      case 'etcd':
        return !isExecutable(toolPath('etcd'));
      case 'helm':
        return !isExecutable(toolPath('helm'));
      case 'crds':
        return [...upstreamCrdDirs(), prometheusOperatorCrdDir()].some((d) => !fs.existsSync(path.join(d, '.complete')));
    }
  });
  if (missing.length === 0) return;
  const script = path.join(findToolsDir(), 'build.sh');
  log(`building missing tools (${missing.join(' ')}) with ${script}; a cold kube build takes many minutes`);
  const r = await run('bash', [script, ...missing], { onLine: (l) => log(l) });
  if (r.code !== 0) {
    throw new Error(`${script} ${missing.join(' ')} failed (exit ${r.code}):\n${tail(r.stdout + r.stderr, 40)}`);
  }
}

function isExecutable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------
// Small process helpers

interface RunOptions {
  input?: string;
  env?: NodeJS.ProcessEnv;
  onLine?: (line: string) => void;
}

function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<KubectlResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env });
    let stdout = '';
    let stderr = '';
    let pending = '';
    const onData = (chunk: string): void => {
      if (!opts.onLine) return;
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const l of lines) opts.onLine(l);
    };
    child.stdout.setEncoding('utf8').on('data', (c: string) => {
      stdout += c;
      onData(c);
    });
    child.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
      onData(c);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      if (opts.onLine && pending) opts.onLine(pending);
      resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr });
    });
    child.stdin.on('error', () => {}); // EPIPE if the child exits without reading
    child.stdin.end(opts.input ?? '');
  });
}

function openssl(args: string[], cwd: string): void {
  const r = spawnSync('openssl', args, { cwd, encoding: 'utf8' });
  if (r.error) throw new Error(`openssl not runnable: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} failed (exit ${r.status}): ${r.stderr}`);
}

function tail(s: string, lines: number): string {
  return s.split('\n').slice(-lines).join('\n');
}

function readTail(file: string, lines = 30): string {
  try {
    return tail(fs.readFileSync(file, 'utf8'), lines);
  } catch {
    return '(no log)';
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A free TCP port on 127.0.0.1 (bound to port 0, then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      if (addr === null || typeof addr === 'string') {
        srv.close();
        reject(new Error('no port'));
        return;
      }
      srv.close(() => resolve(addr.port));
    });
  });
}

async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

// A long-running component whose output goes to <dir>/<name>.log.
class Proc {
  child: ChildProcess | undefined;
  exited: Promise<void> = Promise.resolve();
  exitInfo: string | undefined;

  constructor(
    readonly name: string,
    readonly bin: string,
    readonly args: string[],
    readonly logFile: string,
  ) {}

  start(): void {
    const fd = fs.openSync(this.logFile, 'a');
    try {
      const child = spawn(this.bin, this.args, { stdio: ['ignore', fd, fd] });
      this.child = child;
      this.exitInfo = undefined;
      this.exited = new Promise((resolve) => {
        child.on('exit', (code, signal) => {
          this.exitInfo = signal ? `killed by ${signal}` : `exit code ${code}`;
          this.child = undefined;
          resolve();
        });
        child.on('error', (err) => {
          this.exitInfo = `failed to start: ${err.message}`;
          this.child = undefined;
          resolve();
        });
      });
    } finally {
      fs.closeSync(fd);
    }
  }

  /** Throws with the log tail if the process has exited. */
  assertRunning(): void {
    if (this.exitInfo !== undefined) {
      throw new Error(`${this.name} exited (${this.exitInfo}); last log lines from ${this.logFile}:\n${readTail(this.logFile)}`);
    }
  }

  async stop(graceMs = 10_000): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  killNow(): void {
    try {
      this.child?.kill('SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

// Clusters still running, cleaned up synchronously if the process exits without stop().
const live = new Set<{ procs: Proc[]; dir: string; keep: boolean }>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const cleanupAll = (): void => {
    for (const c of live) {
      for (const p of [...c.procs].reverse()) p.killNow();
      if (!c.keep) fs.rmSync(c.dir, { recursive: true, force: true });
    }
    live.clear();
  };
  process.on('exit', cleanupAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      cleanupAll();
      process.kill(process.pid, sig); // re-raise with the default behaviour
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Certificates and kubeconfig

interface Pki {
  caCrt: string;
  servingCrt: string;
  servingKey: string;
  adminCrt: string;
  adminKey: string;
  saKey: string;
  saPub: string;
}

function makePki(dir: string): Pki {
  const pki = path.join(dir, 'pki');
  fs.mkdirSync(pki, { recursive: true });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=portcullis-test-ca',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'], pki);
  const leaf = (name: string, subj: string, ext: string): void => {
    fs.writeFileSync(path.join(pki, `${name}.ext`), ext);
    openssl(['req', '-new', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subj], pki);
    openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial',
      '-days', '2', '-out', `${name}.crt`, '-extfile', `${name}.ext`], pki);
  };
  leaf('serving', '/CN=kube-apiserver',
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' +
      'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc\n');
  leaf('admin', '/O=system:masters/CN=portcullis-admin',
    'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n');
  openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'sa.key'], pki);
  openssl(['ec', '-in', 'sa.key', '-pubout', '-out', 'sa.pub'], pki);
  const p = (f: string): string => path.join(pki, f);
  return {
    caCrt: p('ca.crt'),
    servingCrt: p('serving.crt'),
    servingKey: p('serving.key'),
    adminCrt: p('admin.crt'),
    adminKey: p('admin.key'),
    saKey: p('sa.key'),
    saPub: p('sa.pub'),
  };
}

function writeKubeconfig(file: string, server: string, pki: Pki): void {
  const b64 = (f: string): string => fs.readFileSync(f).toString('base64');
  const yaml = `apiVersion: v1
kind: Config
clusters:
- name: portcullis-test
  cluster:
    server: ${server}
    certificate-authority-data: ${b64(pki.caCrt)}
users:
- name: portcullis-admin
  user:
    client-certificate-data: ${b64(pki.adminCrt)}
    client-key-data: ${b64(pki.adminKey)}
contexts:
- name: portcullis-test
  context:
    cluster: portcullis-test
    user: portcullis-admin
current-context: portcullis-test
`;
  fs.writeFileSync(file, yaml, { mode: 0o600 });
}

function httpsGet(url: string, pki: Pki): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      url,
      {
        ca: fs.readFileSync(pki.caCrt),
        cert: fs.readFileSync(pki.adminCrt),
        key: fs.readFileSync(pki.adminKey),
        timeout: 5_000,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
  });
}

async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  procs: Proc[],
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    for (const p of procs) p.assertRunning();
    try {
      if (await check()) return;
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      const logs = procs.map((p) => `--- ${p.logFile}\n${readTail(p.logFile, 20)}`).join('\n');
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last})` : ''}\n${logs}`);
    }
    await sleep(250);
  }
}

// ---------------------------------------------------------------------------------------------

const ADMISSION_PLUGINS = [
  'NamespaceLifecycle',
  'LimitRanger',
  'ServiceAccount',
  'DefaultStorageClass',
  'DefaultTolerationSeconds',
  'PodSecurity',
  'ResourceQuota',
  'MutatingAdmissionWebhook',
  'ValidatingAdmissionWebhook',
  'ValidatingAdmissionPolicy',
];

interface Ports {
  etcd: number;
  peer: number;
  api: number;
  kcm: number;
}

async function allocatePorts(): Promise<Ports> {
  const [etcd, peer, api, kcm] = await distinctFreePorts(4);
  if (etcd === undefined || peer === undefined || api === undefined || kcm === undefined) {
    throw new Error('could not allocate ports');
  }
  return { etcd, peer, api, kcm };
}

function startEtcd(dir: string, ports: Ports): { proc: Proc; url: string } {
  const url = `http://127.0.0.1:${ports.etcd}`;
  const peerUrl = `http://127.0.0.1:${ports.peer}`;
  const proc = new Proc('etcd', toolPath('etcd'), [
    '--name=default',
    `--data-dir=${path.join(dir, 'etcd')}`,
    `--listen-client-urls=${url}`,
    `--advertise-client-urls=${url}`,
    `--listen-peer-urls=${peerUrl}`,
    `--initial-advertise-peer-urls=${peerUrl}`,
    `--initial-cluster=default=${peerUrl}`,
    '--initial-cluster-state=new',
    '--unsafe-no-fsync', // test data only; much faster on slow disks
    '--log-level=warn',
  ], path.join(dir, 'etcd.log'));
  proc.start();
  return { proc, url };
}

async function waitEtcd(proc: Proc, url: string): Promise<void> {
  await waitFor('etcd /health', async () => {
    const r = await fetch(`${url}/health`);
    return r.ok && ((await r.json()) as { health?: string }).health === 'true';
  }, [proc], 30_000);
}

function apiserverArgs(dir: string, pki: Pki, ports: Ports, etcdUrl: string): string[] {
  return [
    `--etcd-servers=${etcdUrl}`,
    '--bind-address=127.0.0.1',
    '--advertise-address=127.0.0.1',
    `--secure-port=${ports.api}`,
    `--tls-cert-file=${pki.servingCrt}`,
    `--tls-private-key-file=${pki.servingKey}`,
    '--tls-min-version=VersionTLS12',
    `--client-ca-file=${pki.caCrt}`,
    '--authorization-mode=RBAC',
    '--anonymous-auth=false',
    '--profiling=false',
    '--allow-privileged=false',
    '--enable-bootstrap-token-auth=false',
    `--enable-admission-plugins=${ADMISSION_PLUGINS.join(',')}`,
    '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
    `--service-account-key-file=${pki.saPub}`,
    `--service-account-signing-key-file=${pki.saKey}`,
    '--service-cluster-ip-range=10.96.0.0/16',
    // A loopback address cannot be published as the `kubernetes` Service endpoint.
    '--endpoint-reconciler-type=none',
    `--cert-dir=${path.join(dir, 'apiserver-certs')}`,
  ];
}

function kcmArgs(dir: string, pki: Pki, ports: Ports, extra: { kubeconfig: string; controllers: string[] }): string[] {
  const { kubeconfig, controllers } = extra;
  return [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    `--controllers=${controllers.join(',')}`,
    '--leader-elect=false',
    '--bind-address=127.0.0.1',
    `--secure-port=${ports.kcm}`,
    `--cert-dir=${path.join(dir, 'kcm-certs')}`,
    `--root-ca-file=${pki.caCrt}`,
    `--service-account-private-key-file=${pki.saKey}`,
    '--use-service-account-credentials=false',
    '--profiling=false',
  ];
}

type Kubectl = TestCluster['kubectl'];

/** Server-side applies the manifests and waits for every CRD among them to be Established. */
async function applyAndWaitCrds(kubectl: Kubectl, manifests: string[]): Promise<number> {
  const applied = await kubectl([
    'apply', '--server-side', '--force-conflicts', '--field-manager=portcullis-test',
    ...manifests.flatMap((f) => ['-f', f]),
  ]);
  if (applied.code !== 0) {
    throw new Error(`kubectl apply of CRDs failed (exit ${applied.code}):\n${applied.stderr}${tail(applied.stdout, 20)}`);
  }
  const crdNames = applied.stdout
    .split('\n')
    .map((l) => /^customresourcedefinition\.apiextensions\.k8s\.io\/(\S+)/.exec(l)?.[1])
    .filter((n): n is string => n !== undefined);
  if (crdNames.length === 0) return 0;
  const waited = await kubectl([
    'wait', '--for=condition=Established', '--timeout=90s',
    ...crdNames.map((n) => `customresourcedefinition/${n}`),
  ]);
  if (waited.code !== 0) {
    throw new Error(`CRDs not Established (exit ${waited.code}):\n${waited.stderr}${waited.stdout}`);
  }
  return crdNames.length;
}

interface ClusterState {
  procs: Proc[];
  dir: string;
  keep: boolean;
  stopped: boolean;
}

async function stopCluster(state: ClusterState, log: (s: string) => void): Promise<void> {
  if (state.stopped) return;
  state.stopped = true;
  for (const p of [...state.procs].reverse()) await p.stop();
  live.delete(state);
  if (state.keep) log(`cluster stopped; kept ${state.dir}`);
  else fs.rmSync(state.dir, { recursive: true, force: true });
}

export async function startTestCluster(opts: StartTestClusterOptions = {}): Promise<TestCluster> {
  const log = opts.log ?? (() => {});
  const wantUpstreamCrds = opts.upstreamCrds ?? true;
  await ensureTools(wantUpstreamCrds ? ['kube', 'etcd', 'crds'] : ['kube', 'etcd'], log);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-cluster-'));
  const state: ClusterState = { procs: [], dir, keep: process.env['PORTCULLIS_KEEP_CLUSTER'] === '1', stopped: false };
  installExitHook();
  live.add(state);
  try {
    return await bootCluster(state, opts, log);
  } catch (err) {
    await stopCluster(state, log).catch(() => {});
    throw err;
  }
}

async function bootCluster(state: ClusterState, opts: StartTestClusterOptions, log: (s: string) => void): Promise<TestCluster> {
  const t0 = Date.now();
  const { dir } = state;
  const pki = makePki(dir);
  const ports = await allocatePorts();
  const server = `https://127.0.0.1:${ports.api}`;
  const kubeconfig = path.join(dir, 'admin.kubeconfig');
  writeKubeconfig(kubeconfig, server, pki);
  const kubectlBin = process.env['KUBECTL'] || 'kubectl';
  const kubectl: Kubectl = (args, input) =>
    run(kubectlBin, [`--kubeconfig=${kubeconfig}`, ...args], input === undefined ? {} : { input });

  const etcd = startEtcd(dir, ports);
  state.procs.push(etcd.proc);
  await waitEtcd(etcd.proc, etcd.url);
  log(`etcd ready on ${etcd.url} (${Date.now() - t0} ms)`);

  const apiserver = new Proc('kube-apiserver', toolPath('kube-apiserver'),
    apiserverArgs(dir, pki, ports, etcd.url), path.join(dir, 'kube-apiserver.log'));
  state.procs.push(apiserver);
  const waitReady = (): Promise<void> =>
    waitFor('kube-apiserver /readyz', async () => (await httpsGet(`${server}/readyz`, pki)).status === 200,
      [etcd.proc, apiserver], 90_000);
  apiserver.start();
  await waitReady();
  log(`kube-apiserver ready on ${server} (${Date.now() - t0} ms)`);

  if (opts.withControllerManager) {
    const controllers = opts.controllers ?? ['garbagecollector', 'namespace'];
    const kcm = new Proc('kube-controller-manager', toolPath('kube-controller-manager'),
      kcmArgs(dir, pki, ports, { kubeconfig, controllers }), path.join(dir, 'kube-controller-manager.log'));
    state.procs.push(kcm);
    kcm.start();
    // kcm serves /healthz with a self-signed cert of its own; an open port is enough here.
    await waitFor('kube-controller-manager port', () => tcpOpen(ports.kcm), [etcd.proc, apiserver, kcm], 60_000);
    log(`kube-controller-manager running: ${controllers.join(',')} (${Date.now() - t0} ms)`);
  }

  const manifests = [...(opts.upstreamCrds === false ? [] : upstreamCrdFiles()), ...(opts.crdFiles ?? [])];
  if (manifests.length > 0) {
    const n = await applyAndWaitCrds(kubectl, manifests);
    log(`applied ${manifests.length} manifest file(s), ${n} CRD(s) established (${Date.now() - t0} ms)`);
  }

  return {
    kubeconfig,
    server,
    dir,
    kubectl,
    stopApiServer: () => apiserver.stop(),
    startApiServer: async () => {
      if (state.stopped) throw new Error('cluster is stopped');
      if (apiserver.child) return;
      // The port was ours a moment ago; make sure it has been released.
      await waitFor(`port ${ports.api} to be free`, async () => !(await tcpOpen(ports.api)), [etcd.proc], 15_000);
      apiserver.start();
      await waitReady();
      log(`kube-apiserver restarted on ${server}`);
    },
    stop: () => stopCluster(state, log),
  };
}

function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
    s.setTimeout(1_000, () => {
      s.destroy();
      resolve(false);
    });
  });
}
