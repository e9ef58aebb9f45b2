/** The ext_proc service over real gRPC, replaying Envoy's message order. */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import { ExternalProcessorService } from '../../extauthz/extproc/service.js';
import type { ExtProcOptions } from '../../extauthz/extproc/settings.js';
import { DirectiveIssuer, DirectiveVerifier, MaskKey, payloadTail } from '../../extauthz/masking/token.js';
import type { MaskSpec } from '../../extauthz/masking/engine.js';
import { bodyOf, ExtProcClient, headers, immediateOf, setHeaderOf } from './extproc-client.js';

const key = MaskKey.generate();
const issuer = new DirectiveIssuer(key);
const spec: MaskSpec = { masks: [{ field: '$.ssn', action: 'remove' }, { field: '$.items[*].card', action: 'partial', keepLast: 4 }] };
const RECORD = { id: 1, ssn: '078-05-1120', items: [{ card: '4111111111111111' }, { card: '5500000000000004' }], note: 'Grüße 😀' };
const MASKED = { id: 1, items: [{ card: '************1111' }, { card: '************0004' }], note: 'Grüße 😀' };

let seq = 0;
function request(extra: Record<string, string> = {}, s: MaskSpec = spec, eos = true): { rid: string; msg: Record<string, unknown> } {
  const rid = `req-${++seq}`;
  const token = issuer.issue(payloadTail(s), rid, new Date());
  return { rid, msg: { requestHeaders: headers({ ':method': 'GET', ':path': '/v1/x', 'x-request-id': rid, 'x-portcullis-mask': token, ...extra }, eos) } };
}
const jsonHeaders = (len?: number, extra: Record<string, string> = {}): Record<string, unknown> => ({ responseHeaders: headers({ ':status': '200', 'content-type': 'application/json; charset=utf-8', ...(len !== undefined ? { 'content-length': String(len) } : {}), ...extra }) });
const body = (b: Buffer | string, endOfStream = true): Record<string, unknown> => ({ responseBody: { body: Buffer.from(b), endOfStream } });

async function serve(options: Partial<ExtProcOptions> = {}): Promise<{ client: ExtProcClient; stop: () => void }> {
  const server = new grpc.Server();
  new ExternalProcessorService({ verifier: new DirectiveVerifier(key), hashKey: randomBytes(32), ...options }).addToServer(server);
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  const client = new ExtProcClient(port);
  return { client, stop: () => (client.close(), server.forceShutdown()) };
}

describe('ext_proc stream (Envoy message order)', () => {
  let s: Awaited<ReturnType<typeof serve>>;
  before(async () => (s = await serve({ maxBodyBytes: 64 * 1024 })));
  after(() => s.stop());

  test('request headers, response headers, buffered body, trailers: masked body with its content-length', async () => {
    const text = JSON.stringify(RECORD);
    const r = await s.client.exchange([request().msg, jsonHeaders(Buffer.byteLength(text)), body(text), { responseTrailers: { trailers: { headers: [] } } }]);
    assert.deepEqual(r.map((x) => Object.keys(x).filter((k) => k !== 'modeOverride' && k !== 'dynamicMetadata')[0]), ['requestHeaders', 'responseHeaders', 'responseBody', 'responseTrailers']);
    const out = bodyOf(r[2])!;
    assert.deepEqual(JSON.parse(out), MASKED);
    assert.equal(setHeaderOf(r[2], 'responseBody', 'content-length'), String(Buffer.byteLength(out)));
    assert.ok(!out.includes('078-05-1120') && !out.includes('4111111111111111'));
  });

  test('a request with a body: the request body is passed on untouched', async () => {
    const r = await s.client.exchange([request({}, spec, false).msg, { requestBody: { body: Buffer.from('{"q":1}'), endOfStream: true } }, jsonHeaders(), body(JSON.stringify(RECORD))]);
    assert.ok(r[1]!.requestBody);
    assert.equal(bodyOf(r[1] ? { responseBody: r[1].requestBody } : undefined), undefined);
    assert.deepEqual(JSON.parse(bodyOf(r[3])!), MASKED);
  });

  test('headers without a body: a response that ends at its headers needs no masking', async () => {
    const r = await s.client.exchange([request().msg, { responseHeaders: headers({ ':status': '204' }, true) }]);
    assert.equal(r.length, 2);
    assert.ok(r[1]!.responseHeaders && !r[1]!.immediateResponse);
  });

  // Envoy's BUFFERED mode with upstream trailers: onTrailers sends the whole buffered body with
  // end_of_stream false; a trailers message follows only with response_trailer_mode SEND.
  test('buffered body before skipped trailers (end_of_stream false, no trailers message): masked', async () => {
    const text = JSON.stringify(RECORD);
    const r = await s.client.exchange([request().msg, jsonHeaders(Buffer.byteLength(text)), body(text, false)]);
    const out = bodyOf(r[2]);
    assert.ok(out !== undefined, `no body mutation: ${JSON.stringify(r[2])}`);
    assert.deepEqual(JSON.parse(out), MASKED);
    assert.equal(setHeaderOf(r[2], 'responseBody', 'content-length'), String(Buffer.byteLength(out)));
    assert.ok(!JSON.stringify(r).includes('078-05-1120'));
  });

  test('buffered body then trailers (end_of_stream false, trailer mode SEND): masked body, trailers pass', async () => {
    const text = JSON.stringify(RECORD);
    const r = await s.client.exchange([request().msg, jsonHeaders(Buffer.byteLength(text)), body(text, false), { responseTrailers: { trailers: { headers: [{ key: 'grpc-status', rawValue: Buffer.from('0') }] } } }]);
    assert.deepEqual(r.map((x) => Object.keys(x).filter((k) => k !== 'modeOverride' && k !== 'dynamicMetadata')[0]), ['requestHeaders', 'responseHeaders', 'responseBody', 'responseTrailers']);
    assert.deepEqual(JSON.parse(bodyOf(r[2])!), MASKED);
  });

  test('buffered: a second body message after the masked body fails closed', async () => {
    const text = JSON.stringify(RECORD);
    const r = await s.client.exchange([request().msg, jsonHeaders(), body(text, false), body('{"ssn":"078-05-1120"}')]);
    assert.deepEqual(JSON.parse(bodyOf(r[2])!), MASKED);
    const i = immediateOf(r[3]);
    assert.deepEqual([i?.status, i?.body.error.code], [502, 'MASKING_FAILED']);
  });

  test('buffered: an incomplete body (BUFFERED_PARTIAL, or STREAMED misconfigured) is not maskable', async () => {
    const r = await s.client.exchange([request().msg, jsonHeaders(), body('{"ssn":"078-05-1120","items":[', false)]);
    const i = immediateOf(r.at(-1));
    assert.deepEqual([i?.status, i?.body.error.code], [502, 'RESPONSE_NOT_MASKABLE']);
    assert.ok(!JSON.stringify(r).includes('078-05-1120'));
  });

  test('response headers with no request headers before them (request_header_mode SKIP) are blocked', async () => {
    const r = await s.client.exchange([jsonHeaders(), body(JSON.stringify(RECORD))]);
    const i = immediateOf(r[0]);
    assert.deepEqual([i?.status, i?.body.error.code], [500, 'MASK_DIRECTIVE_INVALID']);
  });

  test('the directive can come from ext_authz dynamic metadata alone', async () => {
    const { rid } = request();
    const token = issuer.issue(payloadTail(spec), rid, new Date());
    const md = { filterMetadata: { 'envoy.filters.http.ext_authz': { fields: { portcullis: { structValue: { fields: { maskDirective: { stringValue: token } } } } } } } };
    const r = await s.client.exchange([{ requestHeaders: headers({ 'x-request-id': rid }, true), metadataContext: md }, jsonHeaders(), body(JSON.stringify(RECORD))]);
    assert.deepEqual(JSON.parse(bodyOf(r[2])!), MASKED);
  });

  test('an empty directive set turns response body processing off (mode_override)', async () => {
    const r = await s.client.exchange([request({}, { masks: [] }).msg]);
    assert.deepEqual(r[0]!.modeOverride, { responseBodyMode: 'NONE' });
  });
});

describe('ext_proc stream, response_body_mode STREAMED', () => {
  let s: Awaited<ReturnType<typeof serve>>;
  before(async () => (s = await serve({ maxBodyBytes: 64 * 1024, responseBodyMode: 'streamed' })));
  after(() => s.stop());

  test('a body in several chunks: earlier chunks are cleared, the last carries the masked whole', async () => {
    const text = Buffer.from(JSON.stringify(RECORD));
    const cuts = [0, 7, 30, 31, text.length];
    const chunks = cuts.slice(1).map((end, i) => body(text.subarray(cuts[i], end), end === text.length));
    const r = await s.client.exchange([request().msg, jsonHeaders(), ...chunks]);
    const bodies = r.slice(2);
    assert.equal(bodies.length, 4);
    for (const b of bodies.slice(0, -1)) assert.equal((b.responseBody as { response: { bodyMutation: { clearBody: boolean } } }).response.bodyMutation.clearBody, true);
    assert.deepEqual(JSON.parse(bodyOf(bodies.at(-1))!), MASKED);
  });

  test('trailers while the body is held: the body never ended, so it fails closed', async () => {
    const r = await s.client.exchange([request().msg, jsonHeaders(), body('{"ssn":"078-05-1120"', false), { responseTrailers: {} }]);
    const i = immediateOf(r.at(-1));
    assert.deepEqual([i?.status, i?.body.error.code], [502, 'MASKING_FAILED']);
    assert.ok(!JSON.stringify(r).includes('078-05-1120'));
  });

  test('chunks that grow past the limit', async () => {
    const small = await serve({ maxBodyBytes: 1024, responseBodyMode: 'streamed' });
    try {
      const r = await small.client.exchange([request().msg, jsonHeaders(), body('['.padEnd(800, ' '), false), body(' '.repeat(800), false)]);
      const i = immediateOf(r.at(-1));
      assert.equal(r.length, 4);
      assert.deepEqual([i?.status, i?.body.error.code], [502, 'RESPONSE_NOT_MASKABLE']);
    } finally {
      small.stop();
    }
  });
});

describe('ext_proc fails closed', () => {
  let s: Awaited<ReturnType<typeof serve>>;
  before(async () => (s = await serve({ maxBodyBytes: 1024 })));
  after(() => s.stop());

  const other = new DirectiveIssuer(MaskKey.generate());
  const cases: [string, () => Record<string, unknown>[], number, string][] = [
    ['forged directive (another key)', () => [{ requestHeaders: headers({ 'x-request-id': 'f1', 'x-portcullis-mask': other.issue(payloadTail(spec), 'f1', new Date()) }) }], 500, 'MASK_DIRECTIVE_INVALID'],
    ['stale directive', () => [{ requestHeaders: headers({ 'x-request-id': 's1', 'x-portcullis-mask': issuer.issue(payloadTail(spec), 's1', new Date(Date.now() - 600_000)) }) }], 500, 'MASK_DIRECTIVE_INVALID'],
    ['widened directive (masks dropped, signature kept)', () => {
      const [h, p, sig] = issuer.issue(payloadTail(spec), 'w1', new Date()).split('.');
      const claims = { ...JSON.parse(Buffer.from(p!, 'base64url').toString()), masks: [] };
      return [{ requestHeaders: headers({ 'x-request-id': 'w1', 'x-portcullis-mask': `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${sig}` }) }];
    }, 500, 'MASK_DIRECTIVE_INVALID'],
    ['directive replayed on another request', () => [{ requestHeaders: headers({ 'x-request-id': 'other', 'x-portcullis-mask': issuer.issue(payloadTail(spec), 'r1', new Date()) }) }], 500, 'MASK_DIRECTIVE_INVALID'],
    ['no directive at all', () => [{ requestHeaders: headers({ 'x-request-id': 'n1' }) }], 500, 'MASK_DIRECTIVE_INVALID'],
    ['header and metadata disagree', () => {
      const md = { filterMetadata: { ns: { fields: { portcullis: { structValue: { fields: { maskDirective: { stringValue: issuer.issue(payloadTail({ masks: [] }), 'd1', new Date()) } } } } } } } };
      return [{ requestHeaders: headers({ 'x-request-id': 'd1', 'x-portcullis-mask': issuer.issue(payloadTail(spec), 'd1', new Date()) }), metadataContext: md }];
    }, 500, 'MASK_DIRECTIVE_INVALID'],
    ['non-JSON response under block', () => [request().msg, { responseHeaders: headers({ 'content-type': 'text/html' }) }], 502, 'RESPONSE_NOT_MASKABLE'],
    ['compressed JSON under block', () => [request().msg, jsonHeaders(10, { 'content-encoding': 'gzip' })], 502, 'RESPONSE_NOT_MASKABLE'],
    ['unparsable JSON under block', () => [request().msg, jsonHeaders(), body('{"ssn": "078-05-1120",')], 502, 'RESPONSE_NOT_MASKABLE'],
    ['declared oversized body', () => [request().msg, jsonHeaders(4096)], 502, 'RESPONSE_NOT_MASKABLE'],
    ['buffered body past the limit', () => [request().msg, jsonHeaders(), body('['.padEnd(1100, ' '), false)], 502, 'RESPONSE_NOT_MASKABLE'],
    ['hash without a key', () => [request({}, { masks: [{ field: '$.ssn', action: 'hash' }] }).msg, jsonHeaders(), body('{"ssn":"x"}')], 502, 'MASKING_FAILED'],
  ];
  for (const [name, make, status, code] of cases) {
    test(name, async () => {
      const c = name === 'hash without a key' ? await serveNoHash() : s;
      const r = await c.client.exchange(make());
      const i = immediateOf(r.at(-1));
      if (c !== s) c.stop();
      assert.deepEqual([i?.status, i?.body.error.code], [status, code]);
      assert.ok(!JSON.stringify(r).includes('078-05-1120'));
    });
  }
});

async function serveNoHash(): Promise<Awaited<ReturnType<typeof serve>>> {
  const server = new grpc.Server();
  new ExternalProcessorService({ verifier: new DirectiveVerifier(key) }).addToServer(server);
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  const client = new ExtProcClient(port);
  return { client, stop: () => (client.close(), server.forceShutdown()) };
}

describe('ext_proc body policy pass', () => {
  test('non-JSON passes with body processing turned off; nothing is rewritten', async () => {
    const s = await serve({ nonJson: 'pass', missingDirective: 'pass' });
    try {
      const r = await s.client.exchange([request().msg, { responseHeaders: headers({ 'content-type': 'text/plain' }) }]);
      assert.deepEqual(r[1]!.modeOverride, { responseBodyMode: 'NONE' });
      const none = await s.client.exchange([{ requestHeaders: headers({ 'x-request-id': 'p' }) }]);
      assert.deepEqual(none[0]!.modeOverride, { responseBodyMode: 'NONE' });
    } finally {
      s.stop();
    }
  });
});
