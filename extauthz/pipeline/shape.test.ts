import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileValid } from '../../test/helpers/policies.js';
import { bearer, checkRequest } from '../../test/helpers/requests.js';
import { generateKey, mintToken, type TestKey } from '../../test/helpers/keys.js';
import { HOSTS, REVENUE_SPIFFE, standardFiles } from '../../test/helpers/fixtures.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import { parseCheckRequest } from './context.js';
import { DecisionPipeline } from './pipeline.js';
import { FORWARD_LIMITS } from './shape.js';

const NOW = new Date('2026-03-01T12:00:00Z');
let snapshot: PolicySnapshot;
let key: TestKey;

before(async () => {
  key = await generateKey('ES256');
  snapshot = compileValid(standardFiles([key.publicJwk])).snapshot;
});

const agency = { host: HOSTS.stats, path: '/v1/stats/income/2025', principal: REVENUE_SPIFFE };

describe('shape, from the attacker side: nothing upstream can be confused with an identity header', () => {
  const forged: [string, string][] = [
    ['x_portcullis_tenant', 'dept-health'],
    ['x-portcullis_principal', 'spiffe://gov.example/ns/health/sa/etl'],
    ['X_Portcullis_Principal_Type', 'agency'],
    ['x-portcullis-tenant', 'dept-health'],
  ];
  for (const [name, value] of forged) {
    test(`${name} is invisible to the decision and removed upstream`, async () => {
      const headers = { 'x-purpose-of-use': 'statistics', [name]: value };
      const ctx = parseCheckRequest(checkRequest({ ...agency, headers }), NOW);
      assert.equal(ctx.headers[name.toLowerCase()], undefined, 'not visible to CEL');
      const d = await new DecisionPipeline({ snapshot: () => snapshot, clock: () => NOW }).check(checkRequest({ ...agency, headers }));
      assert.equal(d.allowed, true, d.reason);
      const set = Object.keys(d.headers);
      // Either set by Portcullis (overwriting the forgery) or removed; never passed through.
      assert.ok(d.removeHeaders.includes(name.toLowerCase()) || set.includes(name.toLowerCase()), JSON.stringify(d.removeHeaders));
      assert.equal(d.headers['x-portcullis-tenant'], 'dept-revenue');
    });
  }

  for (const name of ['x-http-method-override', 'x-method-override', 'x-http-method', 'x_http_method_override']) {
    test(`${name}: DELETE is removed upstream; the decision is on the real method`, async () => {
      const d = await new DecisionPipeline({ snapshot: () => snapshot, clock: () => NOW }).check(checkRequest({ ...agency, headers: { 'x-purpose-of-use': 'statistics', [name]: 'DELETE' } }));
      assert.equal(d.allowed, true, d.reason);
      assert.equal(d.audit.method, 'GET');
      assert.ok(d.removeHeaders.includes(name), JSON.stringify(d.removeHeaders));
    });
  }

  test(`a subject over ${FORWARD_LIMITS.subjectBytes} bytes is refused before quotas, never forwarded truncated`, async () => {
    let charged = 0;
    const quota = { charge: () => (charged++, Promise.resolve({ allowed: true, headers: {} })) };
    const sub = 'c-' + 'x'.repeat(FORWARD_LIMITS.subjectBytes);
    const token = await mintToken(key, { now: NOW, sub, claims: { amr: ['mfa'] } });
    const d = await new DecisionPipeline({ snapshot: () => snapshot, clock: () => NOW, quota }).check(checkRequest({ host: HOSTS.records, path: `/v1/citizens/${sub}/records`, headers: bearer(token) }));
    assert.deepEqual([d.allowed, d.code], [false, 'BAD_REQUEST']);
    assert.match(d.reason, /cannot be forwarded/);
    assert.equal(charged, 0);
  });

  test('every forwarded identity value is bounded', async () => {
    const d = await new DecisionPipeline({ snapshot: () => snapshot, clock: () => NOW }).check(checkRequest({ ...agency, headers: { 'x-purpose-of-use': 'statistics' } }));
    for (const [name, value] of Object.entries(d.headers)) if (name !== 'x-portcullis-mask') assert.ok(value.length <= FORWARD_LIMITS.subjectBytes, name);
  });
});
