/** Tracing configuration: the flag and variable, the traces URL, and nothing traced when off. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveServeConfig } from '../config.js';
import { PortcullisError } from '../errors.js';
import { tracesUrl } from './index.js';

describe('--otlp-endpoint / OTEL_EXPORTER_OTLP_ENDPOINT', () => {
  const base = { policyDir: '/tmp/p' };
  test('off unless set', () => {
    assert.equal(resolveServeConfig(base, {}).otlpEndpoint, undefined);
    assert.equal(resolveServeConfig({ ...base, otlpEndpoint: '' }, {}).otlpEndpoint, undefined);
  });
  test('the flag wins over the variable', () => {
    assert.equal(resolveServeConfig(base, { otlpEndpoint: 'http://env:4318' }).otlpEndpoint, 'http://env:4318/');
    assert.equal(resolveServeConfig({ ...base, otlpEndpoint: 'https://flag:4318' }, { otlpEndpoint: 'http://env:4318' }).otlpEndpoint, 'https://flag:4318/');
  });
  for (const bad of ['collector:4318', 'grpc://collector:4317', 'http://user:secret@collector:4318', 'not a url']) {
    test(`refused: ${bad}`, () => {
      assert.throws(() => resolveServeConfig({ ...base, otlpEndpoint: bad }, {}), (e: unknown) => e instanceof PortcullisError && e.code === 'USAGE' && !e.message.includes('secret'));
    });
  }
});

describe('tracesUrl', () => {
  test('a base URL gets /v1/traces; a traces URL is kept', () => {
    assert.equal(tracesUrl('http://c:4318'), 'http://c:4318/v1/traces');
    assert.equal(tracesUrl('http://c:4318/'), 'http://c:4318/v1/traces');
    assert.equal(tracesUrl('https://c/otlp'), 'https://c/otlp/v1/traces');
    assert.equal(tracesUrl('http://c:4318/v1/traces'), 'http://c:4318/v1/traces');
  });
});

describe('tracing off (the default)', () => {
  test('a Check records no timings and its audit record has no traceId field', async () => {
    const { DecisionPipeline } = await import('../pipeline/pipeline.js');
    const { decisionFields } = await import('../audit/record.js');
    const { Pseudonymizer } = await import('../audit/pseudonym.js');
    const d = await new DecisionPipeline({ snapshot: () => undefined }).check({ attributes: { request: { http: { method: 'GET', host: 'h.example', path: '/', headers: { traceparent: `00-${'a'.repeat(32)}-${'b'.repeat(16)}-01` } } } } });
    assert.equal(d.code, 'NO_POLICY');
    assert.equal(d.audit.traceId, undefined);
    assert.ok(!('traceId' in decisionFields(d, undefined, Pseudonymizer.ephemeral(), 'grpc')));
  });
});
