import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { protoRoot } from '../../proto/envoy.js';
import { decodeCheckRequest, encodeCheckResponse, type CheckResponseFields } from './codec.js';

const CheckRequest = (): ReturnType<ReturnType<typeof protoRoot>['lookupType']> => protoRoot().lookupType('envoy.service.auth.v3.CheckRequest');
const CheckResponse = (): ReturnType<ReturnType<typeof protoRoot>['lookupType']> => protoRoot().lookupType('envoy.service.auth.v3.CheckResponse');

/** Wire bytes of a CheckRequest given as a protobufjs object (camelCase). */
function wire(obj: Record<string, unknown>): Buffer {
  const t = CheckRequest();
  return Buffer.from(t.encode(t.fromObject(obj)).finish());
}

function decodeResponse(fields: CheckResponseFields): Record<string, unknown> {
  const t = CheckResponse();
  return t.toObject(t.decode(encodeCheckResponse(fields)), { enums: String, longs: String, defaults: false, oneofs: true });
}

describe('decodeCheckRequest', () => {
  const cases: [string, Record<string, unknown>, unknown][] = [
    ['empty message', {}, {}],
    [
      'a sidecar request: every read field, and unread ones skipped',
      {
        attributes: {
          source: { address: { socketAddress: { address: '10.1.2.3', portValue: 51234 } }, principal: 'spiffe://td/ns/a/sa/b', certificate: 'PEM', service: 'svc', labels: { app: 'x' } },
          destination: { address: { socketAddress: { address: '10.9.9.9', portValue: 8080 } }, principal: 'spiffe://td/ns/b/sa/c' },
          request: {
            time: { seconds: 1770000000, nanos: 5 },
            http: { id: '42', method: 'GET', headers: { ':authority': 'api.example', 'x-request-id': 'abc', traceparent: '00-1-2-01' }, path: '/v1/x?y=1', host: 'api.example', scheme: 'https', protocol: 'HTTP/2', size: 12, body: 'b', rawBody: Buffer.from('rb') },
          },
          contextExtensions: { 'portcullis.io/policy': 'ns/p', other: 'v' },
          metadataContext: { filterMetadata: { f: { fields: { a: { stringValue: 'b' } } } } },
          tlsSession: { sni: 'api.example' },
        },
      },
      {
        attributes: {
          source: { address: { socketAddress: { address: '10.1.2.3', portValue: 51234 } }, principal: 'spiffe://td/ns/a/sa/b', certificate: 'PEM' },
          request: { http: { id: '42', method: 'GET', headers: { ':authority': 'api.example', 'x-request-id': 'abc', traceparent: '00-1-2-01' }, path: '/v1/x?y=1', host: 'api.example', body: Buffer.from('b'), rawBody: Buffer.from('rb') } },
          contextExtensions: { 'portcullis.io/policy': 'ns/p', other: 'v' },
        },
      },
    ],
    [
      'header_map (encode_raw_headers) with value and raw_value',
      { attributes: { request: { http: { method: 'POST', headerMap: { headers: [{ key: 'a', value: '1' }, { key: 'b', rawValue: Buffer.from('two') }] } } } } },
      { attributes: { request: { http: { method: 'POST', headerMap: { headers: [{ key: 'a', value: '1' }, { key: 'b', rawValue: Buffer.from('two') }] } } } } },
    ],
    [
      'body (field 11) kept as bytes (a view of the message), as raw_body is',
      { attributes: { request: { http: { method: 'POST', body: '{"a":1}' } } } },
      { attributes: { request: { http: { method: 'POST', body: Buffer.from('{"a":1}') } } } },
    ],
    ['a map entry without a value is an empty string', { attributes: { request: { http: { headers: { a: '' } } } } }, { attributes: { request: { http: { headers: { a: '' } } } } }],
  ];
  for (const [name, input, want] of cases) {
    test(name, () => assert.deepEqual(decodeCheckRequest(wire(input)), want));
  }

  const malformed: [string, Buffer][] = [
    ['a truncated length', Buffer.from([0x0a, 0x05, 0x22])],
    ['an invalid wire type', Buffer.from([0x0f, 0x01])],
    ['a varint that never ends', Buffer.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff])],
  ];
  for (const [name, bytes] of malformed) {
    test(`malformed (${name}) decodes to an empty request, which the pipeline denies`, () => assert.deepEqual(decodeCheckRequest(bytes), {}));
  }

  test('headers beyond the decode bound are not decoded (the parse phase denies the request)', () => {
    const headers: Record<string, string> = {};
    for (let i = 0; i < 1000; i++) headers[`h${i}`] = 'v';
    const got = decodeCheckRequest(wire({ attributes: { request: { http: { method: 'GET', headers } } } }));
    const n = Object.keys(got.attributes?.request?.http?.headers ?? {}).length;
    assert.ok(n > 200 && n < 1000, `decoded ${n} headers`);
  });
});

describe('encodeCheckResponse decodes with Envoy\'s CheckResponse type', () => {
  test('allow: OK, headers overwrite, removals, response headers, metadata struct', () => {
    const r = decodeResponse({ grpcCode: 0, message: '', headers: { 'x-a': '1' }, removeHeaders: ['x-api-key'], responseHeaders: { ratelimit: 'x' }, metadata: { portcullis: { rule: 'r', n: 2, ok: true, none: null, list: ['a'], when: new Date(0) } } });
    assert.deepEqual(r, {
      status: { code: 0, message: '' },
      okResponse: {
        headers: [{ header: { key: 'x-a', value: '1' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
        headersToRemove: ['x-api-key'],
        responseHeadersToAdd: [{ header: { key: 'ratelimit', value: 'x' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' }],
      },
      dynamicMetadata: {
        fields: {
          portcullis: {
            structValue: {
              fields: {
                rule: { stringValue: 'r', kind: 'stringValue' }, n: { numberValue: 2, kind: 'numberValue' }, ok: { boolValue: true, kind: 'boolValue' },
                none: { nullValue: 'NULL_VALUE', kind: 'nullValue' }, list: { listValue: { values: [{ stringValue: 'a', kind: 'stringValue' }] }, kind: 'listValue' },
                when: { stringValue: '1970-01-01T00:00:00.000Z', kind: 'stringValue' },
              },
            },
            kind: 'structValue',
          },
        },
      },
      httpResponse: 'okResponse',
    });
  });

  test('deny: gRPC code and message, HTTP status, headers and body in denied_response', () => {
    const r = decodeResponse({ grpcCode: 7, message: 'FORBIDDEN', headers: { 'content-type': 'application/json' }, httpStatus: 403, body: '{}', metadata: {} }) as { status: unknown; deniedResponse: unknown; okResponse?: unknown };
    assert.deepEqual(r.status, { code: 7, message: 'FORBIDDEN' });
    assert.deepEqual(r.deniedResponse, { status: { code: 'Forbidden' }, headers: [{ header: { key: 'content-type', value: 'application/json' }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' }], body: '{}' });
    assert.equal(r.okResponse, undefined);
  });
});
