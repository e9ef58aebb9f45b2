/**
 * Body schemas from ConfigMaps, against a real kube-apiserver: the CRD accepts exactly one of
 * inline and configMapRef; the Kubernetes policy source watches the ConfigMaps labelled
 * portcullis.io/schema=true; a schema edit reaches decisions; an unlabelled ConfigMap is not
 * read, so the policy is refused rather than validating nothing.
 */
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { KubernetesPolicySource } from '../../extauthz/kube/policy-source.js';
import { loadKubeConfig } from '../../kube/config.js';
import { createLogger } from '../../extauthz/logger.js';
import { DecisionPipeline } from '../../extauthz/pipeline/pipeline.js';
import type { ApplyResult } from '../../extauthz/policy/store.js';
import { eventually } from '../helpers/server.js';
import { orderSchema, orderSchemaConfigMap, ordersPolicy, ORDER_SCHEMA_REF } from '../helpers/order-schema.js';
import { startTestCluster, type TestCluster } from './cluster.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const NS = 'schemas';
const HOST = 'orders.example';

const policy = (body: string): string => ordersPolicy({ namespace: NS, host: HOST, body });
const schemaMap = (max: number, labelled = true): string => orderSchemaConfigMap({ namespace: NS, data: { 'schema.json': orderSchema(max) }, labelled });

describe('body schemas from ConfigMaps (real API server)', { timeout: 30 * 60_000 }, () => {
  let cluster: TestCluster;
  let source: KubernetesPolicySource;
  let pipeline: DecisionPipeline;
  const applied: ApplyResult[] = [];
  const kubectlApply = (yaml: string): ReturnType<TestCluster['kubectl']> => cluster.kubectl(['apply', '-f', '-'], yaml);
  const order = async (quantity: number): Promise<string> => {
    const body = JSON.stringify({ quantity });
    const d = await pipeline.check({ attributes: { request: { http: { method: 'POST', host: HOST, path: '/v1/orders', headers: { 'content-type': 'application/json', 'content-length': String(body.length) }, body } } } });
    return d.code ?? 'OK';
  };

  before(async () => {
    cluster = await startTestCluster({ upstreamCrds: false, crdFiles: [`${ROOT}crds/tenant.yaml`, `${ROOT}crds/apipolicy.yaml`] });
    assert.equal((await kubectlApply(`apiVersion: v1\nkind: Namespace\nmetadata: { name: ${NS} }\n`)).code, 0);
    const r = await kubectlApply([schemaMap(10), policy(ORDER_SCHEMA_REF)].join('---\n'));
    assert.equal(r.code, 0, r.stderr);
    source = new KubernetesPolicySource({ kubeConfig: loadKubeConfig(cluster.kubeconfig), log: createLogger('silent'), debounceMs: 50, onApplied: (a) => void applied.push(a) });
    await source.start();
    pipeline = new DecisionPipeline({ snapshot: () => source.snapshot });
  });

  after(async () => {
    await source?.close();
    await cluster?.stop();
  });

  test('the API server refuses a body with both inline and configMapRef, or neither', async () => {
    for (const body of ['{ inline: { type: object }, configMapRef: { name: order-schema, key: schema.json } }', '{}']) {
      const r = await kubectlApply(policy(body).replace('name: orders', 'name: bad'));
      assert.notEqual(r.code, 0);
      assert.match(r.stderr, /body needs exactly one of inline or configMapRef/);
    }
  });

  test('the schema from the labelled ConfigMap validates bodies, and an edit reaches decisions', async () => {
    assert.equal(await order(5), 'OK');
    assert.equal(await order(50), 'BODY_INVALID');
    assert.equal((await kubectlApply(schemaMap(100))).code, 0);
    await eventually(async () => (await order(50)) === 'OK', 'the edited schema to decide');
  });

  test('an unlabelled ConfigMap is not read: the policy is refused (last good serves), never validating nothing', async () => {
    assert.equal((await kubectlApply(schemaMap(1, false).replace('order-schema', 'unlabelled'))).code, 0);
    const count = applied.length;
    assert.equal((await kubectlApply(policy('{ configMapRef: { name: unlabelled, key: schema.json } }'))).code, 0);
    await eventually(() => applied.length > count && applied.at(-1)!.reports.get(`ApiPolicy ${NS}/orders`)?.serving === 'last-good', 'the policy to be refused');
    const problem = applied.at(-1)!.reports.get(`ApiPolicy ${NS}/orders`)!.errors[0]!;
    assert.equal(problem.code, 'POLICY_REQUEST');
    assert.equal(problem.location.path, '/spec/rules/0/request/body/configMapRef');
    assert.equal(await order(50), 'OK', 'the last good version (maximum 100) still decides');
    assert.equal(await order(500), 'BODY_INVALID');
  });
});
