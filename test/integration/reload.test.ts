/**
 * The folder source under the real server: a broken policy is refused without holding the
 * service down (a policy author is semi-trusted), a change swaps the snapshot (new decision), a
 * broken change keeps that policy's last good version while unrelated policies keep serving.
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

const OTHER = `apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: other, namespace: t }
spec:
  hosts: [other.example]
  rules:
    - name: other-get
      methods: [GET]
      principals: { anonymous: true }
`;

let dir: TempDir;
let srv: TestServer;

const otherAllowed = async (): Promise<boolean> => (await srv.check(checkRequest({ method: 'GET', host: 'other.example', path: '/x' }))).status?.code === grpc.status.OK;
const rejections = async (): Promise<number> => Number(/portcullis_policy_reloads_total\{result="error"\} (\d+)/.exec((await srv.http('/metrics')).body)?.[1] ?? '0');

before(async () => {
  dir = tempPolicyDir({ 'other.yaml': OTHER, 'p.yaml': BROKEN });
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

test('a broken policy at start is refused and counted; the others serve (SERVING, /readyz 200)', async () => {
  assert.equal(await srv.health(), 'SERVING');
  assert.equal(await srv.health('envoy.service.auth.v3.Authorization'), 'SERVING');
  assert.equal((await srv.http('/readyz')).status, 200);
  assert.ok((await rejections()) >= 1);
  // The refused policy's host is denied (no policy), the unrelated one decides.
  assert.deepEqual(await post(), { ok: false, rule: '' });
  assert.equal(await otherAllowed(), true);
});

test('fixing the policy: it decides', async () => {
  dir.write('p.yaml', policy('post-allowed', 'POST'));
  await eventually(async () => (await post()).ok, 'POST allowed by the fixed policy');
  assert.deepEqual(await post(), { ok: true, rule: 'post-allowed' });
});

test('changing a file: the new snapshot gives a new decision', async () => {
  dir.write('p.yaml', policy('get-only', 'GET'));
  await eventually(async () => !(await post()).ok, 'POST denied by the new policy');
  const get = await srv.check(checkRequest({ method: 'GET', host: 'api.example', path: '/x' }));
  assert.equal(get.status?.code, grpc.status.OK);
});

test('breaking a file: that policy\'s last good version keeps deciding, the rejection is counted, the others serve', async () => {
  const rejectedBefore = await rejections();
  dir.write('p.yaml', BROKEN);
  await eventually(async () => (await rejections()) > rejectedBefore, 'the broken change to be rejected');
  // Still the get-only version: GET allowed, POST denied, still SERVING.
  assert.equal((await srv.check(checkRequest({ method: 'GET', host: 'api.example', path: '/x' }))).status?.code, grpc.status.OK);
  assert.equal((await post()).ok, false);
  assert.equal(await otherAllowed(), true);
  assert.equal(await srv.health(), 'SERVING');
});
