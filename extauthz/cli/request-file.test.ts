import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertProtoJsonShape, RequestShapeError } from './request-file.js';

const CHECK = 'envoy.service.auth.v3.CheckRequest';
const http = (h: Record<string, unknown>): unknown => ({ attributes: { request: { http: h } } });

describe('request files: only CheckRequest fields are accepted, the wrong one is named', () => {
  const bad: [name: string, json: unknown, path: string, message: RegExp][] = [
    ['misspelt headers', http({ method: 'GET', heders: { a: 'b' } }), 'attributes.request.http.heders', /unknown field "heders" in HttpRequest \(did you mean "headers"\?\)/],
    ['unknown top-level member', { attributes: {}, extra: 1 }, 'extra', /unknown field "extra" in CheckRequest/],
    ['misspelt attributes', { atributes: {} }, 'atributes', /did you mean "attributes"/],
    ['headers not a map', http({ headers: 'x' }), 'attributes.request.http.headers', /expected an object \(map\), got string/],
    ['header value not a string', http({ headers: { a: 5 } }), 'attributes.request.http.headers["a"]', /expected string, got number/],
    ['method not a string', http({ method: 5 }), 'attributes.request.http.method', /expected string, got number/],
    ['message given as an array', { attributes: [] }, 'attributes', /expected an object \(AttributeContext\), got array/],
    ['unknown member in a nested peer', { attributes: { source: { principle: 'spiffe://x' } } }, 'attributes.source.principle', /did you mean "principal"/],
  ];
  for (const [name, json, path, message] of bad) {
    test(name, () => {
      assert.throws(() => assertProtoJsonShape(CHECK, json), (err: unknown) => {
        assert.ok(err instanceof RequestShapeError);
        assert.equal(err.path, path);
        assert.match(err.message, message);
        return true;
      });
    });
  }

  const good: [string, unknown][] = [
    ['a full request', http({ method: 'GET', host: 'a', path: '/x', headers: { 'x-a': 'b' }, id: '1', protocol: 'HTTP/1.1' })],
    ['snake_case names as proto3 JSON allows', { attributes: { context_extensions: { a: 'b' }, request: { http: { method: 'GET' } } } }],
    ['a timestamp as an RFC 3339 string', { attributes: { request: { time: '2026-01-01T00:00:00Z' } } }],
    ['source with principal and certificate', { attributes: { source: { principal: 'spiffe://td/x', certificate: 'abc', address: { socketAddress: { address: '10.0.0.1', portValue: 1234 } } } } }],
    ['metadata context as a Struct', { attributes: { metadataContext: { filterMetadata: { a: { x: 1, y: [true] } } } } }],
  ];
  for (const [name, json] of good) test(`accepts ${name}`, () => assertProtoJsonShape(CHECK, json));
});
