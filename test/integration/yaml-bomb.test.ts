/**
 * `serve` against hostile policy files dropped into its watched folder: a billion-laughs file
 * and a 200 000-deep flow nesting are rejected as POLICY_YAML, the last good snapshot keeps
 * deciding, and Checks and health answer throughout.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { billionLaughs, deepFlow } from '../helpers/hostile-yaml.js';
import { tempPolicyDir, type TempDir } from '../helpers/policies.js';
import { checkRequest } from '../helpers/requests.js';
import { eventually, startTestServer, type TestServer } from '../helpers/server.js';

const GOOD = `apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: p, namespace: t }
spec:
  hosts: [api.example]
  rules:
    - name: get-allowed
      methods: [GET]
      principals: { anonymous: true }
`;

let dir: TempDir;
let srv: TestServer;

before(async () => {
  dir = tempPolicyDir({ 'p.yaml': GOOD });
  srv = await startTestServer(dir.dir, { watch: true });
  await eventually(async () => (await srv.health()) === 'SERVING', 'health SERVING');
});

after(async () => {
  await srv?.close();
  dir?.remove();
});

const rejected = async (): Promise<number> => Number(/portcullis_policy_reloads_total\{result="error"\} (\d+)/.exec((await srv.http('/metrics')).body)?.[1] ?? '0');

for (const [name, text] of [['billion laughs', billionLaughs()], ['flow nesting 200 000 deep', deepFlow(200_000)]] as const) {
  test(`${name} in the watched folder: rejected, the last good snapshot decides, Checks and health answer`, async () => {
    const before = await rejected();
    dir.write(`bomb-${name.length}.yaml`, text);
    // Checks keep being answered while the reload runs and after it is rejected.
    let answered = 0;
    await eventually(async () => {
      const r = await srv.check(checkRequest({ method: 'GET', host: 'api.example', path: '/x' }));
      assert.equal(r.status?.code, grpc.status.OK, 'the last good snapshot still allows GET');
      assert.equal(await srv.health(), 'SERVING');
      answered++;
      return (await rejected()) > before;
    }, 'the hostile file to be rejected');
    assert.ok(answered >= 1);
    const denied = await srv.check(checkRequest({ method: 'POST', host: 'api.example', path: '/x' }));
    assert.notEqual(denied.status?.code, grpc.status.OK, 'still the old policy: POST denied');
    dir.write(`bomb-${name.length}.yaml`, '# emptied\n');
  });
}
