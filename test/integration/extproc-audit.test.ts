/**
 * ext_proc writes one `masking` record per outcome into the audit trail the server builds (the
 * same chain as the decisions: injected, never a second one). Records carry the request id,
 * policy, rule, directive paths and actions, outcome and byte counts, never body content, and
 * the mixed log still verifies end to end with `audit verify`'s verifier.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createLocalJWKSet } from 'jose';
import { createAuditService, type AuditService } from '../../extauthz/audit/service.js';
import { fakeDecision } from '../../extauthz/audit/test-helpers.js';
import { verifyFiles } from '../../extauthz/audit/verify-files.js';
import type { MaskingEntry } from '../../extauthz/audit/record.js';
import { ExternalProcessorService } from '../../extauthz/extproc/service.js';
import { DirectiveIssuer, DirectiveVerifier, MaskKey, payloadTail } from '../../extauthz/masking/token.js';
import type { MaskSpec } from '../../extauthz/masking/engine.js';
import { ExtProcClient, headers } from './extproc-client.js';

const key = MaskKey.generate();
const issuer = new DirectiveIssuer(key);
const spec: MaskSpec = { masks: [{ field: '$.ssn', action: 'remove' }, { field: '$.card', action: 'partial', keepLast: 4 }] };
const SSN = '078-05-1120';
const CARD = '4111111111111111';
const RECORD = JSON.stringify({ id: 1, ssn: SSN, card: CARD });
const quiet = { warn: () => {}, error: () => {} };

/** ext_authz's dynamic metadata as Envoy forwards it (metadata_options.forwarding_namespaces). */
function metadata(token: string): Record<string, unknown> {
  const s = (v: string): Record<string, string> => ({ stringValue: v });
  return { filterMetadata: { 'envoy.filters.http.ext_authz': { fields: { portcullis: { structValue: { fields: { policy: s('c2g/citizen-records'), rule: s('citizen-reads-own-record'), maskDirective: s(token) } } } } } } };
}

function start(rid: string, s: MaskSpec = spec): Record<string, unknown> {
  const token = issuer.issue(payloadTail(s), rid, new Date());
  return { requestHeaders: headers({ 'x-request-id': rid, 'x-portcullis-mask': token }, true), metadataContext: metadata(token) };
}
const jsonHeaders = { responseHeaders: headers({ ':status': '200', 'content-type': 'application/json' }) };
const body = (b: string, endOfStream = true): Record<string, unknown> => ({ responseBody: { body: Buffer.from(b), endOfStream } });

describe('ext_proc masking outcomes in the server audit trail', () => {
  let dir: string;
  let audit: AuditService;
  let server: grpc.Server;
  let client: ExtProcClient;
  let lines: string[];

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'portcullis-extproc-audit-'));
    audit = await createAuditService(
      { file: join(dir, 'audit.log'), stdout: false, mode: 'batch', checkpointEvery: 1000, checkpointSeconds: 3600, maxFileBytes: 1 << 30, maxBuffered: 1000, instanceId: 'extproc-test' },
      { log: quiet },
    );
    server = new grpc.Server();
    new ExternalProcessorService({ verifier: new DirectiveVerifier(key), hashKey: randomBytes(32), maxBodyBytes: 4096, audit: audit.trail }).addToServer(server);
    const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
    client = new ExtProcClient(port);

    await audit.trail.record(fakeDecision(1), undefined); // a Check decision, same chain
    await client.exchange([start('m-1'), jsonHeaders, body(RECORD)]); // masked
    await client.exchange([start('m-2'), jsonHeaders, body(RECORD, false), { responseTrailers: {} }]); // masked, trailers after
    await client.exchange([start('b-1'), jsonHeaders, body(`{"ssn":"${SSN}",`)]); // blocked: unparsable
    const other = new DirectiveIssuer(MaskKey.generate()).issue(payloadTail(spec), 'b-2', new Date());
    await client.exchange([{ requestHeaders: headers({ 'x-request-id': 'b-2', 'x-portcullis-mask': other }, true) }]); // blocked: forged
    await client.exchange([start('e-1', { masks: [] })]); // empty set: nothing to record
    await audit.close();
    lines = readFileSync(join(dir, 'audit.log'), 'utf8').trim().split('\n');
  });

  after(() => {
    client.close();
    server.forceShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  const masking = (): MaskingEntry[] => lines.map((l) => JSON.parse(l) as MaskingEntry).filter((e) => e.type === 'masking');

  test('one record per outcome, in the decisions chain', () => {
    const entries = lines.map((l) => JSON.parse(l) as { type: string; chain?: string });
    assert.deepEqual(entries.map((e) => e.type), ['chain-start', 'decision', 'masking', 'masking', 'masking', 'masking', 'checkpoint']);
    assert.equal(new Set(entries.map((e) => e.chain)).size, 1);
    assert.deepEqual(masking().map((e) => [e.requestId, e.outcome, e.code]), [
      ['m-1', 'masked', null],
      ['m-2', 'masked', null],
      ['b-1', 'blocked', 'RESPONSE_NOT_MASKABLE'],
      ['b-2', 'blocked', 'MASK_DIRECTIVE_INVALID'],
    ]);
  });

  test('policy, rule, masks (field and action only) and byte counts', () => {
    const [m1, , b1, b2] = masking();
    assert.deepEqual(
      { policy: m1!.policy, rule: m1!.rule, masks: m1!.masks, allowFields: m1!.allowFields, bytesIn: m1!.bytesIn },
      { policy: 'c2g/citizen-records', rule: 'citizen-reads-own-record', masks: [{ field: '$.ssn', action: 'remove' }, { field: '$.card', action: 'partial' }], allowFields: null, bytesIn: Buffer.byteLength(RECORD) },
    );
    assert.equal(m1!.bytesOut, Buffer.byteLength(JSON.stringify({ id: 1, card: '************1111' })));
    assert.deepEqual([b1!.bytesIn, b1!.bytesOut], [Buffer.byteLength(`{"ssn":"${SSN}",`), 0]);
    // A directive that does not verify: its masks are not trusted, the body was never seen.
    assert.deepEqual([b2!.masks, b2!.policy, b2!.bytesIn, b2!.bytesOut], [[], null, null, null]);
  });

  test('no body content in the log', () => {
    const text = lines.join('\n');
    for (const secret of [SSN, CARD, '1111"', 'keepLast']) assert.ok(!text.includes(secret), `${secret} in the audit log`);
  });

  test('the log with masking records verifies (hashes, sequence, signed checkpoints)', async () => {
    const report = await verifyFiles([join(dir, 'audit.log')], { keys: createLocalJWKSet(audit.key.jwks() as never), requireSealed: true });
    assert.equal(report.intact, true, JSON.stringify(report.problem));
  });
});
