/**
 * `serve --source kubernetes --workers 2` against a real API server decides exactly as
 * `--workers 1`: a revocation list in a labelled Secret and one in a labelled ConfigMap, a body
 * schema in a labelled ConfigMap, at startup and after each is edited with kubectl. The primary
 * runs the informers; the workers get what its store gets (server/forwarded-source.ts).
 */
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from '../helpers/server.js';
import { clients, startServe, type CheckClient, type Serve } from '../helpers/serve-process.js';
import { ACME_SECRET_REF, acmeRevokedSecret, AT_START, betaRevoked, decide, NS, openPolicy, ordersYaml, schemaYaml, tenantsYaml, untilBothApplyEdits, decisionsPerWorker } from '../helpers/workers-inputs.js';
import { startTestCluster, type TestCluster } from './cluster.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

describe('serve --workers with the Kubernetes source (real API server)', { timeout: 30 * 60_000 }, () => {
  let cluster: TestCluster;
  let work: string;
  let single: Serve;
  let pool: Serve;
  let one: CheckClient[];
  let many: CheckClient[];
  const apply = async (...docs: string[]): Promise<void> => {
    const r = await cluster.kubectl(['apply', '-f', '-'], docs.join('---\n'));
    assert.equal(r.code, 0, r.stderr);
  };

  before(async () => {
    cluster = await startTestCluster({ upstreamCrds: false, crdFiles: [`${ROOT}crds/tenant.yaml`, `${ROOT}crds/apipolicy.yaml`] });
    await apply(`apiVersion: v1\nkind: Namespace\nmetadata: { name: ${NS} }\n`);
    await apply(tenantsYaml(ACME_SECRET_REF), acmeRevokedSecret(['acme-2']), betaRevoked(['beta-2']), openPolicy, ordersYaml, schemaYaml(10));
    work = mkdtempSync(join(tmpdir(), 'portcullis-kube-workers-'));
    const serve = (workers: number): Promise<Serve> => startServe(['--source', 'kubernetes', '--kubeconfig', cluster.kubeconfig, '--workers', String(workers), '--audit-file', join(work, `w${workers}.jsonl`)]);
    single = await serve(1);
    pool = await serve(2);
    one = clients(single.grpcPort, 1);
    many = clients(pool.grpcPort, 16);
  });

  after(async () => {
    for (const c of [...(one ?? []), ...(many ?? [])]) c.close();
    for (const s of [single, pool]) s?.child.kill('SIGTERM');
    await Promise.all([single?.exited, pool?.exited]);
    await cluster?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  test('at startup every worker decides as one process', async () => {
    // The informers' first sync may land after 'serving' is logged.
    await eventually(async () => JSON.stringify(await decide(one)) === JSON.stringify(AT_START), 'one process to load the cluster');
    let seen: Record<string, string> = {};
    await eventually(async () => JSON.stringify((seen = await decide(many))) === JSON.stringify(AT_START), 'the workers to load the cluster').catch((err: unknown) => {
      assert.deepEqual(seen, AT_START, 'every connection of serve --workers 2');
      throw err;
    });
    const perWorker = decisionsPerWorker(join(work, 'w2.jsonl'), 2);
    assert.ok(perWorker.every((n) => n > 0), `decisions per worker: ${perWorker.join(', ')}`);
  });

  test('after the Secret, the revocation ConfigMap and the schema ConfigMap are edited, every worker decides as one process', async () => {
    await apply(acmeRevokedSecret(['acme-1', 'acme-2']), betaRevoked(['beta-1', 'beta-2']), schemaYaml(100));
    await untilBothApplyEdits(one, many);
  });
});
