/**
 * The chart against the project's test control plane (etcd + kube-apiserver built from their
 * upstream modules, with the Istio, Gateway API and Envoy Gateway CRDs installed):
 * server-side dry runs of the rendered manifests and a real `helm install`.
 *
 * There are no nodes (and no controller manager here), so no pod is ever scheduled: the tests
 * check that the API server accepts and stores every object, not that the pods run.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { startTestCluster, type TestCluster } from '../cluster/cluster.js';
import { CHART, EVERYTHING, helmOrSkip, meaningfulStderr, repoRoot, runHelm, type K8sObject } from './helm.js';

const tools = await helmOrSkip();
const helm = 'helm' in tools ? tools.helm : '';
const NS = 'portcullis-system';

let cluster: TestCluster | undefined;
let skip: string | false = 'skip' in tools ? tools.skip : false;
if (!skip) {
  try {
    cluster = await startTestCluster({ log: (s) => console.error(`[cluster] ${s}`) });
  } catch (err) {
    // Only a machine that can neither find nor build the cluster binaries may skip, and not in CI.
    const reason = `test cluster unavailable: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`;
    if (process.env['CI'] || !/no Go toolchain/.test(String(err))) throw err;
    skip = reason;
  }
}

function k(): TestCluster {
  assert.ok(cluster, 'cluster not started');
  return cluster;
}

async function kubectl(args: string[], input?: string): Promise<string> {
  const r = await k().kubectl(args, input);
  assert.equal(r.code, 0, `kubectl ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

async function helmOk(args: string[]): Promise<string> {
  const r = await runHelm(helm, args, k().kubeconfig);
  assert.equal(r.code, 0, `helm ${args.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

const restricted = (name: string): string => `apiVersion: v1
kind: Namespace
metadata:
  name: ${name}
  labels:
    # The restricted Pod Security Standard: the API server warns on any workload that breaks it.
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/warn: restricted
    pod-security.kubernetes.io/audit: restricted
`;

function objectsOf(manifest: string): K8sObject[] {
  return parseAllDocuments(manifest)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null && typeof o.kind === 'string');
}

/** `kind.group/name` as kubectl understands it. */
function ref(o: K8sObject): string {
  const group = o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : '';
  return `${o.kind.toLowerCase()}${group ? `.${group}` : ''}/${o.metadata.name}`;
}

async function assertStored(objs: K8sObject[], defaultNs: string): Promise<void> {
  for (const o of objs) {
    const args = ['get', ref(o), '-o', 'jsonpath={.metadata.uid}'];
    const cluster = ['ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'Namespace'].includes(o.kind);
    if (!cluster) args.push('-n', o.metadata.namespace ?? defaultNs);
    const uid = await kubectl(args);
    assert.match(uid, /^[0-9a-f-]{36}$/, `${ref(o)} stored`);
  }
}

void describe('chart against the test kube-apiserver', { skip }, () => {
  before(async () => {
    for (const ns of [NS, 'portcullis-everything', 'c2g', 'partners']) await kubectl(['apply', '-f', '-'], restricted(ns));
    // The test tooling does not fetch the Prometheus Operator CRDs; stand one in if missing.
    const sm = await k().kubectl(['get', 'crd', 'servicemonitors.monitoring.coreos.com']);
    if (sm.code !== 0) {
      console.error('[helm] ServiceMonitor CRD not served by the test cluster: applying test/helm/fixtures/servicemonitor-crd.yaml');
      await kubectl(['apply', '-f', path.join(repoRoot(), 'test', 'helm', 'fixtures', 'servicemonitor-crd.yaml')]);
      await kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd/servicemonitors.monitoring.coreos.com']);
    }
  });

  after(async () => {
    await cluster?.stop();
  });

  for (const set of [{ name: 'default', args: [] as string[] }, { name: 'everything enabled', args: ['-f', EVERYTHING()] }]) {
    void test(`helm template (${set.name}) | kubectl apply --dry-run=server: accepted, no Pod Security warnings`, async () => {
      const rendered = await helmOk(['template', 'portcullis', CHART(), '--namespace', NS, '--include-crds', ...set.args]);
      const objs = objectsOf(rendered);
      assert.ok(objs.length >= 15, `rendered ${objs.length} objects`);
      const r = await k().kubectl(['apply', '--dry-run=server', '-f', '-'], rendered);
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stderr, /Warning|violate PodSecurity/, r.stderr);
      for (const o of objs) assert.match(r.stdout, new RegExp(`${o.metadata.name}.*\\(server dry run\\)`), `${ref(o)} dry-run applied`);
    });
  }

  void test('the Pod Security warning the dry runs look for is live (an insecure pod is flagged)', async () => {
    const insecure = `apiVersion: apps/v1
kind: Deployment
metadata: { name: insecure, namespace: ${NS} }
spec:
  selector: { matchLabels: { app: insecure } }
  template:
    metadata: { labels: { app: insecure } }
    spec:
      containers: [{ name: c, image: busybox }]
`;
    const r = await k().kubectl(['apply', '--dry-run=server', '-f', '-'], insecure);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /Warning: would violate PodSecurity "restricted/);
  });

  void test('the README install command creates every object (pods stay Pending: no nodes)', async () => {
    // Exactly as charts/portcullis/README.md writes it, from the repository root.
    const r = await runHelm(helm, ['install', 'portcullis', 'charts/portcullis', '--namespace', NS, '--create-namespace'], k().kubeconfig);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(meaningfulStderr(r.stderr), '', 'no warnings from the API server');
    assert.match(r.stdout, /STATUS: deployed/);
    // NOTES.txt: the exact Istio extension provider and the checks.
    assert.match(r.stdout, /extensionProviders:\n\s+- name: portcullis\n\s+envoyExtAuthzGrpc:\n\s+service: portcullis-extauthz\.portcullis-system\.svc\.cluster\.local\n\s+port: 9001\n\s+timeout: 500ms/);
    assert.match(r.stdout, /kubectl -n portcullis-system rollout status deployment\/portcullis-extauthz/);
    assertNotesMatchDocs(r.stdout);

    const objs = objectsOf(await helmOk(['get', 'manifest', 'portcullis', '-n', NS]));
    const kinds = new Set(objs.map((o) => o.kind));
    for (const kind of ['Deployment', 'Service', 'ServiceAccount', 'ClusterRole', 'ClusterRoleBinding', 'Role', 'RoleBinding', 'NetworkPolicy', 'PodDisruptionBudget', 'Secret']) {
      assert.ok(kinds.has(kind), `release has a ${kind}`);
    }
    await assertStored(objs, NS);
    for (const crd of ['tenants.portcullis.io', 'apipolicies.portcullis.io']) {
      assert.equal(await kubectl(['get', 'crd', crd, '-o', 'jsonpath={.status.conditions[?(@.type=="Established")].status}']), 'True', crd);
    }
    // The ext_authz ServiceAccount can read policies and cannot write them.
    const sa = 'system:serviceaccount:portcullis-system:portcullis-extauthz';
    assert.equal((await k().kubectl(['auth', 'can-i', 'list', 'apipolicies.portcullis.io', '--as', sa, '-A'])).stdout.trim(), 'yes');
    assert.equal((await k().kubectl(['auth', 'can-i', 'update', 'apipolicies.portcullis.io', '--as', sa, '-A'])).stdout.trim(), 'no');
    const op = 'system:serviceaccount:portcullis-system:portcullis-operator';
    assert.equal((await k().kubectl(['auth', 'can-i', 'patch', 'apipolicies.portcullis.io', '--subresource=status', '--as', op, '-n', 'c2g'])).stdout.trim(), 'yes');
    assert.equal((await k().kubectl(['auth', 'can-i', 'create', 'authorizationpolicies.security.istio.io', '--as', op, '-n', 'c2g'])).stdout.trim(), 'yes');
    // Secrets: read, as ext_authz reads them (operator.verifySecrets), never written.
    for (const verb of ['create', 'update', 'patch', 'delete']) assert.equal((await k().kubectl(['auth', 'can-i', verb, 'secrets', '--as', op, '-n', 'c2g'])).stdout.trim(), 'no', `operator may not ${verb} secrets`);
    assert.equal((await k().kubectl(['auth', 'can-i', 'update', 'leases.coordination.k8s.io', '--as', op, '-n', NS])).stdout.trim(), 'yes');
    assert.equal((await k().kubectl(['auth', 'can-i', 'update', 'leases.coordination.k8s.io', '--as', op, '-n', 'c2g'])).stdout.trim(), 'no');
    // Every call the operator makes (operator/kube-client.ts, manager.ts, leader.ts) is allowed.
    const operatorCalls: [string, string, string[]][] = [
      ['watch', 'services', ['-A']],
      ['update', 'apipolicies.portcullis.io', ['--subresource=status', '-n', 'c2g']],
      ['update', 'tenants.portcullis.io', ['--subresource=status', '-n', 'c2g']],
      ['watch', 'tenants.portcullis.io', ['-A']],
      ['create', 'events', ['-n', 'c2g']],
      ['delete', 'peerauthentications.security.istio.io', ['-n', 'c2g']],
      ['patch', 'securitypolicies.gateway.envoyproxy.io', ['-n', 'c2g']],
      ['watch', 'envoyextensionpolicies.gateway.envoyproxy.io', ['-A']],
      ['create', 'leases.coordination.k8s.io', ['-n', NS]],
      ['patch', 'envoyfilters.networking.istio.io', ['-n', 'c2g']],
      ['watch', 'httproutes.gateway.networking.k8s.io', ['-A']],
      ['watch', 'gateways.gateway.networking.k8s.io', ['-A']],
      ['watch', 'referencegrants.gateway.networking.k8s.io', ['-n', NS]],
      ['list', 'secrets', ['-A']],
      ['watch', 'secrets', ['-A']],
    ];
    for (const [verb, resource, scope] of operatorCalls) {
      const r = await k().kubectl(['auth', 'can-i', verb, resource, ...scope, '--as', op]);
      assert.equal(r.stdout.trim(), 'yes', `operator may ${verb} ${resource}`);
    }
    // ReferenceGrants only beside the Service; no Deployment scaling without the uninstall hook.
    assert.equal((await k().kubectl(['auth', 'can-i', 'list', 'referencegrants.gateway.networking.k8s.io', '--as', op, '-n', 'c2g'])).stdout.trim(), 'no');
    assert.equal((await k().kubectl(['auth', 'can-i', 'update', 'deployments/scale', '--as', op, '-n', NS])).stdout.trim(), 'no');
  });

  void test('helm upgrade keeps the audit signing key; uninstall keeps its Secret', async () => {
    const key = (): Promise<string> => kubectl(['get', 'secret', 'portcullis-audit-signing-key', '-n', NS, '-o', 'jsonpath={.data.signing-key\\.pem}']);
    const before = await key();
    assert.ok(before.length > 40);
    await helmOk(['upgrade', 'portcullis', CHART(), '--namespace', NS, '--reuse-values', '--set', 'extauthz.logLevel=debug']);
    assert.equal(await key(), before, 'same key after upgrade');
    await helmOk(['uninstall', 'portcullis', '--namespace', NS]);
    assert.equal(await key(), before, 'kept on uninstall');
    const gone = await k().kubectl(['get', 'deployment', 'portcullis-extauthz', '-n', NS]);
    assert.notEqual(gone.code, 0, 'the Deployment is removed');
  });

  void test('helm install with everything enabled creates every object', async () => {
    const out = await helmOk(['install', 'everything', CHART(), '--namespace', 'portcullis-everything', '-f', EVERYTHING()]);
    assert.match(out, /a pre-delete hook stops the operator and deletes the\nmesh objects it generated/);
    const objs = objectsOf(await helmOk(['get', 'manifest', 'everything', '-n', 'portcullis-everything']));
    const kinds = new Set(objs.map((o) => o.kind));
    for (const kind of ['HorizontalPodAutoscaler', 'PodDisruptionBudget', 'ServiceMonitor', 'ConfigMap', 'ReferenceGrant', 'NetworkPolicy']) {
      assert.ok(kinds.has(kind), `release has a ${kind}`);
    }
    await assertStored(objs, 'portcullis-everything');
    // extauthz.secretNamespaces [c2g, partners]: both ServiceAccounts read Secrets there and nowhere else.
    for (const sa of ['everything-portcullis-extauthz', 'everything-portcullis-operator']) {
      const can = async (scope: string[]): Promise<string> => (await k().kubectl(['auth', 'can-i', 'list', 'secrets', ...scope, '--as', `system:serviceaccount:portcullis-everything:${sa}`])).stdout.trim();
      assert.equal(await can(['-n', 'c2g']), 'yes', sa);
      assert.equal(await can(['-n', 'partners']), 'yes', sa);
      assert.equal(await can(['-n', 'kube-system']), 'no', sa);
      assert.equal(await can(['-A']), 'no', `${sa}: no cluster-wide Secret list`);
    }
  });

  void test('a values typo is rejected by the schema at install time, and nothing is created', async () => {
    const r = await runHelm(helm, ['install', 'typo', CHART(), '--namespace', NS, '--set', 'extauthz.replicaCont=3'], k().kubeconfig);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /additional properties 'replicaCont' not allowed/);
    const list = await helmOk(['list', '--all', '--namespace', NS, '-q']);
    assert.doesNotMatch(list, /typo/);
    const cr = await k().kubectl(['get', 'clusterrole', 'typo-portcullis-extauthz']);
    assert.notEqual(cr.code, 0);
  });
});

/**
 * NOTES.txt of the default install against docs/envoy: the Service the chart created, the Istio
 * provider entry (timeout and path normalisation included) exactly as the docs fragment, and the
 * fail-closed uninstall note with its command.
 */
function assertNotesMatchDocs(stdout: string): void {
  const notes = stdout.slice(stdout.indexOf('NOTES:'));
  assert.match(notes, /Decision Service:\s+portcullis-extauthz \(namespace portcullis-system\), budget 500ms per call/);
  const block = notes.slice(notes.indexOf('meshConfig:'));
  const fromNotes = parse(block.slice(0, block.indexOf('\n\n')));
  const fromDocs = parse(readFileSync(path.join(repoRoot(), 'docs', 'envoy', 'istio-mesh-config.yaml'), 'utf8'));
  assert.deepEqual(fromNotes, fromDocs, 'NOTES and docs/envoy/istio-mesh-config.yaml differ');
  assert.match(notes, /protected workloads fail closed \(every request refused\) until they are removed/);
  assert.match(notes, /kubectl delete authorizationpolicies,peerauthentications,envoyfilters,securitypolicies,envoyextensionpolicies \\\n\s+-A -l app\.kubernetes\.io\/managed-by=portcullis-operator/);
}

