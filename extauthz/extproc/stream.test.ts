/** ProcessingStream without gRPC: Envoy's BUFFERED body with trailers, and the audit record of each outcome. */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { MaskingFields } from '../audit/record.js';
import { DirectiveIssuer, DirectiveVerifier, MaskKey, payloadTail } from '../masking/token.js';
import type { ProcessingRequest, ProcessingResponse } from './messages.js';
import { resolveSettings, type ExtProcOptions } from './settings.js';
import { ProcessingStream } from './stream.js';

const key = MaskKey.generate();
const tail = payloadTail({ masks: [{ field: '$.ssn', action: 'remove' }] });
const hv = (m: Record<string, string>): ProcessingRequest['requestHeaders'] => ({ headers: { headers: Object.entries(m).map(([k, v]) => ({ key: k, value: v })) } });

function stream(options: Partial<ExtProcOptions> = {}): { s: ProcessingStream; records: MaskingFields[] } {
  const records: MaskingFields[] = [];
  const audit = { recordMasking: (f: MaskingFields) => (records.push(f), Promise.resolve()) };
  return { s: new ProcessingStream(resolveSettings({ verifier: new DirectiveVerifier(key), audit, ...options })), records };
}

function run(s: ProcessingStream, rid: string, after: ProcessingRequest[], directives = tail): ProcessingResponse[] {
  const token = new DirectiveIssuer(key).issue(directives, rid, new Date());
  const first: ProcessingRequest = { requestHeaders: { ...hv({ 'x-request-id': rid, 'x-portcullis-mask': token }), endOfStream: true } };
  const second: ProcessingRequest = { responseHeaders: hv({ 'content-type': 'application/json' }) };
  return [first, second, ...after].map((m) => s.handle(m));
}

const BODY = Buffer.from('{"id":7,"ssn":"078-05-1120"}');
const masked = (r: ProcessingResponse | undefined): string | undefined => {
  const b = (r?.responseBody as { response?: { bodyMutation?: { body?: Buffer } } } | undefined)?.response?.bodyMutation?.body;
  return b ? b.toString() : undefined;
};

describe('BUFFERED response body with upstream trailers', () => {
  test('trailers skipped: the one body message (end_of_stream false) is the whole body and is masked', () => {
    const { s, records } = stream();
    const r = run(s, 'r1', [{ responseBody: { body: BODY, endOfStream: false } }]);
    assert.equal(masked(r[2]), '{"id":7}');
    assert.equal(s.finished, false);
    assert.deepEqual(records.map((x) => [x.requestId, x.outcome, x.bytesIn, x.bytesOut]), [['r1', 'masked', BODY.length, 8]]);
  });

  test('trailers sent: masked body, then a normal trailers response', () => {
    const { s, records } = stream();
    const r = run(s, 'r2', [{ responseBody: { body: BODY, endOfStream: false } }, { responseTrailers: {} }]);
    assert.equal(masked(r[2]), '{"id":7}');
    assert.deepEqual(r[3], { responseTrailers: {} });
    assert.equal(records.length, 1);
  });

  test('STREAMED: the same message is only a chunk, cleared; trailers then fail closed', () => {
    const { s, records } = stream({ responseBodyMode: 'streamed' });
    const r = run(s, 'r3', [{ responseBody: { body: BODY, endOfStream: false } }, { responseTrailers: {} }]);
    assert.deepEqual(r[2], { responseBody: { response: { bodyMutation: { clearBody: true } } } });
    assert.ok(r[3]!.immediateResponse);
    assert.deepEqual(records.map((x) => [x.outcome, x.code]), [['blocked', 'MASKING_FAILED']]);
  });

  test('a body after the masked one fails closed and is recorded as blocked', () => {
    const { s, records } = stream();
    const r = run(s, 'r4', [{ responseBody: { body: BODY, endOfStream: false } }, { responseBody: { body: BODY, endOfStream: true } }]);
    assert.ok(r[3]!.immediateResponse);
    assert.deepEqual(records.map((x) => x.outcome), ['masked', 'blocked']);
  });

  test('an audit sink that refuses does not change the answer', () => {
    let reported = 0;
    const s = new ProcessingStream(resolveSettings({ verifier: new DirectiveVerifier(key), audit: { recordMasking: () => Promise.reject(new Error('full')) }, onAuditError: () => reported++ }));
    const r = run(s, 'r5', [{ responseBody: { body: BODY, endOfStream: true } }]);
    assert.equal(masked(r[2]), '{"id":7}');
    return new Promise<void>((done) => setImmediate(() => (assert.equal(reported, 1), done())));
  });
});

describe('masks that match nothing in a response', () => {
  const misspelt = (onUnmatched?: 'deny' | 'record'): string => payloadTail({ masks: [{ field: '$.ssn', action: 'remove' }, { field: '$.SSN', action: 'remove', ...(onUnmatched ? { onUnmatched } : {}) }] });
  const counted: [number, boolean][] = [];
  const onUnmatched = (n: number, denied: boolean): void => void counted.push([n, denied]);

  test('default (record): the body goes out masked, the miss is audited and counted', () => {
    counted.length = 0;
    const { s, records } = stream({ onUnmatched });
    const r = run(s, 'u1', [{ responseBody: { body: BODY, endOfStream: true } }], misspelt());
    assert.equal(masked(r[2]), '{"id":7}');
    assert.deepEqual(records.map((x) => [x.outcome, x.unmatched]), [['masked', ['$.SSN']]]);
    assert.deepEqual(counted, [[1, false]]);
  });

  test('onUnmatched: deny: the response is withheld with MASK_UNMATCHED and the miss audited', () => {
    counted.length = 0;
    const { s, records } = stream({ onUnmatched });
    const r = run(s, 'u2', [{ responseBody: { body: BODY, endOfStream: true } }], misspelt('deny'));
    assert.ok(r[2]!.immediateResponse);
    const body = (r[2]!.immediateResponse as { body?: Buffer }).body;
    assert.match(Buffer.from(body ?? []).toString(), /"code":"MASK_UNMATCHED"/);
    assert.equal(masked(r[2]), undefined);
    assert.deepEqual(records.map((x) => [x.outcome, x.code, x.unmatched]), [['blocked', 'MASK_UNMATCHED', ['$.SSN']]]);
    assert.deepEqual(counted, [[1, true]]);
  });

  test('every mask matched: no unmatched field in the record', () => {
    const { s, records } = stream();
    run(s, 'u3', [{ responseBody: { body: BODY, endOfStream: true } }]);
    assert.equal(records[0]?.unmatched, undefined);
  });
});
