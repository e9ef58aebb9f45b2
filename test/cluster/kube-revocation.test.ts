/**
 * Revocation lists from the cluster, against a real kube-apiserver: the Kubernetes policy source
 * watches the labelled ConfigMaps and Secrets a Tenant names; a principal allowed before is
 * denied 401 REVOKED on a Check within 1 s of the list changing in the API server; a malformed
 * list keeps the last good one serving and is reported at /spec/revocation.
 */
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { KubernetesPolicySource } from '../../extauthz/kube/policy-source.js';
import { loadKubeConfig } from '../../kube/config.js';
import { createLogger } from '../../extauthz/logger.js';
import { DecisionPipeline } from '../../extauthz/pipeline/pipeline.js';
import type { ApplyResult } from '../../extauthz/policy/store.js';
import { checkRequest } from '../helpers/requests.js';
import { eventually } from '../helpers/server.js';
import { startTestCluster, type TestCluster } from './cluster.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const NS = 'revoke';
const SPIFFE = (n: string): string => `spiffe://gov.example/ns/${n}/sa/app`;

const tenant = (name: string, ref: string): string => `apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: ${name}, namespace: ${NS} }
spec:
  type: agency
  identity: { mtls: { spiffeIds: ["${SPIFFE(name)}"] } }
  revocation: { ${ref} }
`;

const POLICY = `apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: api, namespace: ${NS} }
spec:
  hosts: [api.example]
  rules:
    - name: agencies
      principals: { types: [agency] }
`;

const list = (kind: 'ConfigMap' | 'Secret', subs: string[] | string): string => {
  const text = typeof subs === 'string' ? subs : JSON.stringify({ sub: subs });
  const field = kind === 'ConfigMap' ? 'data' : 'stringData';
  return `apiVersion: v1\nkind: ${kind}\nmetadata: { name: revoked, namespace: ${NS}, labels: { portcullis.io/revocation: "true" } }\n${field}:\n  list.json: ${JSON.stringify(text)}\n`;
};

describe('revocation lists from ConfigMaps and Secrets (real API server)', { timeout: 30 * 60_000 }, () => {
  let cluster: TestCluster;
  let source: KubernetesPolicySource;
  let pipeline: DecisionPipeline;
  const applied: ApplyResult[] = [];
  const apply = async (yaml: string): Promise<void> => {
    const r = await cluster.kubectl(['apply', '-f', '-'], yaml);
    assert.equal(r.code, 0, r.stderr);
  };
  const code = async (who: string): Promise<string> => (await pipeline.check(checkRequest({ host: 'api.example', path: '/x', principal: SPIFFE(who) }))).code ?? 'OK';
  /** Checks until `want`; returns the ms since `since` (the moment the API server had the change). */
  const within = async (since: number, who: string, want: string): Promise<number> => {
    for (;;) {
      const got = await code(who);
      const ms = performance.now() - since;
      if (got === want) return ms;
      assert.ok(ms < 1000, `still ${got} after ${Math.round(ms)} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };

  before(async () => {
    cluster = await startTestCluster({ upstreamCrds: false, crdFiles: [`${ROOT}crds/tenant.yaml`, `${ROOT}crds/apipolicy.yaml`] });
    await apply(`apiVersion: v1\nkind: Namespace\nmetadata: { name: ${NS} }\n`);
    await apply([POLICY, tenant('cm', 'configMapRef: { name: revoked, key: list.json }'), tenant('sec', 'secretRef: { name: revoked, key: list.json }'), list('ConfigMap', []), list('Secret', [])].join('---\n'));
    source = new KubernetesPolicySource({ kubeConfig: loadKubeConfig(cluster.kubeconfig), log: createLogger('silent'), debounceMs: 50, onApplied: (r) => void applied.push(r) });
    await source.start();
    pipeline = new DecisionPipeline({ snapshot: () => source.snapshot });
  });

  after(async () => {
    await source?.close();
    await cluster?.stop();
  });

  test('both tenants serve with empty lists', async () => {
    assert.equal(await code('cm'), 'OK');
    assert.equal(await code('sec'), 'OK');
  });

  for (const kind of ['ConfigMap', 'Secret'] as const) {
    const who = kind === 'ConfigMap' ? 'cm' : 'sec';
    test(`${kind}: revoking the subject denies REVOKED within 1 s; a malformed list keeps the last good one`, async (t) => {
      await apply(list(kind, [SPIFFE(who)]));
      const ms = await within(performance.now(), who, 'REVOKED');
      assert.ok(ms < 1000, `${ms} ms`);
      t.diagnostic(`denied ${Math.round(ms)} ms after kubectl apply returned`);
      const count = applied.length;
      await apply(list(kind, '{"sub": ['));
      await eventually(() => applied.length > count && applied.at(-1)!.reports.get(`Tenant ${NS}/${who}`)?.serving === 'last-good', 'the malformed list to be refused');
      assert.equal(applied.at(-1)!.reports.get(`Tenant ${NS}/${who}`)?.errors[0]?.location.path, '/spec/revocation');
      assert.equal(await code(who), 'REVOKED', 'the last good list still serves');
      await apply(list(kind, []));
      await within(performance.now(), who, 'OK');
    });
  }
});
