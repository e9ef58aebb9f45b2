import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Decision } from '../pipeline/decision.js';
import { SourceConverter, type Raw } from '../../kube/objects.js';
import { PolicyError } from '../errors.js';
import { generationFingerprint, PolicyStore, type ObjectReport } from '../policy/store.js';
import { ObjectTally, ServiceMetrics } from './metrics.js';

function decision(over: Partial<Decision>): Decision {
  return {
    requestId: 'r', allowed: false, status: 400, code: 'QUERY_INVALID', reason: '', policy: 'c2g/open-data', rule: 'partner-read-only',
    headers: {}, removeHeaders: [], responseHeaders: {}, metadata: {}, trace: [],
    audit: { method: 'GET', host: 'h', pathTemplate: '/x', sourceIp: '' },
    ...over,
  };
}

async function values(m: ServiceMetrics, name: string): Promise<{ labels: Record<string, string | number>; value: number }[]> {
  const metric = m.registry.getSingleMetric(name);
  assert.ok(metric, name);
  return (await metric.get()).values.map((v) => ({ labels: v.labels as Record<string, string | number>, value: v.value }));
}

describe('service metrics', () => {
  test('request validation denials are counted by policy and code; other denials are not', async () => {
    const m = new ServiceMetrics(false);
    m.countDecision(decision({ audit: { method: 'GET', host: 'h', pathTemplate: '/x', sourceIp: '', validation: { check: 'query', pointer: '/limit' } } }));
    m.countDecision(decision({ code: 'BODY_INVALID', audit: { method: 'POST', host: 'h', pathTemplate: '/x', sourceIp: '', validation: { check: 'body', pointer: '' } } }));
    m.countDecision(decision({ code: 'FORBIDDEN' }));
    assert.deepEqual(await values(m, 'portcullis_request_invalid_total'), [
      { labels: { policy: 'c2g/open-data', code: 'QUERY_INVALID' }, value: 1 },
      { labels: { policy: 'c2g/open-data', code: 'BODY_INVALID' }, value: 1 },
    ]);
  });
});

describe('portcullis_revocation_sources_failing in cluster mode (countRevocationReports)', () => {
  const tenant = (ns: string, generation = 1): Raw => ({
    apiVersion: 'portcullis.io/v1alpha1', kind: 'Tenant', metadata: { name: 'agency', namespace: ns, uid: `u-${ns}`, generation },
    spec: { type: 'agency', identity: { mtls: { spiffeIds: [`spiffe://td/ns/${ns}/*`] } }, revocation: { configMapRef: { name: 'revoked', key: 'list.json' } } },
  }) as Raw;
  const list = (ns: string, text: string, rv: string): Raw => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'revoked', namespace: ns, uid: `c-${ns}`, resourceVersion: rv }, data: { 'list.json': text } });
  const gauge = async (m: ServiceMetrics): Promise<number> => (await values(m, 'portcullis_revocation_sources_failing'))[0]!.value;

  test('follows the changed reports only, and always equals the count over every report', async () => {
    const store = new PolicyStore({ fingerprint: generationFingerprint });
    const converter = new SourceConverter();
    const incremental = new ServiceMetrics(false);
    const full = new ServiceMetrics(false);
    const steps: [name: string, tenants: Raw[], configMaps: Raw[], failing: number][] = [
      ['both lists missing', [tenant('a'), tenant('b')], [], 2],
      ["a's list appears", [tenant('a'), tenant('b')], [list('a', '{"jti": []}', '1')], 1],
      ['nothing changed', [tenant('a'), tenant('b')], [list('a', '{"jti": []}', '1')], 1],
      ["a's list breaks (its last good list serves, reported)", [tenant('a'), tenant('b')], [list('a', '{"jti": [', '2')], 2],
      ['tenant b deleted', [tenant('a')], [list('a', '{"jti": [', '2')], 1],
      ["a's list mended", [tenant('a')], [list('a', '{"jti": ["x"]}', '3')], 0],
      ['b back, a edited', [tenant('a', 2), tenant('b')], [list('a', '{"jti": ["x"]}', '3')], 1],
    ];
    for (const [name, tenants, configMaps, failing] of steps) {
      const r = store.apply(converter.sourcesFrom([], tenants, [], configMaps));
      incremental.countRevocationReports(r);
      full.countRevocationProblems(r.problems);
      assert.equal(await gauge(full), failing, `${name}: every report`);
      assert.equal(await gauge(incremental), failing, `${name}: changed reports`);
    }
  });

  test('a tenant with two problems at /spec/revocation counts once, and is gone when both are', () => {
    const problem = (object: string): PolicyError => new PolicyError('POLICY_INVALID', 'missing', { object, path: '/spec/revocation' });
    const report = (errors: PolicyError[]): ObjectReport => ({ kind: 'Tenant', key: 't/a', serving: 'none', errors, warnings: [] });
    const tally = new ObjectTally((errors) => errors.flatMap((e) => (e.location.object ? [e.location.object] : [])));
    const reports = new Map([['Tenant t/a', report([problem('Tenant t/a'), problem('Tenant t/a')])], ['Tenant t/b', report([problem('Tenant t/b')])]]);
    tally.update({ reports, changedReports: new Set(reports.keys()) });
    assert.equal(tally.size, 2);
    reports.set('Tenant t/a', report([problem('Tenant t/a')]));
    tally.update({ reports, changedReports: new Set(['Tenant t/a']) });
    assert.equal(tally.size, 2);
    reports.delete('Tenant t/a');
    tally.update({ reports, changedReports: new Set(['Tenant t/a']) });
    assert.equal(tally.size, 1);
    tally.update({ reports, changedReports: new Set(['Tenant t/unknown']) });
    assert.equal(tally.size, 1, 'a removed report never seen is a no-op');
  });
});
