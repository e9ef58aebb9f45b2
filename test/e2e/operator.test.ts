/**
 * The operator and the ext_authz cluster source against a real control plane (kube-apiserver,
 * etcd, kube-controller-manager for garbage collection) with the real upstream CRDs of Istio,
 * Gateway API and Envoy Gateway, so every generated object is validated by the upstream schemas.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { parseAllDocuments } from 'yaml';
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
  metadata: { name: string; generation?: number; ownerReferences?: { kind: string }[]; annotations?: Record<string, string>; labels?: Record<string, string> };
  spec: Record<string, unknown> & {
    action?: string;
    provider?: { name: string };
    mtls?: { mode: string };
    holderIdentity?: string;
    extAuth?: { failOpen: boolean; contextExtensions: { value: string }[] };
    extProc?: { processingMode: { request?: Record<string, unknown>; response: { body: string } } }[];
    rules?: unknown[];
    portLevelMtls?: unknown;
    configPatches?: { match: { context: string; listener: { filterChain: { filter: { subFilter: { name: string } } } } }; patch: { operation: string; value: { name: string } } }[];
    workloadSelector?: { labels: Record<string, string> };
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
    // The cluster examples: the Services the policies target, and the citizen tenant with its
    // JWKS inline (examples/cluster/README.md), as a platform team would apply them.
    const c = await cluster.kubectl(['apply', '-f', `${ROOT}examples/cluster`]);
    assert.equal(c.code, 0, c.stderr);
    keys = mkdtempSync(path.join(tmpdir(), 'portcullis-dev-idp-'));
    const tenant = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [`${ROOT}examples/dev-idp.mjs`, 'cluster-tenant'], { env: { ...process.env, PORTCULLIS_DEV_IDP_KEYS: keys } }, (err, out) => (err ? reject(err) : resolve(out)));
    });
    await apply(tenant);
    // The namespace of the Portcullis Service, where ReferenceGrants for Envoy Gateway policies live.
    await apply('apiVersion: v1\nkind: Namespace\nmetadata: { name: portcullis-system }\n');
    // The example open-data policy validates feedback bodies: the Istio provider is taken to send
    // them (chart value istio.requestBodyMaxBytes), or the policy could not become Ready.
    const cfg = parseOperatorArgs(['--kubeconfig', cluster.kubeconfig, '--identity', 'op-main', '--lease-namespace', 'default', '--lease-name', 'main', '--http-address', '127.0.0.1:0', '--log-level', 'silent', '--istio-request-body-bytes', '65536']) as OperatorConfig;
    operator = await runOperator(cfg, loadKubeConfig(cluster.kubeconfig), silent, () => undefined);
  });

  let stopped = false;
  let keys: string | undefined;
  after(async () => {
    if (keys) rmSync(keys, { recursive: true, force: true });
    if (!stopped) await operator?.stop();
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

  test('examples/cluster holds every Service the examples target, and the cluster tenant carries its JWKS inline', async () => {
    const policies = parseAllDocuments(readdirSync(`${ROOT}examples/policies`).filter((f) => f.endsWith('.yaml')).map((f) => readFileSync(`${ROOT}examples/policies/${f}`, 'utf8')).join('\n---\n'))
      .map((d) => d.toJS() as { kind?: string; metadata?: { name: string }; spec?: { targetRefs?: { kind: string; name: string }[] } } | null)
      .filter((o) => o !== null);
    const targets = policies.filter((o) => o.kind === 'ApiPolicy').flatMap((o) => o.spec?.targetRefs ?? []).filter((t) => t.kind === 'Service').map((t) => t.name);
    assert.ok(targets.length >= 3);
    for (const t of targets) assert.equal((await cluster.kubectl(['get', 'service', t, '-n', 'c2g'])).code, 0, `Service ${t}`);
    const tenant = await kubectlJson(['get', 'tenant', 'citizen-app', '-n', 'c2g']);
    const jwt = (tenant.spec as { identity: { jwt: { jwks?: { keys: unknown[] }; jwksUri?: string } } }).identity.jwt;
    assert.equal(jwt.jwksUri, undefined);
    assert.equal(jwt.jwks?.keys.length, 2);
  });

  test('docs/envoy: the Envoy Gateway ClientTrafficPolicy fragment is valid against Envoy Gateway\'s CRD', async () => {
    const r = await cluster.kubectl(['apply', '--dry-run=server', '-f', `${ROOT}docs/envoy/envoy-gateway-client-traffic-policy.yaml`]);
    assert.equal(r.code, 0, r.stderr);
  });

  test('generated Istio objects exist and were accepted by the upstream schemas', async () => {
    const aps = await kubectlJson(['get', 'authorizationpolicies.security.istio.io', '-n', 'c2g']);
    const byName = new Map(aps.items.map((i) => [i.metadata.name, i]));
    // One per workload, shared by the policies targeting it: no policy owns it.
    for (const name of ['portcullis-service-records-api', 'portcullis-service-stats-api', 'portcullis-service-open-data-api']) {
      const ap = byName.get(name);
      assert.ok(ap, `${name} missing`);
      assert.equal(ap.spec.action, 'CUSTOM');
      assert.equal(ap.spec.provider?.name, 'portcullis');
      assert.equal(ap.metadata.ownerReferences, undefined);
      assert.equal(ap.metadata.labels?.['portcullis.io/policy'], undefined);
    }
    const pas = await kubectlJson(['get', 'peerauthentications.security.istio.io', '-n', 'c2g']);
    const names = pas.items.map((i) => i.metadata.name).sort();
    // Every example policy admits agencies somewhere: records (tax audit), statistics, and open
    // data's public health rule (principals.anonymous also admits authenticated callers).
    assert.deepEqual(names, ['portcullis-service-open-data-api', 'portcullis-service-records-api', 'portcullis-service-stats-api']);
    assert.equal(pas.items[0]?.spec.mtls?.mode, 'STRICT');
  });

  test('no bypass by construction: every generated CUSTOM policy has one empty rule (all requests of the workload)', async () => {
    const aps = await kubectlJson(['get', 'authorizationpolicies.security.istio.io', '-n', 'c2g', '-l', 'app.kubernetes.io/managed-by=portcullis-operator']);
    assert.ok(aps.items.length >= 3);
    for (const ap of aps.items) assert.deepEqual(ap.spec.rules, [{}], `${ap.metadata.name} narrows its rules`);
  });

  test('Istio masking: an EnvoyFilter inserts ext_proc after ext_authz on the inbound sidecar listener of the masking workload only', async () => {
    const efs = await kubectlJson(['get', 'envoyfilters.networking.istio.io', '-n', 'c2g']);
    // citizen-records masks (taxId); agency-statistics and open-data do not.
    assert.deepEqual(efs.items.map((e) => e.metadata.name), ['portcullis-service-records-api']);
    const ef = efs.items[0]!;
    assert.deepEqual(ef.spec.workloadSelector?.labels, { app: 'records' });
    const patch = ef.spec.configPatches?.[0];
    assert.equal(patch?.match.context, 'SIDECAR_INBOUND');
    assert.equal(patch?.match.listener.filterChain.filter.subFilter.name, 'envoy.filters.http.ext_authz');
    assert.equal(patch?.patch.operation, 'INSERT_AFTER');
    assert.equal(patch?.patch.value.name, 'envoy.filters.http.ext_proc');
  });

  test('Envoy Gateway: TargetNotFound, then ReferenceGrantMissing, then Unknown until its controller reports, Ready only once it accepted', async () => {
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
    const programmed = async (reason: string, status: string): Promise<ConditionView> =>
      until(`gw-records Programmed ${status} ${reason}`, async () => {
        const c = await condition('apipolicy', 'gw-records', 'Programmed');
        return c?.reason === reason && c.status === status ? c : undefined;
      });
    const missing = await programmed('TargetNotFound', 'False');
    assert.match(missing.message, /HTTPRoute records-route not found/);
    assert.equal((await condition('apipolicy', 'gw-records'))?.status, 'False');
    // The generated objects exist already (Envoy Gateway attaches them when the route appears),
    // accepted by Envoy Gateway's CRD schema: ext_proc sees request headers (the directive).
    const sp = await kubectlJson(['get', 'securitypolicies.gateway.envoyproxy.io', 'portcullis-gw-records', '-n', 'c2g']);
    assert.equal(sp.spec.extAuth?.failOpen, false);
    assert.equal(sp.spec.extAuth?.contextExtensions[0]?.value, 'c2g/gw-records');
    const eep = await kubectlJson(['get', 'envoyextensionpolicies.gateway.envoyproxy.io', 'portcullis-gw-records', '-n', 'c2g']);
    assert.equal(eep.spec.extProc?.[0]?.processingMode.response.body, 'Buffered');
    assert.ok(eep.spec.extProc?.[0]?.processingMode.request, 'request headers are sent to ext_proc');

    await apply(`apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: { name: records-route, namespace: c2g }
spec:
  parentRefs: [{ name: edge, namespace: c2g }]
  rules: [{ backendRefs: [{ name: records-api, port: 8080 }] }]
`);
    const grant = await programmed('ReferenceGrantMissing', 'False');
    assert.match(grant.message, /SecurityPolicy and EnvoyExtensionPolicy from namespace c2g/);

    await apply(`apiVersion: gateway.networking.k8s.io/v1beta1
kind: ReferenceGrant
metadata: { name: portcullis-extauthz, namespace: portcullis-system }
spec:
  from:
    - { group: gateway.envoyproxy.io, kind: SecurityPolicy, namespace: c2g }
    - { group: gateway.envoyproxy.io, kind: EnvoyExtensionPolicy, namespace: c2g }
  to: [{ group: "", kind: Service, name: portcullis-extauthz }]
`);
    // No Envoy Gateway controller runs on the test control plane: honestly Unknown.
    const waiting = await programmed('AwaitingEnvoyGateway', 'Unknown');
    assert.match(waiting.message, /SecurityPolicy\/portcullis-gw-records/);
    assert.equal((await condition('apipolicy', 'gw-records'))?.status, 'Unknown');

    // Play Envoy Gateway's controller: write its Accepted condition on both generated policies.
    const report = async (kind: string, status: string, message: string): Promise<void> => {
      const body = { status: { ancestors: [{ ancestorRef: { group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'edge', namespace: 'c2g' }, controllerName: 'gateway.envoyproxy.io/gatewayclass-controller', conditions: [{ type: 'Accepted', status, reason: status === 'True' ? 'Accepted' : 'Invalid', message, lastTransitionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z') }] }] } };
      const r = await cluster.kubectl(['patch', kind, 'portcullis-gw-records', '-n', 'c2g', '--subresource=status', '--type=merge', '-p', JSON.stringify(body)]);
      assert.equal(r.code, 0, r.stderr);
    };
    await report('securitypolicies.gateway.envoyproxy.io', 'True', 'Policy has been accepted.');
    await report('envoyextensionpolicies.gateway.envoyproxy.io', 'True', 'Policy has been accepted.');
    await until('gw-records Ready', async () => (await condition('apipolicy', 'gw-records'))?.status === 'True');
    await report('envoyextensionpolicies.gateway.envoyproxy.io', 'False', 'ext_proc backend not found');
    const rejected = await programmed('RejectedByEnvoyGateway', 'False');
    assert.match(rejected.message, /EnvoyExtensionPolicy\/portcullis-gw-records: ext_proc backend not found/);
  });

  test('Ready=False cases: a missing Service, a host claimed twice (the newer policy), an unknown tenant, a quota no tenant defines, a CEL field that does not exist', async () => {
    await apply(`apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: ghost, namespace: c2g }
spec:
  hosts: [ghost.c2g.example]
  targetRefs: [{ kind: Service, name: nowhere }]
  rules: [{ name: anyone, principals: { types: [agency] } }]
---
apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: records-again, namespace: c2g }
spec:
  hosts: [records.c2g.example]
  targetRefs: [{ kind: Service, name: records-api }]
  rules: [{ name: same-path, paths: ["/v1/citizens/{id}/records"], principals: { types: [agency] } }]
---
apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: stranger, namespace: c2g }
spec:
  hosts: [stranger.c2g.example]
  targetRefs: [{ kind: Service, name: stats-api }]
  rules: [{ name: nobody, principals: { tenants: [no-such-tenant] } }]
---
apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: quota-typo, namespace: c2g }
spec:
  hosts: [quota.c2g.example]
  targetRefs: [{ kind: Service, name: stats-api }]
  rules: [{ name: agencies, principals: { types: [agency] }, quotas: [{ name: daly }] }]
---
apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: field-typo, namespace: c2g }
spec:
  hosts: [field-typo.c2g.example]
  targetRefs: [{ kind: Service, name: stats-api }]
  rules: [{ name: typo, principals: { types: [agency] }, when: "principal.subjekt == 'x'" }]
`);
    const ready = (name: string): Promise<ConditionView> => until(`${name} Ready=False`, async () => {
      const c = await condition('apipolicy', name);
      return c?.status === 'False' ? c : undefined;
    });
    const ghost = await ready('ghost');
    assert.equal(ghost.reason, 'TargetNotFound');
    assert.match(ghost.message, /Service nowhere not found/);
    const again = await ready('records-again');
    assert.equal(again.reason, 'Invalid');
    assert.match(again.message, /already claimed by the older policy c2g\/citizen-records/);
    assert.equal((await condition('apipolicy', 'citizen-records'))?.status, 'True', 'the older policy keeps winning and stays Ready');
    const stranger = await ready('stranger');
    assert.match(stranger.message, /unknown tenant "no-such-tenant"/);
    const quota = await ready('quota-typo');
    assert.match(quota.message, /quota "daly" is not defined by any tenant/);
    // Typed CEL: a field the principal does not have is refused at load, so the policy is not Accepted.
    const typo = await ready('field-typo');
    assert.match(typo.message, /POLICY_CEL: when: principal has no field "subjekt"; did you mean "subject"\?/);
    assert.equal((await condition('apipolicy', 'field-typo', 'Accepted'))?.status, 'False');
    const d = await cluster.kubectl(['delete', 'apipolicy', 'ghost', 'records-again', 'stranger', 'quota-typo', 'field-typo', '-n', 'c2g']);
    assert.equal(d.code, 0, d.stderr);
  });

  test('drift repair removes weakening fields others add: istio.io/dry-run and port-level mTLS exceptions', async () => {
    const ann = await cluster.kubectl(['annotate', 'authorizationpolicies.security.istio.io', 'portcullis-service-stats-api', '-n', 'c2g', 'istio.io/dry-run=true']);
    assert.equal(ann.code, 0, ann.stderr);
    await until('dry-run removed', async () => {
      const ap = await kubectlJson(['get', 'authorizationpolicies.security.istio.io', 'portcullis-service-stats-api', '-n', 'c2g']);
      return !ap.metadata.annotations?.['istio.io/dry-run'];
    });
    const pa = await cluster.kubectl(['patch', 'peerauthentications.security.istio.io', 'portcullis-service-stats-api', '-n', 'c2g', '--type', 'merge', '-p', '{"spec":{"portLevelMtls":{"8080":{"mode":"DISABLE"}}}}']);
    assert.equal(pa.code, 0, pa.stderr);
    await until('portLevelMtls removed', async () => {
      const obj = await kubectlJson(['get', 'peerauthentications.security.istio.io', 'portcullis-service-stats-api', '-n', 'c2g']);
      return obj.spec.portLevelMtls === undefined && obj.spec.mtls?.mode === 'STRICT';
    });
  });

  const withCondition = (when: string): string => `apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: broken, namespace: c2g }
spec:
  hosts: [broken.c2g.example]
  targetRefs: [{ kind: Service, name: records-api }]
  rules:
    - name: bad-condition
      when: ${JSON.stringify(when)}
`;

  test('broken CEL: Ready=False naming the rule and the column', async () => {
    await apply(withCondition('principal.subject == '));
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
    // Mended: Ready=True again, and this recovery is an Event; a policy Ready from its first reconcile has none.
    await apply(withCondition("principal.subject != ''"));
    await until('broken Ready=True', async () => (await condition('apipolicy', 'broken'))?.status === 'True');
    const recovered = await until('a Normal Ready event', async () => {
      const e = await kubectlJson(['get', 'events', '-n', 'c2g', '--field-selector', 'involvedObject.name=broken']);
      return e.items.some((x) => x.type === 'Normal' && x.reason === 'Ready') || undefined;
    });
    assert.equal(recovered, true);
    await apply(`apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: calm, namespace: c2g }
spec:
  hosts: [calm.c2g.example]
  targetRefs: [{ kind: Service, name: records-api }]
  rules: [{ name: agencies, principals: { types: [agency] } }]
`);
    await until('calm Ready=True', async () => (await condition('apipolicy', 'calm'))?.status === 'True');
    const quiet = await kubectlJson(['get', 'events', '-n', 'c2g', '--field-selector', 'involvedObject.name=calm']);
    assert.deepEqual(quiet.items.filter((e) => e.type === 'Normal' && e.reason === 'Ready'), []);
  });

  test('an edited or deleted generated object is restored', async () => {
    const r = await cluster.kubectl(['patch', 'authorizationpolicies.security.istio.io', 'portcullis-service-open-data-api', '-n', 'c2g', '--type', 'merge', '-p', '{"spec":{"action":"ALLOW","provider":null}}']);
    assert.equal(r.code, 0, r.stderr);
    await until('action restored', async () => (await kubectlJson(['get', 'authorizationpolicies.security.istio.io', 'portcullis-service-open-data-api', '-n', 'c2g'])).spec.action === 'CUSTOM');
    const d = await cluster.kubectl(['delete', 'authorizationpolicies.security.istio.io', 'portcullis-service-open-data-api', '-n', 'c2g', '--wait=false']);
    assert.equal(d.code, 0, d.stderr);
    await until('recreated', async () => (await cluster.kubectl(['get', 'authorizationpolicies.security.istio.io', 'portcullis-service-open-data-api', '-n', 'c2g'])).code === 0);
  });

  test('a deleted policy takes its outputs with it', async () => {
    const d = await cluster.kubectl(['delete', 'apipolicy', 'gw-records', '-n', 'c2g']);
    assert.equal(d.code, 0, d.stderr);
    await until('SecurityPolicy garbage-collected', async () => (await cluster.kubectl(['get', 'securitypolicies.gateway.envoyproxy.io', 'portcullis-gw-records', '-n', 'c2g'])).code !== 0);
    await until('EnvoyExtensionPolicy garbage-collected', async () => (await cluster.kubectl(['get', 'envoyextensionpolicies.gateway.envoyproxy.io', 'portcullis-gw-records', '-n', 'c2g'])).code !== 0);
  });

  test('a workload targeted by several policies gets one set of objects, kept while any policy needs it (a refusal holds deletions)', async () => {
    const policy = (name: string, extra: string): string => `apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: ${name}, namespace: c2g }
spec:
  hosts: [${name}.c2g.example]
  targetRefs: [{ kind: Service, name: shared-api }]
${extra}
`;
    const agencies = '  rules: [{ name: agencies, principals: { types: [agency] } }]';
    const masking = '  rules: [{ name: consumers, principals: { types: [consumer] }, mask: [{ field: "$.taxId", action: redact }] }]';
    const consumers = '  rules: [{ name: consumers, principals: { types: [consumer] } }]';
    const names = async (kind: string): Promise<string[]> => (await kubectlJson(['get', kind, '-n', 'c2g', '-l', 'app.kubernetes.io/managed-by=portcullis-operator'])).items.map((i) => i.metadata.name).filter((n) => n.includes('shared') || n === 'portcullis-share-a').sort();
    const exists = async (kind: string, name: string): Promise<boolean> => (await cluster.kubectl(['get', kind, name, '-n', 'c2g'])).code === 0;
    const AP = 'authorizationpolicies.security.istio.io';
    const PA = 'peerauthentications.security.istio.io';
    const EF = 'envoyfilters.networking.istio.io';
    const OBJ = 'portcullis-service-shared-api';
    await apply('apiVersion: v1\nkind: Service\nmetadata: { name: shared-api, namespace: c2g }\nspec: { selector: { app: shared }, ports: [{ port: 8080 }] }\n');
    await apply(`${policy('share-a', agencies)}---\n${policy('share-b', masking)}`);
    for (const name of ['share-a', 'share-b']) await until(`${name} Ready`, async () => (await condition('apipolicy', name))?.status === 'True');
    assert.deepEqual([await names(AP), await names(PA), await names(EF)], [[OBJ], [OBJ], [OBJ]], 'one of each for the workload: the union of what the policies need');
    assert.match((await condition('apipolicy', 'share-a', 'Programmed'))!.message, new RegExp(`AuthorizationPolicy/${OBJ}`));
    // share-b stops masking: the EnvoyFilter no policy needs goes, the rest stays.
    await apply(policy('share-b', consumers));
    await until('EnvoyFilter pruned', async () => !(await exists(EF, OBJ)));
    assert.ok(await exists(AP, OBJ));
    // A per-policy object an earlier version generated is pruned by the namespace pass.
    await apply(`apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: { name: portcullis-share-a, namespace: c2g, labels: { app.kubernetes.io/managed-by: portcullis-operator, portcullis.io/policy: share-a } }
spec: { selector: { matchLabels: { app: shared } }, action: CUSTOM, provider: { name: portcullis }, rules: [{}] }
`);
    await until('legacy per-policy object pruned', async () => !(await exists(AP, 'portcullis-share-a')));
    // share-b masks again, then goes: the pass that removes its EnvoyFilter keeps what share-a
    // still needs (the AuthorizationPolicy and, for agencies, the PeerAuthentication).
    await apply(policy('share-b', masking));
    await until('EnvoyFilter back for share-b', () => exists(EF, OBJ));
    assert.equal((await cluster.kubectl(['delete', 'apipolicy', 'share-b', '-n', 'c2g'])).code, 0);
    await until('EnvoyFilter pruned with share-b', async () => !(await exists(EF, OBJ)));
    assert.ok(await exists(AP, OBJ), 'kept for share-a');
    assert.ok(await exists(PA, OBJ), 'kept for share-a');
    // A refused policy in the namespace: its earlier targets are unknown, so nothing is deleted.
    await apply(policy('share-broken', '  rules: [{ name: broken, principals: { types: [consumer] }, when: "principal.subject == " }]'));
    await until('share-broken refused', async () => (await condition('apipolicy', 'share-broken'))?.status === 'False');
    assert.equal((await cluster.kubectl(['delete', 'apipolicy', 'share-a', '-n', 'c2g', '--wait=true'])).code, 0);
    // A pass that starts after share-a is gone: drift on another workload's object of the
    // namespace; its repair shows the pass ran, and the shared-api objects must still be there.
    assert.equal((await cluster.kubectl(['delete', PA, 'portcullis-service-records-api', '-n', 'c2g', '--wait=true'])).code, 0);
    await until('the namespace pass repaired the drift', () => exists(PA, 'portcullis-service-records-api'));
    assert.ok(await exists(AP, OBJ), 'held while a policy of the namespace is refused');
    // The refused policy goes too: now nothing needs the workload's objects.
    assert.equal((await cluster.kubectl(['delete', 'apipolicy', 'share-broken', '-n', 'c2g'])).code, 0);
    await until('AuthorizationPolicy pruned', async () => !(await exists(AP, OBJ)));
    await until('PeerAuthentication pruned', async () => !(await exists(PA, OBJ)));
    assert.equal((await cluster.kubectl(['delete', 'service', 'shared-api', '-n', 'c2g'])).code, 0);
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
      // Timed from when the change was made: kubectl's own start-up (seconds on a loaded machine)
      // is not the service's latency.
      const changed = Date.now();
      await until('the deletion is seen after reconnecting', async () => (await server.pipeline.check(request)).code === 'NO_POLICY', 5_000);
      process.stderr.write(`# deletion decided ${Date.now() - changed} ms after kubectl delete returned\n`);
      process.stderr.write(`# change after an API server restart decided ${Date.now() - back} ms after the API was back\n`);
    });
  });

  describe('uninstall: operator cleanup', () => {
    test('stops the operator Deployment, deletes every generated object, and leaves no stale Ready', async () => {
      await operator.stop();
      stopped = true;
      await apply(`apiVersion: apps/v1
kind: Deployment
metadata: { name: portcullis-operator, namespace: portcullis-system }
spec:
  replicas: 1
  selector: { matchLabels: { app: op } }
  template:
    metadata: { labels: { app: op } }
    spec: { containers: [{ name: op, image: portcullis-operator:test }] }
`);
      const before = await kubectlJson(['get', 'authorizationpolicies.security.istio.io', '-A', '-l', 'app.kubernetes.io/managed-by=portcullis-operator']);
      assert.ok(before.items.length > 0, 'there is something to clean up');
      const r = await new Promise<{ code: number; out: string }>((resolve) => {
        const p = spawn(process.execPath, [`${ROOT}dist/operator/main.js`, 'cleanup', '--kubeconfig', cluster.kubeconfig, '--operator-deployment', 'portcullis-system/portcullis-operator', '--timeout-seconds', '60'], { stdio: ['ignore', 'pipe', 'pipe'] });
        let out = '';
        p.stdout.on('data', (d: Buffer) => (out += d.toString()));
        p.stderr.on('data', (d: Buffer) => (out += d.toString()));
        p.on('close', (code) => resolve({ code: code ?? 1, out }));
      });
      assert.equal(r.code, 0, r.out);
      assert.match(r.out, /cleanup: deleted \d+ generated object\(s\)/);
      const scale = await kubectlJson(['get', 'deployment', 'portcullis-operator', '-n', 'portcullis-system']);
      assert.equal((scale.spec as { replicas?: number }).replicas, 0, 'the operator was stopped first');
      for (const kind of ['authorizationpolicies.security.istio.io', 'peerauthentications.security.istio.io', 'envoyfilters.networking.istio.io', 'securitypolicies.gateway.envoyproxy.io', 'envoyextensionpolicies.gateway.envoyproxy.io']) {
        const left = await kubectlJson(['get', kind, '-A', '-l', 'app.kubernetes.io/managed-by=portcullis-operator']);
        assert.deepEqual(left.items.map((i) => i.metadata.name), [], `${kind} left behind`);
      }
      for (const name of ['citizen-records', 'agency-statistics', 'open-data']) {
        const c = await condition('apipolicy', name);
        assert.equal(c?.status, 'False', name);
        assert.equal(c?.reason, 'Uninstalled', name);
      }
      assert.equal((await condition('tenant', 'dept-revenue'))?.reason, 'Uninstalled');
    });
  });

});
