/**
 * Tracing end to end: `serve` with --otlp-endpoint exporting to a real OTLP/HTTP receiver on
 * loopback (test/tools/otlp-receiver, Go, decoding with the upstream OTLP protobuf types), Checks
 * over real gRPC carrying W3C traceparent headers. Asserts the span tree (the incoming span as
 * parent, the same trace id, one child per phase that ran), the trace id in the audit record,
 * and that no span, attribute or resource value holds a subject, token, key, path value or address.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import { ensureGoBinary, findGo, REPO_ROOT } from '../conformance/binary.js';
import { JwksServer } from '../helpers/jwks-server.js';
import { generateKey, mintToken, type TestKey } from '../helpers/keys.js';
import { tempPolicyDir, type TempDir } from '../helpers/policies.js';
import { bearer, checkRequest } from '../helpers/requests.js';
import { eventually, startTestServer } from '../helpers/server.js';
import { HOSTS, standardFiles } from '../helpers/fixtures.js';
import { decisionFields } from '../../extauthz/audit/record.js';
import { Pseudonymizer } from '../../extauthz/audit/pseudonym.js';
import type { Decision } from '../../extauthz/pipeline/decision.js';

interface ExportedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: string;
  startTimeUnixNano: number;
  endTimeUnixNano: number;
  attributes: Record<string, string>;
  resource: Record<string, string>;
}

const go = findGo();
const skip = go === undefined ? 'no Go toolchain to build test/tools/otlp-receiver' : false;
if (skip && process.env['CI']) throw new Error(skip);

const hex = (bytes: number): string => randomBytes(bytes).toString('hex');
const PHASES = ['parse', 'route', 'identify', 'authorize', 'quota', 'shape', 'audit'];

void describe('tracing: spans per Check and phase over OTLP/HTTP to a real receiver', { skip }, () => {
  let receiver: ChildProcess;
  let endpoint = '';
  const spans: ExportedSpan[] = [];
  const decisions: Decision[] = [];
  let jwks: JwksServer;
  let key: TestKey;
  let dir: TempDir;
  let token = '';
  const traced = { allowed: { traceId: hex(16), parent: hex(8) }, denied: { traceId: hex(16), parent: hex(8) }, unsampled: { traceId: hex(16), parent: hex(8) } };
  const CLIENT_IP = '203.0.113.77';
  const API_KEY = 'guess-this-partner-key';

  before(async () => {
    const bin = await ensureGoBinary(go!, path.join(REPO_ROOT, 'test', 'tools', 'otlp-receiver'), 'otlp-receiver');
    receiver = spawn(bin.path, ['-addr', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const lines = createInterface({ input: receiver.stdout! });
    endpoint = await new Promise<string>((resolve, reject) => {
      receiver.once('exit', (code) => reject(new Error(`otlp-receiver exited (${code})`)));
      lines.on('line', (l) => {
        if (l.startsWith('listening ')) resolve(l.slice('listening '.length));
        else spans.push(JSON.parse(l) as ExportedSpan);
      });
    });
    key = await generateKey('ES256');
    jwks = await new JwksServer([key.publicJwk]).start();
    dir = tempPolicyDir(standardFiles(jwks.url));
    token = await mintToken(key, { sub: 'c-1', claims: { amr: ['mfa'] } });

    const srv = await startTestServer(dir.dir, {
      config: { otlpEndpoint: endpoint },
      ext: { audit: { record: (d) => (decisions.push(d), Promise.resolve()) } },
    });
    const tp = (t: { traceId: string; parent: string }, flags = '01'): Record<string, string> => ({ traceparent: `00-${t.traceId}-${t.parent}-${flags}` });
    try {
      const ok = await srv.check(checkRequest({ host: HOSTS.records, path: '/v1/citizens/c-1/records', headers: { ...bearer(token), ...tp(traced.allowed) }, sourceIp: CLIENT_IP }));
      assert.ok(ok.okResponse, JSON.stringify(ok));
      const no = await srv.check(checkRequest({ host: HOSTS.open, path: '/v1/datasets/population', headers: { 'x-api-key': API_KEY, ...tp(traced.denied) }, sourceIp: CLIENT_IP }));
      assert.ok(no.deniedResponse);
      await srv.check(checkRequest({ host: HOSTS.records, path: '/v1/citizens/c-1/records', headers: { ...bearer(token), ...tp(traced.unsampled, '00') }, sourceIp: CLIENT_IP }));
      await srv.check(checkRequest({ host: HOSTS.records, path: '/v1/citizens/c-1/records', headers: bearer(token), sourceIp: CLIENT_IP }));
    } finally {
      // Shutting down flushes the span processor: every answered Check's spans are exported.
      await srv.close();
    }
    // 8 spans for the allowed Check, 5 for the denied one (parse, route, identify, audit + root), 8 for the untraced-parent one.
    await eventually(() => spans.length >= 21, 'the receiver printed the exported spans', 10_000);
  });

  after(async () => {
    receiver?.kill();
    await jwks?.close();
    dir?.remove();
  });

  const tree = (traceId: string): { root: ExportedSpan; children: ExportedSpan[] } => {
    const mine = spans.filter((s) => s.traceId === traceId);
    const roots = mine.filter((s) => s.name === 'portcullis.check');
    assert.equal(roots.length, 1, `one root span for trace ${traceId}, got ${mine.map((s) => s.name).join(', ')}`);
    const root = roots[0]!;
    return { root, children: mine.filter((s) => s !== root) };
  };

  void test('an allowed Check: the root continues the incoming span, one child per phase, in order and inside the root', () => {
    const { root, children } = tree(traced.allowed.traceId);
    assert.equal(root.parentSpanId, traced.allowed.parent);
    assert.equal(root.kind, 'SPAN_KIND_SERVER');
    assert.deepEqual(children.map((c) => c.name).sort(), PHASES.map((p) => `portcullis.${p}`).sort());
    const ordered = [...children].sort((a, b) => a.startTimeUnixNano - b.startTimeUnixNano).map((c) => c.attributes['portcullis.phase']);
    assert.deepEqual(ordered, PHASES);
    for (const c of children) {
      assert.equal(c.parentSpanId, root.spanId, c.name);
      assert.ok(c.startTimeUnixNano >= root.startTimeUnixNano && c.endTimeUnixNano <= root.endTimeUnixNano, `${c.name} lies inside the root span`);
    }
    assert.deepEqual(
      [root.attributes['portcullis.decision'], root.attributes['portcullis.code'], root.attributes['portcullis.tenant'], root.attributes['portcullis.rule'], root.attributes['http.route']],
      ['allow', 'OK', 'citizen-app', 'citizen-own-record', '/v1/citizens/{id}/records'],
    );
    assert.equal(root.resource['service.name'], 'portcullis-extauthz');
  });

  void test('a denied Check: only the phases that ran, and the code', () => {
    const { root, children } = tree(traced.denied.traceId);
    assert.equal(root.parentSpanId, traced.denied.parent);
    assert.deepEqual(children.map((c) => c.name).sort(), ['portcullis.audit', 'portcullis.identify', 'portcullis.parse', 'portcullis.route']);
    assert.deepEqual([root.attributes['portcullis.decision'], root.attributes['portcullis.code']], ['deny', 'INVALID_API_KEY']);
  });

  void test('the trace id is in the audit record; an unsampled parent exports nothing but keeps its trace id', () => {
    const pseudo = Pseudonymizer.ephemeral();
    const ids = decisions.map((d) => decisionFields(d, undefined, pseudo, 'grpc').traceId);
    assert.deepEqual(ids.slice(0, 3), [traced.allowed.traceId, traced.denied.traceId, traced.unsampled.traceId]);
    assert.equal(spans.filter((s) => s.traceId === traced.unsampled.traceId).length, 0);
    // No traceparent: a new trace, rooted here, whose id the record carries.
    const fresh = ids[3]!;
    assert.match(fresh, /^[0-9a-f]{32}$/);
    assert.ok(![traced.allowed.traceId, traced.denied.traceId, traced.unsampled.traceId].includes(fresh));
    assert.equal(tree(fresh).root.parentSpanId, '');
  });

  void test('no personal data in any span: subject, token, API key, path values, client address', () => {
    const forbidden = ['c-1', token, token.split('.')[1]!, API_KEY, CLIENT_IP, '203.0.113', '/v1/citizens/c-1'];
    for (const s of spans) {
      const values = [s.name, ...Object.keys(s.attributes), ...Object.values(s.attributes), ...Object.values(s.resource)];
      for (const v of values) for (const f of forbidden) assert.ok(!v.includes(f), `span ${s.name} holds ${JSON.stringify(f)} in ${JSON.stringify(v)}`);
    }
  });
});
