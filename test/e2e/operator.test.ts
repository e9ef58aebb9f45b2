/**
 * The operator and the ext_authz cluster source against a real control plane (kube-apiserver,
 * etcd, kube-controller-manager for garbage collection) with the real upstream CRDs of Istio,
 * Gateway API and Envoy Gateway, so every generated object is validated by the upstream schemas.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { startTestCluster, type TestCluster } from '../cluster/cluster.js';
import { loadKubeConfig } from '../../kube/config.js';
import { resolveMaskingConfig, resolveServeConfig } from '../../extauthz/config.js';
import { startServer, type RunningServer } from '../../extauthz/server/serve.js';
import { parseOperatorArgs, type OperatorConfig } from '../../operator/config.js';
import { runOperator, type RunningOperator } from '../../operator/manager.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const silent = pino({ level: 'silent' });

/** The parts of kubectl's JSON output these tests read. */
interface KubeJson {
  metadata: { name: string; generation?: number; ownerReferences?: { kind: string }[] };
  spec: Record<string, unknown> & {
    action?: string;
    provider?: { name: string };
    mtls?: { mode: string };
    holderIdentity?: string;
    extAuth?: { failOpen: boolean; contextExtensions: { value: string }[] };
    extProc?: { processingMode: { response: { body: string } } }[];
  };
  status?: { observedGeneration?: number; conditions?: { type: string; status: string; reason: string; message: string }[] };
  items: KubeJson[];
  type?: string;
  reason?: string;
}

interface ConditionView {
  status: string;
  reason: string;
  message: string;
  generation?: number;
  observedGeneration?: number;
}

async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

const SERVICES = ['records-api:records', 'stats-api:stats', 'open-data-api:open-data']
  .map((s) => {
    const [name, app] = s.split(':');
    return `apiVersion: v1\nkind: Service\nmetadata: { name: ${name}, namespace: c2g }\nspec:\n  selector: { app: ${app} }\n  ports: [{ port: 8080 }]\n`;
  })
  .join('---\n');

describe('operator on a real API server', { timeout: 600_000 }, () => {
  let cluster: TestCluster;
  let operator: RunningOperator;
  const kubectlJson = async (args: string[]): Promise<KubeJson> => {
    const r = await cluster.kubectl([...args, '-o', 'json']);
    if (r.code !== 0) throw new Error(r.stderr);
    return JSON.parse(r.stdout) as KubeJson;
  };
  const condition = async (kind: string, name: string, type = 'Ready'): Promise<ConditionView | undefined> => {
    const obj = await kubectlJson(['get', kind, name, '-n', 'c2g']);
    const c = (obj.status?.conditions ?? []).find((x) => x.type === type);
    return c ? { ...c, generation: obj.metadata.generation, observedGeneration: obj.status?.observedGeneration } : undefined;
  };
  const apply = async (yaml: string): Promise<void> => {
    const r = await cluster.kubectl(['apply', '-f', '-'], yaml);
    assert.equal(r.code, 0, r.stderr);
  };

  before(async () => {
    cluster = await startTestCluster({ withControllerManager: true, crdFiles: [`${ROOT}crds/tenant.yaml`, `${ROOT}crds/apipolicy.yaml`] });
    const r = await cluster.kubectl(['apply', '-f', `${ROOT}examples/policies`]);
    assert.equal(r.code, 0, r.stderr);
    await apply(SERVICES);
    const cfg = parseOperatorArgs(['--kubeconfig', cluster.kubeconfig, '--identity', 'op-main', '--lease-namespace', 'default', '--lease-name', 'main', '--http-address', '127.0.0.1:0', '--log-level', 'silent']) as OperatorConfig;
    operator = await runOperator(cfg, loadKubeConfig(cluster.kubeconfig), silent, () => undefined);
  });

  after(async () => {
    await operator?.stop();
    await cluster?.stop();
  });

  test('the example policies become Ready with the current generation, tenants too', async () => {
    for (const name of ['citizen-records', 'agency-statistics', 'open-data']) {
      const c = await until(`${name} Ready`, async () => {
        const x = await condition('apipolicy', name);
        return x?.status === 'True' ? x : undefined;
      });
      assert.equal(c.observedGeneration, c.generation);
      assert.equal(c.reason, 'Ready');
    }
    for (const name of ['citizen-app', 'dept-revenue', 'partner-acme']) {
      await until(`tenant ${name} Ready`, async () => (await condition('tenant', name))?.status === 'True');
    }
  });

  test('generated Istio objects exist and were accepted by the upstream schemas', async () => {
    const aps = await kubectlJson(['get', 'authorizationpolicies.security.istio.io', '-n', 'c2g']);
    const byName = new Map(aps.items.map((i) => [i.metadata.name, i]));
    for (const name of ['portcullis-citizen-records', 'portcullis-agency-statistics', 'portcullis-open-data']) {
      const ap = byName.get(name);
      assert.ok(ap, `${name} missing`);
      assert.equal(ap.spec.action, 'CUSTOM');
      assert.equal(ap.spec.provider?.name, 'portcullis');
      assert.equal(ap.metadata.ownerReferences?.[0]?.kind, 'ApiPolicy');
    }
    const pas = await kubectlJson(['get', 'peerauthentications.security.istio.io', '-n', 'c2g']);
    const names = pas.items.map((i) => i.metadata.name).sort();
    // Every example policy admits agencies somewhere: records (tax audit), statistics, and open
    // data's public health rule (principals.anonymous also admits authenticated callers).
    assert.deepEqual(names, ['portcullis-agency-statistics', 'portcullis-citizen-records', 'portcullis-open-data']);
    assert.equal(pas.items[0]?.spec.mtls?.mode, 'STRICT');
  });

  test('Envoy Gateway outputs for an HTTPRoute target, with ext_proc for masks', async () => {
    await apply(`apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: gw-records, namespace: c2g }
spec:
  hosts: [gw.c2g.example]
  targetRefs: [{ kind: HTTPRoute, group: gateway.networking.k8s.io, name: records-route }]
  rules:
    - name: citizen
      methods: [GET]
      paths: ["/v1/citizens/{id}"]
      principals: { types: [consumer] }
      when: "principal.subject == params.id"
      mask: [{ field: "$.taxId", action: partial, keepLast: 4 }]
`);
    await until('gw-records Ready', async () => (await condition('apipolicy', 'gw-records'))?.status === 'True');
    const sp = await kubectlJson(['get', 'securitypolicies.gateway.envoyproxy.io', 'portcullis-gw-records', '-n', 'c2g']);
    assert.equal(sp.spec.extAuth?.failOpen, false);
    assert.equal(sp.spec.extAuth?.contextExtensions[0]?.value, 'c2g/gw-records');
    const eep = await kubectlJson(['get', 'envoyextensionpolicies.gateway.envoyproxy.io', 'portcullis-gw-records', '-n', 'c2g']);
    assert.equal(eep.spec.extProc?.[0]?.processingMode.response.body, 'Buffered');
  });

  test('broken CEL: Ready=False naming the rule and the column', async () => {
    await apply(`apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: broken, namespace: c2g }
spec:
  hosts: [broken.c2g.example]
  targetRefs: [{ kind: Service, name: records-api }]
  rules:
    - name: bad-condition
      when: "principal.subject == "
`);
    const c = await until('broken Ready=False', async () => {
      const x = await condition('apipolicy', 'broken');
      return x?.status === 'False' ? x : undefined;
    });
    assert.equal(c.reason, 'Invalid');
    assert.match(c.message, /rule bad-condition/);
    assert.match(c.message, /column \d+/);
    assert.match(c.message, /POLICY_CEL/);
    const events = await kubectlJson(['get', 'events', '-n', 'c2g', '--field-selector', 'involvedObject.name=broken']);
    assert.ok(events.items.some((e) => e.type === 'Warning' && e.reason === 'Invalid'), 'a Warning event for humans');
  });

  test('an edited or deleted generated object is restored', async () => {
    const r = await cluster.kubectl(['patch', 'authorizationpolicies.security.istio.io', 'portcullis-open-data', '-n', 'c2g', '--type', 'merge', '-p', '{"spec":{"action":"ALLOW","provider":null}}']);
    assert.equal(r.code, 0, r.stderr);
    await until('action restored', async () => (await kubectlJson(['get', 'authorizationpolicies.security.istio.io', 'portcullis-open-data', '-n', 'c2g'])).spec.action === 'CUSTOM');
    const d = await cluster.kubectl(['delete', 'authorizationpolicies.security.istio.io', 'portcullis-open-data', '-n', 'c2g', '--wait=false']);
    assert.equal(d.code, 0, d.stderr);
    await until('recreated', async () => (await cluster.kubectl(['get', 'authorizationpolicies.security.istio.io', 'portcullis-open-data', '-n', 'c2g'])).code === 0);
  });

  test('a deleted policy takes its outputs with it', async () => {
    const d = await cluster.kubectl(['delete', 'apipolicy', 'gw-records', '-n', 'c2g']);
    assert.equal(d.code, 0, d.stderr);
    await until('SecurityPolicy garbage-collected', async () => (await cluster.kubectl(['get', 'securitypolicies.gateway.envoyproxy.io', 'portcullis-gw-records', '-n', 'c2g'])).code !== 0);
    await until('EnvoyExtensionPolicy garbage-collected', async () => (await cluster.kubectl(['get', 'envoyextensionpolicies.gateway.envoyproxy.io', 'portcullis-gw-records', '-n', 'c2g'])).code !== 0);
  });

  test('two replicas: one leader; killing it hands over to the other', async () => {
    const procs: ChildProcess[] = [];
    const start = (id: string): ChildProcess => {
      const p = spawn(process.execPath, [`${ROOT}dist/operator/main.js`, '--kubeconfig', cluster.kubeconfig, '--identity', id, '--lease-namespace', 'default', '--lease-name', 'ha', '--http-address', '127.0.0.1:0', '--log-level', 'silent'], { stdio: 'ignore' });
      procs.push(p);
      return p;
    };
    try {
      const a = start('replica-a');
      start('replica-b');
      const holder = async (): Promise<string | undefined> => (await kubectlJson(['get', 'lease', 'ha', '-n', 'default'])).spec.holderIdentity || undefined;
      const first = await until('a leader', holder);
      assert.ok(first === 'replica-a' || first === 'replica-b');
      const leader = first === 'replica-a' ? a : procs[1]!;
      leader.kill('SIGKILL');
      const second = await until('the other replica takes over', async () => {
        const h = await holder();
        return h && h !== first ? h : undefined;
      }, 90_000);
      assert.notEqual(second, first);
    } finally {
      for (const p of procs) p.kill('SIGKILL');
    }
  });

  describe('ext_authz with the kubernetes policy source', () => {
    let server: RunningServer;
    before(async () => {
      const config = resolveServeConfig({ policySource: 'kubernetes', kubeconfig: cluster.kubeconfig, grpcAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', logLevel: 'silent' }, {});
      config.masking = resolveMaskingConfig({ extProcAddress: '127.0.0.1:0' }, {});
      server = await startServer(config, silent);
    });
    after(async () => server?.close());

    const request = {
      attributes: {
        source: { principal: 'spiffe://gov.example/ns/revenue/sa/reporting' },
        request: { http: { method: 'GET', host: 'fresh.c2g.example', path: '/v1/fresh', headers: {} } },
      },
    };

    test('decides by a policy applied a moment ago, and keeps deciding while the API server is down', async () => {
      const before = await server.pipeline.check(request);
      assert.equal(before.allowed, false);
      assert.equal(before.code, 'NO_POLICY');
      const applied = Date.now();
      await apply(`apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: fresh, namespace: c2g }
spec:
  hosts: [fresh.c2g.example]
  rules: [{ name: agencies, principals: { types: [agency] } }]
`);
      await until('the new policy is served', async () => (await server.pipeline.check(request)).allowed, 5_000);
      const latency = Date.now() - applied;
      process.stderr.write(`# fresh policy served ${latency} ms after kubectl apply\n`);
      await cluster.stopApiServer();
      let back: number;
      try {
        const d = await server.pipeline.check(request);
        assert.equal(d.allowed, true, 'the last snapshot keeps serving');
        assert.equal(d.rule, 'agencies');
        // Down long enough for the watch retries to reach their backoff cap (the old informer
        // sat at 30 s here, and a change then took ~1 minute to arrive).
        await new Promise((r) => setTimeout(r, 8000));
      } finally {
        await cluster.startApiServer();
        back = Date.now();
      }
      const again = await server.pipeline.check(request);
      assert.equal(again.allowed, true, `after the restart: ${again.code} ${again.reason}`);
      // The watch reconnects by itself: a change made after the restart reaches decisions
      // within 5 s of the API server being back.
      const del = await cluster.kubectl(['delete', 'apipolicy', 'fresh', '-n', 'c2g']);
      assert.equal(del.code, 0, del.stderr);
      await until('the deletion is seen after reconnecting', async () => (await server.pipeline.check(request)).code === 'NO_POLICY', 5_000 - (Date.now() - back));
      process.stderr.write(`# change after an API server restart decided ${Date.now() - back} ms after the API was back\n`);
    });
  });
});
