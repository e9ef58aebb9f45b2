/**
 * The Kubernetes policy source against a real kube-apiserver: the same reload model as the
 * folder source. A broken edit keeps that policy's last good generation serving (and says why in
 * its report and logs), unrelated policies keep serving, a fix is picked up, and an update that
 * leaves metadata.generation alone (a status write, a label) compiles nothing.
 */
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { KubernetesPolicySource } from '../../extauthz/kube/policy-source.js';
import { loadKubeConfig } from '../../kube/config.js';
import { createLogger } from '../../extauthz/logger.js';
import type { ApplyResult } from '../../extauthz/policy/store.js';
import { eventually } from '../helpers/server.js';
import { startTestCluster, type TestCluster } from './cluster.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const NS = 'reload';

const policy = (name: string, when: string, labels = ''): string => `apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: ${name}, namespace: ${NS}${labels} }
spec:
  hosts: [${name}.example]
  rules:
    - name: r
      principals: { anonymous: true }
      when: "${when}"
`;

describe('kubernetes policy source: per-object reload against a real API server', { timeout: 30 * 60_000 }, () => {
  let cluster: TestCluster;
  let source: KubernetesPolicySource;
  const applied: ApplyResult[] = [];
  const apply = async (yaml: string): Promise<void> => {
    const r = await cluster.kubectl(['apply', '-f', '-'], yaml);
    assert.equal(r.code, 0, r.stderr);
  };
  const whenOf = (name: string): string | undefined => source.snapshot?.route(`${name}.example`, [], {})?.rules[0]?.when?.source;
  const last = (): ApplyResult => applied.at(-1)!;

  before(async () => {
    cluster = await startTestCluster({ upstreamCrds: false, crdFiles: [`${ROOT}crds/tenant.yaml`, `${ROOT}crds/apipolicy.yaml`] });
    await apply(`apiVersion: v1\nkind: Namespace\nmetadata: { name: ${NS} }\n`);
    await apply(`${policy('a', 'true')}---\n${policy('b', 'true')}`);
    source = new KubernetesPolicySource({ kubeConfig: loadKubeConfig(cluster.kubeconfig), log: createLogger('silent'), debounceMs: 20, onApplied: (r) => void applied.push(r) });
    await source.start();
  });

  after(async () => {
    await source?.close();
    await cluster?.stop();
  });

  test('both policies serve after the first sync', () => {
    assert.equal(whenOf('a'), 'true');
    assert.equal(whenOf('b'), 'true');
  });

  test('a broken edit keeps the last good generation; the report says why; the other policy is untouched', async () => {
    const before = source.snapshot!.byKey.get(`${NS}/b`);
    await apply(policy('a', 'principal.subject =='));
    await eventually(() => last().reports.get(`ApiPolicy ${NS}/a`)?.generation === 2, 'generation 2 of a to be applied');
    const report = last().reports.get(`ApiPolicy ${NS}/a`)!;
    assert.equal(report.serving, 'last-good');
    assert.equal(report.servingGeneration, 1);
    assert.equal(report.errors[0]?.code, 'POLICY_CEL');
    assert.match(report.errors.at(-1)!.message, /last good version \(generation 1\) keeps serving/);
    assert.equal(whenOf('a'), 'true');
    assert.equal(source.snapshot!.byKey.get(`${NS}/b`), before, 'b was neither recompiled nor replaced');
    assert.equal(last().stats.policiesCompiled, 1);
  });

  test('fixing it serves the new generation', async () => {
    await apply(policy('a', 'false'));
    await eventually(() => whenOf('a') === 'false', 'the fixed generation to serve');
    assert.equal(last().reports.get(`ApiPolicy ${NS}/a`)?.serving, 'current');
  });

  test('a label-only update and a status write compile nothing and keep the snapshot', async () => {
    const snapshot = source.snapshot;
    const runs = applied.length;
    await apply(policy('b', 'true', ', labels: { team: x }'));
    const status = await cluster.kubectl(['patch', 'apipolicy', 'b', '-n', NS, '--subresource=status', '--type=merge', '-p', '{"status":{"observedGeneration":1}}']);
    assert.equal(status.code, 0, status.stderr);
    // A real change afterwards proves the events were delivered (the source sees them in order).
    await apply(policy('a', 'true && true'));
    await eventually(() => whenOf('a') === 'true && true', 'the later real change');
    const since = applied.slice(runs);
    assert.ok(since.every((r) => r.stats.policiesCompiled <= 1), JSON.stringify(since.map((r) => r.stats)));
    assert.equal(since.reduce((n, r) => n + r.stats.policiesCompiled, 0), 1, 'only the real change compiled');
    assert.equal(source.snapshot!.byKey.get(`${NS}/b`), snapshot!.byKey.get(`${NS}/b`));
  });

  // The purposes list mixes names and objects, which a structural schema cannot type: the API
  // server must store both as given, and the compiler reads them (issue 15).
  test('the API server accepts purposes as names and objects, spec.version, requirePurpose and subjectParam', async () => {
    await apply(`apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: revenue, namespace: ${NS} }
spec:
  type: agency
  identity: { mtls: { spiffeIds: ["spiffe://td/revenue"] } }
  purposes:
    - statistics
    - { name: tax-audit, legalBasis: "Tax Code s. 12", description: One taxpayer }
---
apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: records, namespace: ${NS} }
spec:
  version: v2
  hosts: [records.example]
  rules:
    - name: agency
      paths: ["/v2/citizens/{id}"]
      principals: { types: [agency] }
      requirePurpose: true
      subjectParam: id
`);
    await eventually(() => source.snapshot?.byKey.get(`${NS}/records`) !== undefined, 'the policy to serve');
    const t = source.snapshot!.tenants.get(NS)!.byName.get('revenue')!;
    assert.deepEqual(t.purposeIndex.get('tax-audit'), { name: 'tax-audit', legalBasis: 'Tax Code s. 12', description: 'One taxpayer' });
    assert.deepEqual(t.purposes, ['statistics', 'tax-audit']);
    const p = source.snapshot!.byKey.get(`${NS}/records`)!;
    assert.equal(p.version, 'v2');
    assert.equal(p.rules[0]?.subjectParam, 'id');
    assert.equal(p.rules[0]?.requirePurpose, true);
    const stored = await cluster.kubectl(['get', 'tenant', 'revenue', '-n', NS, '-o', 'jsonpath={.spec.purposes}']);
    assert.deepEqual(JSON.parse(stored.stdout), ['statistics', { name: 'tax-audit', legalBasis: 'Tax Code s. 12', description: 'One taxpayer' }]);
  });

  test('the API server refuses requirePurpose on a deny rule and subjectParam without paths', async () => {
    for (const [rule, message] of [
      ['{ name: d, effect: deny, requirePurpose: true }', /deny rules cannot carry requirePurpose/],
      ['{ name: s, subjectParam: id }', /subjectParam needs paths that capture it/],
    ] as const) {
      const r = await cluster.kubectl(['apply', '-f', '-'], `apiVersion: portcullis.io/v1alpha1\nkind: ApiPolicy\nmetadata: { name: bad, namespace: ${NS} }\nspec:\n  hosts: [bad.example]\n  rules: [${rule}]\n`);
      assert.notEqual(r.code, 0, r.stdout);
      assert.match(r.stderr, message);
    }
  });
});
