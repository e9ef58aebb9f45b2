/**
 * Personal data in a CheckRequest (subject, token, API key, client certificate, path identifiers,
 * client IP) never appears in clear in any audit record, for every example request decided by the
 * real pipeline against the example policies.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { readCheckRequest } from '../../extauthz/cli/check.js';
import { compileFolder } from '../../extauthz/policy/folder-source.js';
import { DecisionPipeline } from '../../extauthz/pipeline/pipeline.js';
import { Chain } from '../../extauthz/audit/chain.js';
import { SigningKey } from '../../extauthz/audit/keys.js';
import { Pseudonymizer } from '../../extauthz/audit/pseudonym.js';
import { StreamSink } from '../../extauthz/audit/sinks.js';
import { AuditTrail } from '../../extauthz/audit/trail.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');

interface RequestShape {
  attributes?: { request?: { http?: { path?: string; headers?: Record<string, string> } }; source?: { address?: { socketAddress?: { address?: string } } } };
}

function secretsOf(req: RequestShape): string[] {
  const http = req.attributes?.request?.http;
  const path = http?.path ?? '';
  const headers = http?.headers ?? {};
  const out: string[] = [];
  // The raw path with its identifiers (a path without identifiers may equal its template).
  if (/\d{3,}/.test(path)) out.push(path.split('?')[0]!);
  out.push(...path.split(/[/?=&]/).filter((s) => /\d{3,}/.test(s)));
  const credentials = ['authorization', 'x-api-key', 'x-forwarded-client-cert', 'cookie'].map((n) => headers[n]).filter((v): v is string => v !== undefined);
  out.push(...credentials, ...credentials.map((v) => v.replace(/^Bearer /, '')));
  out.push(...addressesOf(req, headers));
  return out.filter((s) => s.length >= 4);
}

function addressesOf(req: RequestShape, headers: Record<string, string>): string[] {
  return [req.attributes?.source?.address?.socketAddress?.address ?? '', ...(headers['x-forwarded-for'] ?? '').split(',').map((s) => s.trim())];
}

// examples/accountability records the data subject of each request (subjectParam) as `resource`.
for (const [policies, requests] of [['policies', 'requests'], ['accountability/policies', 'accountability/requests']] as const) void test(`no personal data in clear in any audit record (examples/${policies})`, async () => {
  const compiled = compileFolder(join(ROOT, 'examples', policies));
  assert.deepEqual(compiled.problems, []);
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (c: Buffer) => (text += c.toString('utf8')));
  const pseudo = new Pseudonymizer(Buffer.alloc(32, 1));
  const trail = new AuditTrail({ chain: new Chain({ instance: 'pii', key: SigningKey.generate(), subjectKeyId: pseudo.keyId, previous: null }), pseudonymizer: pseudo, sinks: [new StreamSink(stream)], mode: 'strict', checkpointEvery: 100, checkpointSeconds: 60 });
  const pipeline = new DecisionPipeline({ snapshot: () => compiled.snapshot, audit: trail });
  const dir = join(ROOT, 'examples', requests);
  const secrets: string[] = [];
  let subjects = 0;
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.json'))) {
    const req = readCheckRequest(join(dir, f));
    secrets.push(...secretsOf(req as RequestShape));
    const d = await pipeline.check(req);
    if (d.principal?.subject) {
      secrets.push(d.principal.subject);
      subjects++;
    }
  }
  await trail.close();
  const records = text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.type === 'decision');
  assert.equal(records.length, readdirSync(dir).filter((f) => f.endsWith('.json')).length);
  assert.ok(subjects > 0, 'some example requests must identify a principal');
  assert.ok(secrets.length > 10);
  for (const s of new Set(secrets)) assert.ok(!text.includes(s), `"${s}" appears in the audit trail`);
  // The pseudonym is there instead, and IPs are reduced to a network.
  assert.ok(records.some((r) => typeof r.subject === 'string' && /^[A-Za-z0-9_-]{22}$/.test(r.subject)));
  assert.ok(records.every((r) => r.client === null || /\/(24|48)$/.test(String(r.client))));
  if (policies.startsWith('accountability')) assert.ok(records.some((r) => r.resource === pseudo.subject('1984') && r.legalBasis !== null), 'the data subject, pseudonymised, and the legal basis');
});
