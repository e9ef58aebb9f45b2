import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { authorizationService, externalProcessorService, fromProtoJson } from './envoy.js';

describe('Envoy protos', () => {
  test('the Authorization service has Check', () => {
    assert.equal(authorizationService().Check?.path, '/envoy.service.auth.v3.Authorization/Check');
  });

  test('the ExternalProcessor service has Process', () => {
    assert.equal(externalProcessorService().Process?.path, '/envoy.service.ext_proc.v3.ExternalProcessor/Process');
  });

  test('canonical proto3 JSON becomes the server-side object shape', () => {
    const msg = fromProtoJson('envoy.service.auth.v3.CheckRequest', {
      attributes: {
        source: { principal: 'spiffe://td/x', address: { socketAddress: { address: '10.0.0.1', portValue: 443 } } },
        request: { time: '2026-03-01T12:00:00.250Z', http: { method: 'GET', host: 'h', path: '/p', headers: { a: 'b' } } },
        contextExtensions: { 'portcullis.io/policy': 'ns/p' },
      },
    }) as { attributes: { request: { time: { seconds: string; nanos: number }; http: { headers: Record<string, string> } }; contextExtensions: Record<string, string> } };
    assert.deepEqual(msg.attributes.request.time, { seconds: String(Date.parse('2026-03-01T12:00:00Z') / 1000), nanos: 250_000_000 });
    assert.deepEqual(msg.attributes.request.http.headers, { a: 'b' });
    assert.deepEqual(msg.attributes.contextExtensions, { 'portcullis.io/policy': 'ns/p' });
  });

  test('a wrongly typed field is an error, not a silent default', () => {
    assert.throws(() => fromProtoJson('envoy.service.auth.v3.CheckRequest', { attributes: { request: { http: { headers: 'nope' } } } }));
  });
});
