import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { Decision } from '../pipeline/decision.js';
import { protoRoot } from '../../proto/envoy.js';
import { checkResponseBytes, METADATA_NAMESPACE } from './authorization.js';
import { fromStruct, type ProtoStruct } from './struct.js';

const base: Decision = {
  requestId: 'r-1',
  allowed: true,
  status: 200,
  code: null,
  reason: 'ok',
  policy: 'ns/p',
  rule: 'r',
  headers: { 'x-portcullis-tenant': 't' },
  removeHeaders: ['x-api-key'],
  responseHeaders: { ratelimit: 'x' },
  metadata: { rule: 'r' },
  trace: [],
  audit: { method: 'GET', host: 'h', pathTemplate: '/x', sourceIp: '' },
};

/** The response bytes as a client built on Envoy's protos sees them. */
function response(d: Decision): Record<string, unknown> {
  const t = protoRoot().lookupType('envoy.service.auth.v3.CheckResponse');
  return t.toObject(t.decode(checkResponseBytes(d)), { enums: Number, longs: String, defaults: true, oneofs: true });
}

describe('CheckResponse of a Decision', () => {
  test('allow: OK status, headers overwrite, removals, response headers, metadata under the namespace', () => {
    const r = response(base) as { status: { code: number }; okResponse: { headers: { header: { key: string; value: string }; appendAction: number }[]; headersToRemove: string[]; responseHeadersToAdd: unknown[] }; dynamicMetadata: ProtoStruct };
    assert.equal(r.status.code, grpc.status.OK);
    assert.deepEqual(r.okResponse.headers.map((h) => [h.header.key, h.header.value, h.appendAction]), [['x-portcullis-tenant', 't', 2]]);
    assert.deepEqual(r.okResponse.headersToRemove, ['x-api-key']);
    assert.equal(r.okResponse.responseHeadersToAdd.length, 1);
    assert.deepEqual(fromStruct(r.dynamicMetadata), { [METADATA_NAMESPACE]: { rule: 'r' } });
  });

  const denies: [Decision['code'], number][] = [
    ['UNAUTHENTICATED', grpc.status.UNAUTHENTICATED],
    ['FORBIDDEN', grpc.status.PERMISSION_DENIED],
    ['QUOTA_EXCEEDED', grpc.status.RESOURCE_EXHAUSTED],
    ['BAD_REQUEST', grpc.status.INVALID_ARGUMENT],
    ['INTERNAL', grpc.status.INTERNAL],
  ];
  for (const [code, grpcCode] of denies) {
    test(`deny ${code}: gRPC ${grpcCode}, HTTP status and body in deniedResponse`, () => {
      const r = response({ ...base, allowed: false, status: 418, code, body: '{"error":{}}' }) as { status: { code: number; message: string }; deniedResponse: { status: { code: number }; body: string }; httpResponse: string };
      assert.equal(r.status.code, grpcCode);
      assert.equal(r.status.message, code);
      assert.equal(r.deniedResponse.status.code, 418);
      assert.equal(r.deniedResponse.body, '{"error":{}}');
      assert.equal(r.httpResponse, 'deniedResponse');
    });
  }
});
