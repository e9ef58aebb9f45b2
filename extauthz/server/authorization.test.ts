import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { Decision } from '../pipeline/decision.js';
import { EventEmitter } from 'node:events';
import { checkRequest } from '../../test/helpers/requests.js';
import { DecisionPipeline } from '../pipeline/pipeline.js';
import { AuthorizationService, METADATA_NAMESPACE, toCheckResponse } from './authorization.js';
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

describe('toCheckResponse', () => {
  test('allow: OK status, headers overwrite, removals, response headers, metadata under the namespace', () => {
    const r = toCheckResponse(base) as { status: { code: number }; okResponse: { headers: { header: { key: string }; appendAction: string }[]; headersToRemove: string[]; responseHeadersToAdd: unknown[] }; dynamicMetadata: ProtoStruct };
    assert.equal(r.status.code, grpc.status.OK);
    assert.deepEqual(r.okResponse.headers, [{ header: { key: 'x-portcullis-tenant', value: 't' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' }]);
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
      const r = toCheckResponse({ ...base, allowed: false, status: 418, code, body: '{"error":{}}' }) as { status: { code: number; message: string }; deniedResponse: { status: { code: number }; body: string }; okResponse?: unknown };
      assert.equal(r.status.code, grpcCode);
      assert.equal(r.status.message, code);
      assert.equal(r.deniedResponse.status.code, 418);
      assert.equal(r.deniedResponse.body, '{"error":{}}');
      assert.equal(r.okResponse, undefined);
    });
  }
});

describe('AuthorizationService: always a CheckResponse', () => {
  interface FakeCall extends EventEmitter {
    request: unknown;
    cancelled: boolean;
    getDeadline(): Date | number;
  }
  function answer(deadline: Date | number, pipeline: DecisionPipeline): Promise<{ err: unknown; res: { status: { code: number }; deniedResponse?: { status: { code: number } } } }> {
    const call = Object.assign(new EventEmitter(), { request: checkRequest({ host: 'nowhere.example' }), cancelled: false, getDeadline: () => deadline }) as FakeCall;
    const service = new AuthorizationService(pipeline) as unknown as { check(call: FakeCall, cb: (err: unknown, res: unknown) => void): void };
    return new Promise((resolve) => service.check(call, (err, res) => resolve({ err, res: res as never })));
  }

  test('a call whose deadline has passed gets the audited DEADLINE_EXCEEDED deny, not a gRPC error', async () => {
    const audited: Decision[] = [];
    const pipeline = new DecisionPipeline({ snapshot: () => undefined, audit: { record: (d) => (audited.push(d), Promise.resolve()) } });
    const { err, res } = await answer(new Date(Date.now() - 1), pipeline);
    assert.equal(err, null);
    assert.equal(res.status.code, grpc.status.DEADLINE_EXCEEDED);
    assert.equal(res.deniedResponse?.status.code, 503);
    assert.equal(audited[0]?.code, 'DEADLINE_EXCEEDED');
  });

  test('a call with time left is decided normally', async () => {
    const pipeline = new DecisionPipeline({ snapshot: () => undefined });
    const { err, res } = await answer(Infinity, pipeline);
    assert.equal(err, null);
    assert.equal(res.status.code, grpc.status.PERMISSION_DENIED);
  });
});
