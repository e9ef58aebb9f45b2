import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Decision } from '../pipeline/decision.js';
import { ServiceMetrics } from './metrics.js';

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
