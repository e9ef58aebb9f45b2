/**
 * The Helm chart without a cluster: lint, schema, secure defaults, least-privilege RBAC, the
 * NetworkPolicy, documentation of every value, and the CRDs being the repository's own.
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Ajv } from 'ajv';
import { RE2JS } from 're2js';
import { parse, parseAllDocuments } from 'yaml';
import { toJsonSchema } from '../../extauthz/policy/crd-schema.js';
import { SIGNALS } from '../../extauthz/signals/alert.js';
import { main as portcullisMain } from '../../extauthz/cli/main.js';
import { parseCleanupArgs, parseOperatorArgs } from '../../operator/config.js';
import { ensureTools, prometheusRuleCrdFile } from '../cluster/cluster.js';
import { CHART, EVERYTHING, helmOrSkip, meaningfulStderr, render, repoRoot, runHelm, valueSets, valuesArgs, type K8sObject } from './helm.js';

const tools = await helmOrSkip();
const skip = 'skip' in tools ? tools.skip : false;
const helm = 'helm' in tools ? tools.helm : '';

type Rule = { apiGroups: string[]; resources: string[]; verbs: string[] };
type PodSpec = {
  securityContext: Record<string, unknown>;
  automountServiceAccountToken?: boolean;
  containers: { name: string; securityContext: Record<string, unknown>; volumeMounts?: { mountPath: string }[] }[];
};

const podSpec = (d: K8sObject): PodSpec => (d['spec'] as { template: { spec: PodSpec } }).template.spec;
const byKind = (objs: K8sObject[], kind: string): K8sObject[] => objs.filter((o) => o.kind === kind);
const named = (objs: K8sObject[], kind: string, suffix: string): K8sObject => {
  const o = objs.find((x) => x.kind === kind && x.metadata.name.endsWith(suffix));
  assert.ok(o, `no ${kind} named *${suffix} in ${objs.map((x) => `${x.kind}/${x.metadata.name}`).join(', ')}`);
  return o;
};

void describe('helm lint --strict', { skip }, () => {
  for (const set of valueSets()) {
    void test(`value set "${set.name}" passes`, async () => {
      const r = await runHelm(helm, ['lint', '--strict', CHART(), ...valuesArgs(set.files)]);
      assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
      assert.match(r.stdout, /1 chart\(s\) linted, 0 chart\(s\) failed/);
      assert.doesNotMatch(r.stdout, /\[(WARNING|ERROR)\]/);
      assert.equal(meaningfulStderr(r.stderr), '');
    });
  }
});

void describe('values.schema.json rejects bad values at install time', { skip }, () => {
  const cases: { name: string; set: string[]; error: RegExp }[] = [
    { name: 'a misspelt key', set: ['extauthz.replicaCont=3'], error: /additional properties 'replicaCont' not allowed/ },
    { name: 'a misspelt top-level key', set: ['networkPolicies.enabled=false'], error: /additional properties 'networkPolicies' not allowed/ },
    { name: 'an unknown quota backend', set: ['quotas.backend=redsi'], error: /\/quotas\/backend/ },
    { name: 'redis without an address', set: ['quotas.backend=redis'], error: /\/quotas\/redis/ },
    { name: 'two operators without leader election', set: ['operator.leaderElection=false'], error: /\/operator\/leaderElection/ },
    { name: 'an unknown output', set: ['operator.outputs={istio,linkerd}'], error: /\/operator\/outputs/ },
    { name: 'a string for a boolean', set: ['networkPolicy.enabled=yes'], error: /\/networkPolicy\/enabled/ },
    { name: 'a bad log level', set: ['extauthz.logLevel=verbose'], error: /\/extauthz\/logLevel/ },
    { name: 'a malformed digest', set: ['extauthz.image.digest=latest'], error: /\/extauthz\/image\/digest/ },
  ];
  for (const c of cases) {
    void test(c.name, async () => {
      const r = await runHelm(helm, ['template', 'portcullis', CHART(), ...valuesArgs([], c.set)]);
      assert.notEqual(r.code, 0, `expected a schema error, rendered:\n${r.stdout.slice(0, 300)}`);
      assert.match(r.stderr, /values don't meet the specifications of the schema/);
      assert.match(r.stderr, c.error);
    });
  }
  void test('a typo in a values file is rejected the same way', async () => {
    const r = await runHelm(helm, ['template', 'portcullis', CHART(), '-f', path.join(CHART(), 'ci', 'everything-values.yaml'), '--set', 'metrics.serviceMonitor.intervall=10s']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /additional properties 'intervall' not allowed/);
  });
});

void describe('secure defaults', { skip }, () => {
  let objs: K8sObject[] = [];
  before(async () => {
    objs = await render(helm, []);
  });

  void test('every pod runs non-root, read-only, no capabilities, RuntimeDefault seccomp', () => {
    const deployments = byKind(objs, 'Deployment');
    assert.equal(deployments.length, 2, 'ext_authz and operator');
    for (const d of deployments) {
      const spec = podSpec(d);
      assert.equal(spec.securityContext['runAsNonRoot'], true, d.metadata.name);
      assert.deepEqual(spec.securityContext['seccompProfile'], { type: 'RuntimeDefault' });
      for (const c of spec.containers) {
        assert.equal(c.securityContext['readOnlyRootFilesystem'], true, c.name);
        assert.equal(c.securityContext['allowPrivilegeEscalation'], false, c.name);
        assert.equal(c.securityContext['privileged'], false, c.name);
        assert.deepEqual(c.securityContext['capabilities'], { drop: ['ALL'] }, c.name);
        assert.ok(c.volumeMounts?.some((m) => m.mountPath === '/tmp'), `${c.name} has a writable /tmp`);
      }
    }
  });

  void test('ServiceAccounts do not mount tokens by default; only the two Deployments do', () => {
    for (const sa of byKind(objs, 'ServiceAccount')) assert.equal(sa['automountServiceAccountToken'], false, sa.metadata.name);
    for (const d of byKind(objs, 'Deployment')) assert.equal(podSpec(d).automountServiceAccountToken, true);
  });

  void test('ext_authz RBAC is read-only: Portcullis resources, Secrets and (revocation) ConfigMaps, nothing else', () => {
    const rules = byKind(objs, 'ClusterRole')
      .filter((r) => r.metadata.name.includes('-extauthz'))
      .flatMap((r) => r['rules'] as Rule[]);
    for (const r of rules) assert.deepEqual(r.verbs, ['get', 'list', 'watch'], JSON.stringify(r));
    assert.deepEqual(rules.flatMap((r) => r.resources).sort(), ['apipolicies', 'configmaps', 'secrets', 'tenants']);
  });

  void test('operator RBAC: its resources read-only, status writable, generated kinds, events; Secrets only in its separate grant', () => {
    const rules = named(objs, 'ClusterRole', '-operator')['rules'] as Rule[];
    const verbsOf = (group: string, resource: string): string[] =>
      rules.filter((r) => r.apiGroups.includes(group) && r.resources.includes(resource)).flatMap((r) => r.verbs).sort();
    assert.deepEqual(verbsOf('portcullis.io', 'apipolicies'), ['get', 'list', 'watch']);
    assert.deepEqual(verbsOf('portcullis.io', 'apipolicies/status'), ['get', 'patch', 'update']);
    for (const [g, res] of [['security.istio.io', 'authorizationpolicies'], ['security.istio.io', 'peerauthentications'], ['networking.istio.io', 'envoyfilters'], ['gateway.envoyproxy.io', 'securitypolicies'], ['gateway.envoyproxy.io', 'envoyextensionpolicies']] as const) {
      assert.deepEqual(verbsOf(g, res), ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], `${g}/${res}`);
    }
    assert.deepEqual(verbsOf('', 'events'), ['create', 'patch']);
    assert.deepEqual(verbsOf('', 'configmaps'), ['get', 'list', 'watch'], 'revocation ConfigMaps, read-only');
    for (const res of ['httproutes', 'gateways']) assert.deepEqual(verbsOf('gateway.networking.k8s.io', res), ['get', 'list', 'watch'], res);
    assert.ok(!rules.some((r) => r.resources.includes('referencegrants')), 'ReferenceGrants: a Role in the release namespace, not cluster-wide');
    const grants = named(objs, 'Role', '-operator-referencegrants');
    assert.equal(grants.metadata.namespace, 'portcullis-system');
    assert.deepEqual((grants['rules'] as Rule[]).flatMap((r) => r.resources), ['referencegrants'], 'no Deployment scaling without the uninstall hook');
    assert.ok(!rules.some((r) => r.resources.includes('secrets') || r.resources.includes('*') || r.verbs.includes('*')));
    const lease = named(objs, 'Role', '-operator-leader-election');
    assert.equal(lease.metadata.namespace, 'portcullis-system', 'Leases only in the release namespace');
    assert.deepEqual((lease['rules'] as Rule[]).flatMap((r) => r.resources), ['leases']);
  });

  void test('the operator holds the same Secret grant as ext_authz by default (verifySecrets): read-only, Secrets only, cluster-wide like ext_authz', () => {
    const grant = (component: string): Rule[] => named(objs, 'ClusterRole', `-${component}-secrets`)['rules'] as Rule[];
    assert.deepEqual(grant('operator'), [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list', 'watch'] }]);
    assert.deepEqual(grant('operator'), grant('extauthz'));
    const binding = named(objs, 'ClusterRoleBinding', '-operator-secrets');
    assert.equal((binding['roleRef'] as { name: string }).name, named(objs, 'ClusterRole', '-operator-secrets').metadata.name);
    assert.deepEqual((binding['subjects'] as { name: string }[]).map((x) => x.name), [named(objs, 'ServiceAccount', '-operator').metadata.name]);
    const args = (d: K8sObject): string[] => (d['spec'] as { template: { spec: { containers: { args: string[] }[] } } }).template.spec.containers[0]!.args;
    const op = args(named(objs, 'Deployment', '-operator'));
    assert.ok(!op.some((a) => a.startsWith('--no-verify-secrets') || a.startsWith('--secret-namespaces')), op.join(' '));
  });

  void test('the NetworkPolicy admits only mesh proxies to 9001/9002 and nobody to metrics', () => {
    const np = named(objs, 'NetworkPolicy', '-extauthz');
    const ingress = (np['spec'] as { ingress: { from: unknown[]; ports: { port: number }[] }[] }).ingress;
    assert.equal(ingress.length, 1);
    assert.deepEqual(ingress[0]?.ports.map((p) => p.port), [9001, 9002]);
    assert.match(JSON.stringify(ingress[0]?.from), /security\.istio\.io\/tlsMode/);
    assert.match(JSON.stringify(ingress[0]?.from), /envoy-gateway/);
  });

  void test('the Service exposes gRPC 9001, 9002 and metrics 9090 inside the cluster only', () => {
    const svc = named(objs, 'Service', '-extauthz');
    const spec = svc['spec'] as { type: string; ports: { port: number; appProtocol: string }[] };
    assert.equal(spec.type, 'ClusterIP');
    assert.deepEqual(spec.ports.map((p) => [p.port, p.appProtocol]), [[9001, 'grpc'], [9002, 'grpc'], [9090, 'http']]);
  });

  void test('the audit signing key is an Ed25519 PKCS#8 key kept on uninstall', () => {
    const secret = named(objs, 'Secret', '-audit-signing-key');
    assert.equal(secret.metadata.annotations?.['helm.sh/resource-policy'], 'keep');
    const pem = Buffer.from((secret['data'] as Record<string, string>)['signing-key.pem'] ?? '', 'base64').toString();
    assert.match(pem, /^-----BEGIN PRIVATE KEY-----\n/);
  });

  void test('the container arguments are ones the programs accept', async () => {
    const args = (suffix: string): string[] => {
      const d = named(objs, 'Deployment', suffix) as unknown as { spec: { template: { spec: { containers: { args: string[] }[] } } } };
      return d.spec.template.spec.containers[0]!.args.slice(1);
    };
    const op = parseOperatorArgs(args('-operator'), {});
    assert.notEqual(op, 'help');
    if (op !== 'help') assert.equal(op.outputs.service.namespace, 'portcullis-system');
    // --help after the chart's flags: exit 0 only if every flag before it parsed.
    const quiet = { out: (): void => undefined, err: (): void => undefined };
    assert.equal(await portcullisMain([...args('-extauthz'), '--help'], quiet), 0);
  });

  void test('two operator replicas with leader election; no HPA, ServiceMonitor or dashboard by default', () => {
    const op = named(objs, 'Deployment', '-operator');
    assert.equal((op['spec'] as { replicas: number }).replicas, 2);
    // Leader election is the operator's default; the chart only ever turns it off.
    assert.ok(!JSON.stringify(op).includes('--no-leader-elect'));
    assert.ok(JSON.stringify(op).includes('--http-address=0.0.0.0:8080'));
    for (const kind of ['HorizontalPodAutoscaler', 'ServiceMonitor', 'ConfigMap', 'ReferenceGrant']) assert.equal(byKind(objs, kind).length, 0, kind);
  });
});

void describe('the everything-enabled value set', { skip }, () => {
  void test('renders every optional object', async () => {
    const objs = await render(helm, ['-f', EVERYTHING()]);
    const kinds = new Set(objs.map((o) => o.kind));
    for (const k of ['HorizontalPodAutoscaler', 'PodDisruptionBudget', 'ServiceMonitor', 'ConfigMap', 'ReferenceGrant', 'NetworkPolicy', 'RoleBinding']) {
      assert.ok(kinds.has(k), `missing ${k}`);
    }
    const ext = named(objs, 'Deployment', '-extauthz');
    assert.equal((ext['spec'] as { replicas?: number }).replicas, undefined, 'the HPA owns the replica count');
    assert.match(JSON.stringify(ext), /PORTCULLIS_REDIS_URL.*secretKeyRef/);
    assert.doesNotMatch(JSON.stringify(ext), /redis:\/\//, 'the Redis URL is not in the pod spec');
    const secretBindings = byKind(objs, 'RoleBinding').filter((b) => b.metadata.name.endsWith('-extauthz-secrets'));
    assert.deepEqual(secretBindings.map((b) => b.metadata.namespace).sort(), ['c2g', 'partners']);
    assert.ok(!byKind(objs, 'ClusterRoleBinding').some((b) => b.metadata.name.endsWith('-extauthz-secrets')), 'no cluster-wide Secret access');
    const dashboard = named(objs, 'ConfigMap', '-dashboard');
    const json = JSON.parse((dashboard['data'] as Record<string, string>)['portcullis.json'] ?? '') as { panels: unknown[] };
    assert.ok(json.panels.length > 0);
  });

  void test('extauthz.secretNamespaces narrows both Secret grants to RoleBindings in those namespaces, and both processes list only there', async () => {
    const objs = await render(helm, ['--set', 'extauthz.secretNamespaces={c2g,partners}']);
    for (const component of ['extauthz', 'operator']) {
      const bindings = byKind(objs, 'RoleBinding').filter((b) => b.metadata.name.endsWith(`-${component}-secrets`));
      assert.deepEqual(bindings.map((b) => b.metadata.namespace).sort(), ['c2g', 'partners'], component);
      for (const b of bindings) assert.deepEqual([(b['roleRef'] as { kind: string }).kind, (b['subjects'] as { name: string }[])[0]?.name], ['ClusterRole', named(objs, 'ServiceAccount', `-${component}`).metadata.name]);
      assert.ok(!byKind(objs, 'ClusterRoleBinding').some((b) => b.metadata.name.endsWith(`-${component}-secrets`)), `${component}: no cluster-wide Secret access`);
      const args = (named(objs, 'Deployment', `-${component}`)['spec'] as { template: { spec: { containers: { args: string[] }[] } } }).template.spec.containers[0]!.args;
      assert.ok(args.includes('--secret-namespaces=c2g,partners'), `${component}: ${args.join(' ')}`);
      // Flags the programs accept: the operator's parse, ext_authz's --help after them exits 0.
      if (component === 'operator') assert.deepEqual((parseOperatorArgs(args.slice(1), {}) as { secretNamespaces?: string[] }).secretNamespaces, ['c2g', 'partners']);
      else assert.equal(await portcullisMain([...args.slice(1), '--help'], { out: () => undefined, err: () => undefined }), 0);
    }
  });

  void test('operator.verifySecrets=false: no Secret grant for the operator at all, and it is told not to read them', async () => {
    const objs = await render(helm, ['--set', 'operator.verifySecrets=false', '--set', 'extauthz.secretNamespaces={c2g}']);
    const operatorObjects = objs.filter((o) => o.metadata.name.includes('-operator'));
    for (const kind of ['ClusterRole', 'Role']) {
      for (const r of byKind(operatorObjects, kind)) assert.ok(!(r['rules'] as Rule[]).some((x) => x.resources.includes('secrets') || x.resources.includes('*')), `${kind}/${r.metadata.name}`);
    }
    assert.ok(!operatorObjects.some((o) => o.metadata.name.endsWith('-operator-secrets')), 'no -operator-secrets role or binding');
    assert.equal(byKind(objs, 'RoleBinding').filter((b) => b.metadata.name.endsWith('-extauthz-secrets')).length, 1, 'ext_authz keeps its grant');
    const args = (named(objs, 'Deployment', '-operator')['spec'] as { template: { spec: { containers: { args: string[] }[] } } }).template.spec.containers[0]!.args;
    assert.ok(args.includes('--no-verify-secrets'));
    assert.ok(!args.some((a) => a.startsWith('--secret-namespaces')));
    // The flags the chart passes are the operator's own.
    assert.equal((parseOperatorArgs(args.slice(1), {}) as { verifySecrets: boolean }).verifySecrets, false);
  });

  void test('an Istio-only operator gets no Envoy Gateway permissions', async () => {
    const objs = await render(helm, ['--set', 'operator.outputs={istio}']);
    const rules = named(objs, 'ClusterRole', '-operator')['rules'] as Rule[];
    assert.ok(!rules.some((r) => r.apiGroups.includes('gateway.envoyproxy.io')));
    assert.ok(rules.some((r) => r.apiGroups.includes('security.istio.io')));
  });
});

void describe('uninstall hook', { skip }, () => {
  void test('off by default: no Job', async () => {
    const objs = await render(helm, []);
    assert.equal(byKind(objs, 'Job').length, 0);
  });

  void test('enabled: a pre-delete Job running the operator cleanup with arguments it accepts, allowed to stop only the operator', async () => {
    const objs = await render(helm, ['--set', 'uninstall.removeGeneratedObjects=true']);
    const job = named(objs, 'Job', '-operator-uninstall');
    assert.equal(job.metadata.annotations?.['helm.sh/hook'], 'pre-delete');
    const pod = podSpec(job) as PodSpec & { serviceAccountName: string; containers: { args: string[] }[] };
    assert.equal(pod.serviceAccountName, 'portcullis-operator');
    const args = pod.containers[0]!.args;
    assert.deepEqual(args.slice(0, 2), ['dist/operator/main.js', 'cleanup']);
    const cfg = parseCleanupArgs(args.slice(2), {});
    assert.notEqual(cfg, 'help');
    if (cfg !== 'help') assert.deepEqual(cfg.deployment, { namespace: 'portcullis-system', name: 'portcullis-operator' });
    const role = named(objs, 'Role', '-operator-referencegrants');
    const scale = (role['rules'] as (Rule & { resourceNames?: string[] })[]).find((r) => r.resources.includes('deployments/scale'));
    assert.deepEqual(scale?.resourceNames, ['portcullis-operator']);
  });
});

/** "500ms", "0.5s", "1m30s" → milliseconds. */
function durationMs(d: string): number {
  const unit: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1 };
  let ms = 0;
  for (const m of d.matchAll(/([0-9.]+)(ms|h|m|s)/g)) ms += Number(m[1]) * unit[m[2]!]!;
  return ms;
}

void describe('docs/envoy names what the chart creates (NOTES: test/helm/install.test.ts)', { skip }, () => {
  const docs = (f: string): string => fs.readFileSync(path.join(repoRoot(), 'docs', 'envoy', f), 'utf8');
  let objs: K8sObject[];
  before(async () => {
    objs = await render(helm, []);
  });

  void test('the Service the chart creates is the one NOTES and every docs/envoy fragment name', () => {
    const svc = named(objs, 'Service', '-extauthz');
    const host = `${svc.metadata.name}.${svc.metadata.namespace}.svc.cluster.local`;
    assert.equal(host, 'portcullis-extauthz.portcullis-system.svc.cluster.local');
    const clusters = docs('portcullis-cluster.yaml').split(/^---$/m).map((d) => parse(d) as { load_assignment: { endpoints: { lb_endpoints: { endpoint: { address: { socket_address: { address: string; port_value: number } } } }[] }[] } });
    const addresses = clusters.map((c) => c.load_assignment.endpoints[0]!.lb_endpoints[0]!.endpoint.address.socket_address);
    assert.deepEqual(addresses.map((a) => a.address), [host, host]);
    const ports = (svc['spec'] as { ports: { port: number }[] }).ports.map((p) => p.port);
    for (const a of addresses) assert.ok(ports.includes(a.port_value), `port ${a.port_value} is a port of the Service`);
    assert.ok(docs('README.md').includes(host));
  });

  void test('one real budget everywhere: the operator flag, the Istio provider fragment, and every Envoy fragment', () => {
    const op = named(objs, 'Deployment', '-operator') as unknown as { spec: { template: { spec: { containers: { args: string[] }[] } } } };
    const flag = op.spec.template.spec.containers[0]!.args.find((a) => a.startsWith('--timeout='));
    assert.equal(flag, '--timeout=500ms');
    const timeouts = ['ext-authz-filter.yaml', 'ext-proc-filter.yaml', 'http-connection-manager.yaml'].flatMap((f) => [...docs(f).matchAll(/(?:^|\s)(?:timeout|message_timeout): (\S+)/g)].map((m) => m[1]!));
    timeouts.push((parse(docs('istio-mesh-config.yaml')) as { meshConfig: { extensionProviders: { envoyExtAuthzGrpc: { timeout: string } }[] } }).meshConfig.extensionProviders[0]!.envoyExtAuthzGrpc.timeout);
    // ext_authz in the HCM sample and in its own fragment, ext_proc's fragment, Istio's provider.
    assert.ok(timeouts.length >= 4, `${timeouts.length} budgets found`);
    for (const t of timeouts) assert.equal(durationMs(t), 500, t);
  });
});

void describe('chart files', () => {
  const values = parse(fs.readFileSync(path.join(CHART(), 'values.yaml'), 'utf8')) as Record<string, unknown>;
  const schema = JSON.parse(fs.readFileSync(path.join(CHART(), 'values.schema.json'), 'utf8')) as SchemaNode;

  void test('every value is documented in the chart README', () => {
    const readme = fs.readFileSync(path.join(CHART(), 'README.md'), 'utf8');
    const missing = leafPaths(values).filter((p) => !readme.includes('`' + p + '`'));
    assert.deepEqual(missing, []);
  });

  void test('every value is declared in the schema (and objects there are closed)', () => {
    const missing = leafPaths(values).filter((p) => !schemaHas(schema, p.split('.')));
    assert.deepEqual(missing, []);
    assert.equal(schema.additionalProperties, false);
  });

  void test("the chart's CRDs are the repository's crds/, byte for byte", () => {
    for (const f of ['apipolicy.yaml', 'tenant.yaml']) {
      assert.equal(fs.readFileSync(path.join(CHART(), 'crds', f), 'utf8'), fs.readFileSync(path.join(repoRoot(), 'crds', f), 'utf8'), f);
    }
    assert.deepEqual(fs.readdirSync(path.join(CHART(), 'crds')).sort(), fs.readdirSync(path.join(repoRoot(), 'crds')).filter((f) => f.endsWith('.yaml')).sort());
  });

  void test('the chart installs no upstream (Istio, Gateway API, Envoy Gateway) CRDs', () => {
    for (const f of fs.readdirSync(path.join(CHART(), 'crds'))) {
      const doc = parse(fs.readFileSync(path.join(CHART(), 'crds', f), 'utf8')) as { spec: { group: string } };
      assert.equal(doc.spec.group, 'portcullis.io', f);
    }
  });
});

interface SchemaNode {
  type?: string | string[];
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
}

/** Dotted paths of the leaves of values.yaml; empty maps and lists count as leaves. */
function leafPaths(v: Record<string, unknown>, prefix = ''): string[] {
  return Object.entries(v).flatMap(([k, x]) => {
    const p = prefix ? `${prefix}.${k}` : k;
    const isMap = x !== null && typeof x === 'object' && !Array.isArray(x) && Object.keys(x).length > 0;
    // Free-form maps (resources, labels) are documented as one value.
    if (!isMap || ['resources', 'labels', 'podAnnotations', 'podLabels', 'commonLabels'].includes(k)) return [p];
    return leafPaths(x as Record<string, unknown>, p);
  });
}

function schemaHas(node: SchemaNode | undefined, keys: string[]): boolean {
  if (node === undefined) return false;
  const [head, ...rest] = keys;
  if (head === undefined) return true;
  const child = node.properties?.[head];
  return child !== undefined && schemaHas(child, rest);
}

/** The schema of the Prometheus Operator's PrometheusRule CRD (fetched by test/tools/build.sh crds). */
async function prometheusRuleCrd(): Promise<{ file: string; schema: unknown }> {
  await ensureTools(['crds']);
  const file = prometheusRuleCrdFile();
  const docs = parseAllDocuments(fs.readFileSync(file, 'utf8')).map((d) => d.toJS() as CrdDoc | null);
  const schema = docs.map(prometheusRuleSchema).find((s) => s !== undefined);
  assert.ok(schema, `${file} holds no PrometheusRule v1 schema`);
  return { file, schema };
}

type CrdDoc = { kind?: string; spec?: { names?: { kind?: string }; versions?: { name: string; schema?: { openAPIV3Schema?: unknown } }[] } };

function prometheusRuleSchema(crd: CrdDoc | null): unknown {
  if (crd?.kind !== 'CustomResourceDefinition' || crd.spec?.names?.kind !== 'PrometheusRule') return undefined;
  return crd.spec.versions?.find((v) => v.name === 'v1')?.schema?.openAPIV3Schema;
}

void describe('PrometheusRule for the suspicious-activity signals (docs/alerts.md)', { skip }, () => {
  void test('off by default', async () => {
    assert.equal(byKind(await render(helm, []), 'PrometheusRule').length, 0);
  });

  void test('one rule per signal, scoped to the release namespace, with the configured labels', async () => {
    const objs = await render(helm, ['--set', 'metrics.prometheusRule.enabled=true', '--set', 'metrics.prometheusRule.labels.release=kps', '--set', 'metrics.prometheusRule.lookback=15m']);
    const rule = named(objs, 'PrometheusRule', '-alerts');
    assert.equal(rule.apiVersion, 'monitoring.coreos.com/v1');
    assert.equal(rule.metadata.namespace, 'portcullis-system');
    assert.equal(rule.metadata.labels?.['release'], 'kps');
    const rules = (rule['spec'] as { groups: { rules: { alert: string; expr: string; labels: Record<string, string> }[] }[] }).groups.flatMap((g) => g.rules);
    for (const signal of SIGNALS) {
      const r = rules.find((x) => x.expr.includes(`signal="${signal}"`));
      assert.ok(r, `no rule for ${signal}`);
      assert.match(r.expr, /increase\(portcullis_alerts_total\{.*namespace="portcullis-system".*\}\[15m\]\)/);
      assert.equal(r.labels['severity'], signal === 'distinct-subjects' ? 'critical' : 'warning');
    }
    assert.ok(rules.some((r) => r.expr.includes('portcullis_alerts_suppressed_total')));
    assert.ok(rules.some((r) => r.expr.includes('portcullis_alerts_unrecorded_total')));
    // Every metric a rule names is one the service exports.
    for (const r of rules) for (const m of r.expr.match(/portcullis_[a-z_]+/g) ?? []) assert.ok(['portcullis_alerts_total', 'portcullis_alerts_suppressed_total', 'portcullis_alerts_unrecorded_total'].includes(m), m);
  });

  void test('validates against the Prometheus Operator CRD schema', async () => {
    const crd = await prometheusRuleCrd();
    const objs = await render(helm, ['--set', 'metrics.prometheusRule.enabled=true']);
    // CRD patterns are Go RE2 (the API server's engine), e.g. `(?i)`, which JavaScript's RegExp refuses.
    const re2 = Object.assign((p: string) => {
      const re = RE2JS.compile(p);
      return { test: (v: string) => re.matcher(v).find(), toString: () => `re2:${p}` };
    }, { code: 'test re2' });
    const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false, code: { regExp: re2 as never } });
    const validate = ajv.compile(toJsonSchema(crd.schema) as object);
    const rule = named(objs, 'PrometheusRule', '-alerts');
    assert.ok(validate(rule), `${crd.file}: ${ajv.errorsText(validate.errors)}`);
    // The schema does bite: a rule without its expression is refused.
    const broken = structuredClone(rule) as unknown as { spec: { groups: { rules: Record<string, unknown>[] }[] } };
    delete broken.spec.groups[0]!.rules[0]!['expr'];
    assert.equal(validate(broken), false);
    assert.match(ajv.errorsText(validate.errors), /expr/);
  });
});

void describe('tracing (docs/tracing.md)', { skip }, () => {
  const env = (objs: K8sObject[]): { name: string; value?: string }[] => (podSpec(named(objs, 'Deployment', '-extauthz')).containers[0] as unknown as { env: { name: string; value?: string }[] }).env;
  void test('off by default; extauthz.tracing.otlpEndpoint sets OTEL_EXPORTER_OTLP_ENDPOINT', async () => {
    assert.ok(!env(await render(helm, [])).some((e) => e.name === 'OTEL_EXPORTER_OTLP_ENDPOINT'));
    const on = env(await render(helm, ['--set', 'extauthz.tracing.otlpEndpoint=http://otel-collector.observability:4318']));
    assert.equal(on.find((e) => e.name === 'OTEL_EXPORTER_OTLP_ENDPOINT')?.value, 'http://otel-collector.observability:4318');
  });
  void test('a non-http endpoint is refused by the values schema', async () => {
    const r = await runHelm(helm, ['template', 'portcullis', CHART(), '--set', 'extauthz.tracing.otlpEndpoint=grpc://collector:4317']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /\/extauthz\/tracing\/otlpEndpoint/);
  });
});
