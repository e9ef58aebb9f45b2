import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { startTestCluster, upstreamCrdFiles, type TestCluster } from './cluster.js';

// One real etcd + kube-apiserver + kube-controller-manager for the whole file.
let cluster: TestCluster;
const NS = 'portcullis-cluster-test';

before(async () => {
  cluster = await startTestCluster({
    withControllerManager: true,
    log: (s) => console.error(`[cluster] ${s}`),
  });
}, { timeout: 30 * 60_000 }); // a cold cache builds kube-apiserver first

after(async () => {
  await cluster?.stop();
});

async function ok(args: string[], input?: string): Promise<string> {
  const r = await cluster.kubectl(args, input);
  assert.equal(r.code, 0, `kubectl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

void test('upstream CRD files are cached', () => {
  const files = upstreamCrdFiles();
  assert.ok(files.some((f) => f.endsWith('customresourcedefinitions.gen.yaml')), 'istio CRDs');
  assert.ok(files.some((f) => f.endsWith('gateway.networking.k8s.io_httproutes.yaml')), 'gateway API CRDs');
  assert.ok(files.some((f) => f.endsWith('gateway.envoyproxy.io_securitypolicies.yaml')), 'envoy gateway CRDs');
});

void test('namespace and a valid Istio AuthorizationPolicy are accepted', async () => {
  await ok(['apply', '-f', '-'], `apiVersion: v1
kind: Namespace
metadata:
  name: ${NS}
`);
  await ok(['apply', '--server-side', '-f', '-'], `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ext-authz
  namespace: ${NS}
spec:
  selector:
    matchLabels:
      app: web
  action: CUSTOM
  provider:
    name: portcullis
  rules:
  - to:
    - operation:
        paths: ["/api/*"]
`);
  const action = await ok(['get', 'authorizationpolicy.security.istio.io', 'ext-authz', '-n', NS, '-o', 'jsonpath={.spec.action}']);
  assert.equal(action, 'CUSTOM');
});

void test('an AuthorizationPolicy with an invalid action is rejected by the upstream schema', async () => {
  const r = await cluster.kubectl(['apply', '--server-side', '-f', '-'], `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: bad-action
  namespace: ${NS}
spec:
  action: FORBID
`);
  assert.notEqual(r.code, 0, `expected rejection, got: ${r.stdout}`);
  assert.match(r.stderr, /AuthorizationPolicy "bad-action" is invalid/);
  assert.match(r.stderr, /spec\.action/);
  assert.match(r.stderr, /Unsupported value: "FORBID": supported values: "ALLOW", "DENY", "AUDIT", "CUSTOM"/);
  const get = await cluster.kubectl(['get', 'authorizationpolicy.security.istio.io', 'bad-action', '-n', NS]);
  assert.notEqual(get.code, 0, 'rejected object must not exist');
});

void test('Gateway API and Envoy Gateway CRDs are established', async () => {
  for (const crd of ['httproutes.gateway.networking.k8s.io', 'gateways.gateway.networking.k8s.io', 'securitypolicies.gateway.envoyproxy.io']) {
    const status = await ok(['get', 'crd', crd, '-o', 'jsonpath={.status.conditions[?(@.type=="Established")].status}']);
    assert.equal(status, 'True', crd);
  }
});

void test('garbage collector deletes a ConfigMap whose owner is deleted', async () => {
  await ok(['create', 'configmap', 'owner', '-n', NS, '--from-literal=k=v']);
  const uid = await ok(['get', 'configmap', 'owner', '-n', NS, '-o', 'jsonpath={.metadata.uid}']);
  assert.match(uid, /^[0-9a-f-]{36}$/);
  await ok(['apply', '-f', '-'], JSON.stringify({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: 'dependent',
      namespace: NS,
      ownerReferences: [{ apiVersion: 'v1', kind: 'ConfigMap', name: 'owner', uid }],
    },
    data: { k: 'v' },
  }));
  await ok(['delete', 'configmap', 'owner', '-n', NS, '--wait=false']);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await cluster.kubectl(['get', 'configmap', 'dependent', '-n', NS, '-o', 'name']);
    if (r.code !== 0 && /NotFound|not found/.test(r.stderr)) break;
    assert.ok(Date.now() < deadline, 'dependent ConfigMap still present 30 s after its owner was deleted');
    await new Promise((res) => setTimeout(res, 500));
  }
});

void test('state survives an API server restart', async () => {
  await cluster.stopApiServer();
  const down = await cluster.kubectl(['get', 'namespace', NS, '--request-timeout=3s']);
  assert.notEqual(down.code, 0, 'API server should be down');
  await cluster.startApiServer();
  assert.equal(await ok(['get', 'namespace', NS, '-o', 'jsonpath={.metadata.name}']), NS);
});
