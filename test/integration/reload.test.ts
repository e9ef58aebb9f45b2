/**
 * The folder source under the real server: health NOT_SERVING until a snapshot loads, a change
 * swaps the snapshot (new decision), a broken change keeps the last good one.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { tempPolicyDir, type TempDir } from '../helpers/policies.js';
import { checkRequest } from '../helpers/requests.js';
import { eventually, startTestServer, type TestServer } from '../helpers/server.js';

const policy = (rule: string, methods: string): string => `apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: p, namespace: t }
spec:
  hosts: [api.example]
  rules:
    - name: ${rule}
      methods: [${methods}]
      principals: { anonymous: true }
`;

const BROKEN = `apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: p, namespace: t }
spec:
  hosts: [api.example]
  rules:
    - name: broken
      when: "this is not CEL"
`;

let dir: TempDir;
let srv: TestServer;

before(async () => {
  dir = tempPolicyDir({ 'p.yaml': BROKEN });
  srv = await startTestServer(dir.dir, { watch: true });
});

after(async () => {
  await srv?.close();
  dir?.remove();
});

const post = async (): Promise<{ ok: boolean; rule: string }> => {
  const r = await srv.check(checkRequest({ method: 'POST', host: 'api.example', path: '/x' }));
  const rule = (r.okResponse?.headers ?? []).find((h) => h.header?.key === 'x-portcullis-rule')?.header?.value ?? '';
  return { ok: r.status?.code === grpc.status.OK, rule };
};

test('a broken folder at start: NOT_SERVING, /readyz 503, every Check denied', async () => {
  assert.equal(await srv.health(), 'NOT_SERVING');
  assert.equal(await srv.health('envoy.service.auth.v3.Authorization'), 'NOT_SERVING');
  assert.equal((await srv.http('/readyz')).status, 503);
  assert.equal((await srv.http('/healthz')).status, 200);
  assert.deepEqual(await post(), { ok: false, rule: '' });
});

test('fixing the folder: SERVING, /readyz 200, the policy decides', async () => {
  dir.write('p.yaml', policy('post-allowed', 'POST'));
  await eventually(async () => (await srv.health()) === 'SERVING', 'health SERVING');
  assert.equal((await srv.http('/readyz')).status, 200);
  assert.deepEqual(await post(), { ok: true, rule: 'post-allowed' });
});

test('changing a file: the new snapshot gives a new decision', async () => {
  dir.write('p.yaml', policy('get-only', 'GET'));
  await eventually(async () => !(await post()).ok, 'POST denied by the new policy');
  const get = await srv.check(checkRequest({ method: 'GET', host: 'api.example', path: '/x' }));
  assert.equal(get.status?.code, grpc.status.OK);
});

test('breaking a file: the last good snapshot is kept and the rejection counted', async () => {
  const rejectedBefore = /portcullis_policy_reloads_total\{result="error"\} (\d+)/.exec((await srv.http('/metrics')).body)?.[1] ?? '0';
  dir.write('p.yaml', BROKEN);
  await eventually(async () => {
    const m = /portcullis_policy_reloads_total\{result="error"\} (\d+)/.exec((await srv.http('/metrics')).body);
    return m !== null && Number(m[1]) > Number(rejectedBefore);
  }, 'the broken change to be rejected');
  // Still the get-only snapshot: GET allowed, POST denied, still SERVING.
  assert.equal((await srv.check(checkRequest({ method: 'GET', host: 'api.example', path: '/x' }))).status?.code, grpc.status.OK);
  assert.equal((await post()).ok, false);
  assert.equal(await srv.health(), 'SERVING');
});
