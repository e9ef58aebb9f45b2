/**
 * The operator verifies the Secrets a Tenant names, against a real kube-apiserver: a Tenant whose
 * revocation Secret is missing, unlabelled, lacks its key or holds a malformed list is
 * Ready=False with the Secret problem as reason; created or fixed it is Ready=True; with
 * --no-verify-secrets it is Ready=Unknown, never True. Waits are driven by the Tenant's watch
 * events (an informer in the test), not by polling.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { KubernetesPolicySource } from '../../extauthz/kube/policy-source.js';
import { createLogger } from '../../extauthz/logger.js';
import { loadKubeConfig } from '../../kube/config.js';
import { httpCode } from '../../kube/errors.js';
import { ResilientInformer } from '../../kube/informer.js';
import { customPath, listCustom, listSecrets, PLURAL, REVOCATION_LABEL } from '../../kube/resources.js';
import { LabelledSecrets } from '../../kube/secrets.js';
import { parseOperatorArgs, type OperatorConfig } from '../../operator/config.js';
import { runOperator, type RunningOperator } from '../../operator/manager.js';
import { startTestCluster, type TestCluster } from './cluster.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const NS = 'secrets';
const SUBJECT = 'spiffe://gov.example/ns/revenue/sa/leaked-1984';

interface Condition {
  type: string;
  status: string;
  reason: string;
  message: string;
  observedGeneration: number;
}
interface TenantView extends KubernetesObject {
  status?: { observedGeneration?: number; conditions?: Condition[] };
}

const tenant = (generation: number): string => `apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: revenue, namespace: ${NS} }
spec:
  type: agency
  identity: { mtls: { spiffeIds: ["spiffe://gov.example/ns/revenue/*"] } }
  attributes: { step: "${generation}" }
  revocation: { secretRef: { name: revenue-revoked, key: list.json } }
`;

const secret = (data: Record<string, string>, labelled = true): string =>
  `apiVersion: v1\nkind: Secret\nmetadata:\n  name: revenue-revoked\n  namespace: ${NS}\n${labelled ? '  labels: { portcullis.io/revocation: "true" }\n' : ''}stringData:\n${Object.entries(data).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}\n`).join('')}`;

describe('the operator verifies the Secrets Tenants name (real API server)', { timeout: 30 * 60_000 }, () => {
  let cluster: TestCluster;
  let operator: RunningOperator | undefined;
  let tenants: ResilientInformer<TenantView>;
  const waiters = new Set<() => void>();
  const kubectl = async (args: string[], input?: string): Promise<void> => {
    const r = await cluster.kubectl(args, input);
    assert.equal(r.code, 0, r.stderr);
  };
  const apply = (yaml: string): Promise<void> => kubectl(['apply', '-f', '-'], yaml);

  /** The Tenant's conditions once `done` holds for them, decided on each watch event of the Tenant. */
  const status = (what: string, done: (c: Record<string, Condition>, t: TenantView) => boolean): Promise<Record<string, Condition>> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const t = tenants.get('revenue', NS);
        const c = Object.fromEntries((t?.status?.conditions ?? []).map((x) => [x.type, x]));
        if (!t || !done(c, t)) return;
        waiters.delete(check);
        clearTimeout(timer);
        resolve(c);
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`timed out waiting for ${what}: ${JSON.stringify(tenants.get('revenue', NS)?.status)}`));
      }, 60_000);
      waiters.add(check);
      check();
    });
  /** Conditions of the current generation with Ready as given. */
  const ready = (want: string, reason: string): Promise<Record<string, Condition>> =>
    status(`Ready=${want} ${reason}`, (c, t) => t.status?.observedGeneration === t.metadata?.generation && c.Ready?.status === want && c.Ready.reason === reason);

  const startOperator = async (extra: string[] = []): Promise<void> => {
    const cfg = parseOperatorArgs(['--kubeconfig', cluster.kubeconfig, '--no-leader-elect', '--outputs', '', '--http-address', '127.0.0.1:0', '--log-level', 'silent', ...extra], {}) as OperatorConfig;
    operator = await runOperator(cfg, loadKubeConfig(cluster.kubeconfig), pino({ level: 'silent' }), () => undefined);
  };

  before(async () => {
    cluster = await startTestCluster({ upstreamCrds: false, crdFiles: [`${ROOT}crds/tenant.yaml`, `${ROOT}crds/apipolicy.yaml`] });
    await apply(`apiVersion: v1\nkind: Namespace\nmetadata: { name: ${NS} }\n`);
    const kc = loadKubeConfig(cluster.kubeconfig);
    tenants = new ResilientInformer<TenantView>({
      kubeConfig: kc, path: customPath(PLURAL.Tenant), list: listCustom<TenantView>(kc, PLURAL.Tenant),
      onChange: () => {
        for (const w of [...waiters]) w();
      },
    });
    await tenants.start();
    await startOperator();
  });

  after(async () => {
    await operator?.stop();
    await tenants?.stop();
    await cluster?.stop();
  });

  test('missing → Ready=False SecretNotFound, naming the Secret and the label it needs', async () => {
    await apply(tenant(1));
    const c = await ready('False', 'SecretNotFound');
    assert.equal(c.Accepted?.status, 'False');
    assert.equal(c.Accepted?.reason, 'SecretNotFound');
    assert.equal(c.SecretsVerified?.status, 'False');
    assert.match(c.Ready!.message, /revocation\.secretRef: Secret secrets\/revenue-revoked not found \(in a cluster it needs the label portcullis\.io\/revocation=true\)/);
  });

  test('created without the label: still SecretNotFound (a later generation is reconciled with it in the API server)', async () => {
    await apply(secret({ 'list.json': JSON.stringify({ sub: [SUBJECT] }) }, false));
    await apply(tenant(2));
    const c = await ready('False', 'SecretNotFound');
    assert.equal(c.Ready!.observedGeneration, 2);
  });

  test('labelled → Ready=True, SecretsVerified=True', async () => {
    await kubectl(['label', 'secret', 'revenue-revoked', '-n', NS, 'portcullis.io/revocation=true']);
    const c = await ready('True', 'Ready');
    assert.equal(c.Accepted?.status, 'True');
    assert.equal(c.SecretsVerified?.reason, 'Verified');
    assert.match(c.SecretsVerified!.message, /Secret secrets\/revenue-revoked key list\.json \(revocation\)/);
  });

  const broken: { name: string; data: Record<string, string>; reason: string; message: RegExp }[] = [
    { name: 'a malformed list', data: { 'list.json': `{"sub": ["${SUBJECT}", ""]}` }, reason: 'SecretInvalid', message: /revocation list in Secret secrets\/revenue-revoked key list\.json: sub\[1\]: an id must not be empty/ },
    { name: 'the key gone', data: { 'other.json': '{}' }, reason: 'SecretKeyNotFound', message: /Secret secrets\/revenue-revoked has no key list\.json/ },
  ];
  for (const b of broken) {
    test(`broken (${b.name}) → Ready=False ${b.reason}, no list entry in status; fixed → Ready=True`, async () => {
      await kubectl(['delete', 'secret', 'revenue-revoked', '-n', NS]);
      await ready('False', 'SecretNotFound');
      await apply(secret(b.data));
      const c = await ready('False', b.reason);
      assert.match(c.Ready!.message, b.message);
      assert.match(c.Ready!.message, /last good version .* keeps serving/, 'ext_authz keeps the list it last loaded');
      assert.ok(!JSON.stringify(tenants.get('revenue', NS)?.status).includes('leaked-1984'), 'no list entry in status');
      await apply(secret({ 'list.json': '{}' }));
      await ready('True', 'Ready');
    });
  }

  test('--no-verify-secrets: the same Tenant is Ready=Unknown SecretsNotVerified, never True', async () => {
    await operator?.stop();
    operator = undefined;
    await startOperator(['--no-verify-secrets']);
    const c = await ready('Unknown', 'SecretsNotVerified');
    assert.equal(c.Accepted?.status, 'True');
    assert.equal(c.SecretsVerified?.status, 'Unknown');
    assert.equal(c.SecretsVerified?.reason, 'NotVerified');
  });

  test('a Secret grant narrowed to namespaces (RoleBindings, as the chart renders with secretNamespaces): listing per namespace works, cluster-wide is forbidden', async () => {
    await apply(`apiVersion: v1
kind: ServiceAccount
metadata: { name: narrow, namespace: ${NS} }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: narrow-read }
rules:
  - { apiGroups: ["portcullis.io"], resources: ["tenants", "apipolicies"], verbs: ["get", "list", "watch"] }
  - { apiGroups: [""], resources: ["configmaps"], verbs: ["get", "list", "watch"] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: { name: narrow-read }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: narrow-read }
subjects: [{ kind: ServiceAccount, name: narrow, namespace: ${NS} }]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: { name: narrow-secrets }
rules:
  - { apiGroups: [""], resources: ["secrets"], verbs: ["get", "list", "watch"] }
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: { name: narrow-secrets, namespace: ${NS} }
roleRef: { apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: narrow-secrets }
subjects: [{ kind: ServiceAccount, name: narrow, namespace: ${NS} }]
`);
    const token = await cluster.kubectl(['create', 'token', 'narrow', '-n', NS]);
    assert.equal(token.code, 0, token.stderr);
    const server = loadKubeConfig(cluster.kubeconfig).getCurrentCluster()!;
    const kc = new KubeConfig();
    kc.loadFromOptions({ clusters: [server], users: [{ name: 'narrow', token: token.stdout.trim() }], contexts: [{ name: 'narrow', cluster: server.name, user: 'narrow' }], currentContext: 'narrow' });
    await assert.rejects(listSecrets(kc, REVOCATION_LABEL)(), (err: unknown) => httpCode(err) === 403, 'no cluster-wide list with RoleBindings only');
    const secrets = new LabelledSecrets({ kubeConfig: kc, namespaces: [NS], onChange: () => undefined, onError: (err) => assert.fail(String(err)) });
    await secrets.start();
    assert.deepEqual(secrets.list().map((o) => o.metadata?.name), ['revenue-revoked']);
    await secrets.stop();
    // ext_authz with the same narrowing syncs and serves the tenant (without it, it never got ready).
    const source = new KubernetesPolicySource({ kubeConfig: kc, log: createLogger('silent'), secretNamespaces: [NS] });
    await source.start();
    assert.ok(source.snapshot?.tenants.get(NS)?.byName.has('revenue'), 'the tenant serves: its revocation Secret was read');
    await source.close();
  });
});
