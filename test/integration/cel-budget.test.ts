/**
 * serve with a runaway policy next to the standard ones: a policy whose rules are each within the
 * static CEL bounds but together loop over a client-controlled list. Its Checks are cut off by
 * the runtime budget (CONDITION_BUDGET) while other Checks and health keep answering.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { tempPolicyDir, type TempDir } from '../helpers/policies.js';
import { checkRequest } from '../helpers/requests.js';
import { httpStatus, startTestServer, type CheckResponse, type TestServer } from '../helpers/server.js';
import { HOSTS, NS, REVENUE_SPIFFE, standardFiles } from '../helpers/fixtures.js';
import { generateKey } from '../helpers/keys.js';

const RUNAWAY_HOST = 'runaway.test.example';

// 15 rules × a split of one 16 KiB header: ~490,000 units estimated (accepted), ~120,000 iterations per Check.
const RUNAWAY = `apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: runaway, namespace: ${NS} }
spec:
  hosts: [${RUNAWAY_HOST}]
  rules:
${Array.from({ length: 15 }, (_, i) => `    - name: loop-${i}
      principals: { anonymous: true }
      when: "request.headers['x-l'].split(',').all(x, true) && request.method == 'NONE${i}'"
`).join('')}`;

let dir: TempDir;
let srv: TestServer;

before(async () => {
  const key = await generateKey('RS256');
  dir = tempPolicyDir({ ...standardFiles([key.publicJwk]), '30-runaway.yaml': RUNAWAY });
  srv = await startTestServer(dir.dir);
});

after(async () => {
  await srv?.close();
  dir?.remove();
});

function errorCode(r: CheckResponse): string | undefined {
  if (!r.deniedResponse) return undefined;
  return (JSON.parse(r.deniedResponse.body ?? '{}') as { error?: { code?: string } }).error?.code;
}

describe('serve: a runaway CEL policy cannot stall the service', () => {
  test('runaway Checks deny with CONDITION_BUDGET while other Checks and health answer', async () => {
    const runaway = checkRequest({ host: RUNAWAY_HOST, path: '/x', headers: { 'x-l': ','.repeat(16_000) } });
    const normal = checkRequest({ host: HOSTS.stats, path: '/v1/stats/income/2025', principal: REVENUE_SPIFFE, headers: { 'x-purpose-of-use': 'statistics' } });
    const calls: Promise<['runaway' | 'normal' | 'health', unknown]>[] = [];
    for (let i = 0; i < 20; i++) {
      calls.push(srv.check(runaway).then((r) => ['runaway', r]));
      calls.push(srv.check(normal).then((r) => ['normal', r]));
      calls.push(srv.health().then((r) => ['health', r]));
    }
    const results = await Promise.all(calls);
    for (const [kind, r] of results) {
      if (kind === 'health') assert.equal(r, 'SERVING');
      else if (kind === 'normal') assert.equal((r as CheckResponse).status?.code, grpc.status.OK, JSON.stringify(r));
      else {
        const res = r as CheckResponse;
        assert.equal(errorCode(res), 'CONDITION_BUDGET', JSON.stringify(res));
        assert.equal(httpStatus(res.deniedResponse?.status?.code), 403);
      }
    }
    assert.equal(results.length, 60);
  });

  test('a small list on the same policy is decided normally (the budget is per Check)', async () => {
    const r = await srv.check(checkRequest({ host: RUNAWAY_HOST, path: '/x', headers: { 'x-l': 'a,b' } }));
    assert.equal(errorCode(r), 'UNAUTHENTICATED');
  });
});
