import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compileValid, compileYaml } from '../../test/helpers/policies.js';
import type { CheckRequestInput } from './check-request.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import type { Decision } from './decision.js';
import { DecisionPipeline } from './pipeline.js';
import { ServiceMetrics } from '../server/metrics.js';

const HOST = 'legacy.test.example';
const POLICY = `apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: legacy, namespace: t }
spec:
  hosts: [${HOST}]
  deprecation: { since: "2026-01-01T00:00:00Z", link: "https://developer.test.example/legacy" }
  rules:
    - name: v1-reports
      methods: [GET]
      paths: ["/v1/reports"]
      principals: { anonymous: true }
      deprecation:
        since: "2026-06-01T00:00:00Z"
        sunset: "2026-12-01T00:00:00Z"
        link: "https://developer.test.example/deprecations/v1-reports"
    - name: v1-exports
      methods: [GET]
      paths: ["/v1/exports"]
      principals: { anonymous: true }
      deprecation: { since: "2026-06-01T00:00:00Z", sunset: "2026-12-01T00:00:00Z", afterSunset: serve }
    - name: v1-invalid-after-sunset
      methods: [GET]
      paths: ["/v1/items"]
      principals: { anonymous: true }
      request: { query: { parameters: [{ name: limit, type: integer, maximum: 10 }] } }
      deprecation: { since: "2026-06-01T00:00:00Z", sunset: "2026-12-01T00:00:00Z" }
    - name: policy-wide
      methods: [GET]
      paths: ["/v2/reports"]
      principals: { anonymous: true }
`;

let snapshot: PolicySnapshot;
before(() => {
  snapshot = compileValid({ 'legacy.yaml': POLICY }).snapshot;
});

function get(path: string): CheckRequestInput {
  return { attributes: { request: { http: { method: 'GET', host: HOST, path, headers: {} } } } };
}

function at(iso: string, path: string, explain = false): Promise<Decision> {
  const now = new Date(iso);
  return new DecisionPipeline({ snapshot: () => snapshot, clock: () => now }).check(get(path), { explain });
}

const V1_HEADERS = { deprecation: '@1780272000', sunset: 'Tue, 01 Dec 2026 00:00:00 GMT', link: '<https://developer.test.example/deprecations/v1-reports>; rel="deprecation"' };

describe('pipeline: API lifecycle around since and sunset (injected clock)', () => {
  const cases: [string, string, string, { status: number; code: string | null; lifecycle: string | undefined }][] = [
    ['before since: served, announced', '2026-05-31T23:59:59.999Z', '/v1/reports', { status: 200, code: null, lifecycle: 'announced' }],
    ['at since: served, deprecated', '2026-06-01T00:00:00.000Z', '/v1/reports', { status: 200, code: null, lifecycle: 'deprecated' }],
    ['1 ms before the sunset: served', '2026-11-30T23:59:59.999Z', '/v1/reports', { status: 200, code: null, lifecycle: 'deprecated' }],
    ['at the sunset: 410', '2026-12-01T00:00:00.000Z', '/v1/reports', { status: 410, code: 'API_SUNSET', lifecycle: 'sunset' }],
    ['after the sunset, afterSunset serve: served', '2027-01-01T00:00:00Z', '/v1/exports', { status: 200, code: null, lifecycle: 'sunset' }],
    ['after the sunset, an invalid request: 410 first', '2027-01-01T00:00:00Z', '/v1/items?limit=500', { status: 410, code: 'API_SUNSET', lifecycle: 'sunset' }],
    ['before the sunset, an invalid request: 400 with the headers', '2026-07-01T00:00:00Z', '/v1/items?limit=500', { status: 400, code: 'QUERY_INVALID', lifecycle: 'deprecated' }],
    ['a rule without its own: the policy\'s deprecation', '2026-07-01T00:00:00Z', '/v2/reports', { status: 200, code: null, lifecycle: 'deprecated' }],
  ];
  for (const [name, now, path, want] of cases) {
    test(name, async () => {
      const d = await at(now, path);
      assert.deepEqual({ status: d.status, code: d.code, lifecycle: d.audit.lifecycle }, want, d.reason);
    });
  }

  test('allowed responses carry Deprecation, Sunset and Link as response headers', async () => {
    const d = await at('2026-07-01T00:00:00Z', '/v1/reports');
    assert.deepEqual({ deprecation: d.responseHeaders.deprecation, sunset: d.responseHeaders.sunset, link: d.responseHeaders.link }, V1_HEADERS);
    assert.equal(d.headers.deprecation, undefined, 'not sent to the upstream');
  });

  test('the 410 carries the headers too, and the catalogue body', async () => {
    const d = await at('2026-12-02T00:00:00Z', '/v1/reports');
    assert.equal(d.headers.sunset, V1_HEADERS.sunset);
    assert.equal(d.headers.link, V1_HEADERS.link);
    assert.equal((JSON.parse(d.body ?? '{}') as { error: { code: string } }).error.code, 'API_SUNSET');
  });

  test('the policy-wide deprecation has no sunset header', async () => {
    const d = await at('2026-07-01T00:00:00Z', '/v2/reports');
    assert.deepEqual(d.responseHeaders, { deprecation: '@1767225600', link: '<https://developer.test.example/legacy>; rel="deprecation"' });
  });

  test('a route without deprecation carries none of it', async () => {
    const snap = compileValid({ 'p.yaml': POLICY.replace(/  deprecation: \{ since: "2026-01-01T00:00:00Z"[^\n]*\n/, '') }).snapshot;
    const d = await new DecisionPipeline({ snapshot: () => snap, clock: () => new Date('2026-07-01T00:00:00Z') }).check(get('/v2/reports'));
    assert.equal(d.audit.lifecycle, undefined);
    assert.deepEqual(d.responseHeaders, {});
  });

  test('explain names the lifecycle state and the sunset', async () => {
    const served = await at('2026-07-01T00:00:00Z', '/v1/reports', true);
    assert.match(served.trace.at(-1)?.reason ?? '', /lifecycle deprecated: deprecation 2026-06-01T00:00:00.000Z, sunset 2026-12-01T00:00:00.000Z \(afterSunset deny\)/);
    const gone = await at('2026-12-02T00:00:00Z', '/v1/reports', true);
    assert.match(gone.trace.at(-1)?.reason ?? '', /past its sunset/);
  });

  test('calls to deprecated routes are counted per tenant, policy, rule and state (announced ones are not)', async () => {
    const m = new ServiceMetrics(false);
    for (const [now, path] of [['2026-05-01T00:00:00Z', '/v1/reports'], ['2026-07-01T00:00:00Z', '/v1/reports'], ['2026-07-02T00:00:00Z', '/v1/reports'], ['2026-12-02T00:00:00Z', '/v1/reports']] as const) m.countDecision(await at(now, path));
    const metric = m.registry.getSingleMetric('portcullis_deprecated_calls_total');
    const values = (await metric!.get()).values.map((v) => ({ labels: v.labels, value: v.value }));
    assert.deepEqual(values, [
      { labels: { tenant: '', policy: 't/legacy', rule: 'v1-reports', state: 'deprecated' }, value: 2 },
      { labels: { tenant: '', policy: 't/legacy', rule: 'v1-reports', state: 'sunset' }, value: 1 },
    ]);
  });

  test('validate refuses invalid dates and a sunset before since, with the field', () => {
    const bad = POLICY.replace('sunset: "2026-12-01T00:00:00Z"\n        link', 'sunset: "2026-05-01T00:00:00Z"\n        link').replace('since: "2026-01-01T00:00:00Z"', 'since: "2026-13-01T00:00:00Z"');
    const got = compileYaml({ 'legacy.yaml': bad }).problems.map((p) => `${p.location.path} ${p.message}`);
    assert.ok(got.includes('/spec/rules/0/deprecation/sunset deprecation: sunset is before since'), got.join('\n'));
    assert.ok(got.includes('/spec/deprecation/since deprecation: since is not an RFC 3339 date-time (e.g. 2026-06-01T00:00:00Z)'), got.join('\n'));
  });
});
