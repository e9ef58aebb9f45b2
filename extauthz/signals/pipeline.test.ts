/**
 * Signals end to end: real Checks through the pipeline, alerts written by the real audit trail
 * into the same signed chain as the decisions, `audit verify` accepting the log, `audit show`
 * counting the alerts, and nothing in clear in the alert records.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet } from 'jose';
import { compileValid } from '../../test/helpers/policies.js';
import { checkRequest } from '../../test/helpers/requests.js';
import { generateKey } from '../../test/helpers/keys.js';
import { HOSTS, REVENUE_SPIFFE, standardFiles } from '../../test/helpers/fixtures.js';
import { Chain } from '../audit/chain.js';
import { newKey } from '../audit/test-helpers.js';
import { Pseudonymizer } from '../audit/pseudonym.js';
import { FileSink } from '../audit/sinks.js';
import { AuditTrail } from '../audit/trail.js';
import { summarize } from '../audit/show.js';
import { verifyFiles } from '../audit/verify-files.js';
import { ALERT_DEFAULTS } from '../policy/alerts.js';
import { crdSchema } from '../policy/crd-schema.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import { DecisionPipeline } from '../pipeline/pipeline.js';
import { INVALID_CREDENTIALS_DEFAULTS, SignalEngine } from './engine.js';
import type { Alert } from './alert.js';

const NOW = new Date('2026-12-01T10:00:00Z');

describe('signals through the pipeline into the audit chain', () => {
  let dir: string;
  let snapshot: PolicySnapshot;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pc-signals-'));
    snapshot = compileValid(standardFiles([(await generateKey('ES256')).publicJwk])).snapshot;
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('exfiltration and invalid-credential alerts are chained, signed, verified and shown', async () => {
    const key = newKey();
    const file = join(dir, 'audit.log');
    const pseudo = new Pseudonymizer(Buffer.alloc(32, 9));
    const chain = new Chain({ instance: 'test-0', key, subjectKeyId: pseudo.keyId, previous: null });
    const trail = new AuditTrail({ chain, pseudonymizer: pseudo, sinks: [await FileSink.open(file, 1 << 30)], mode: 'batch', checkpointEvery: 50, checkpointSeconds: 3600, flushMs: 1 });
    const raised: Alert[] = [];
    const signals = new SignalEngine({ sink: trail, onAlert: (a) => raised.push(a) });
    const pipeline = new DecisionPipeline({ snapshot: () => snapshot, clock: () => NOW, audit: trail, signals });

    const count = ALERT_DEFAULTS.distinctSubjects.count;
    for (let i = 0; i < count; i++) {
      const d = await pipeline.check(checkRequest({ host: HOSTS.records, path: `/v1/citizens/c-${i}/records`, principal: REVENUE_SPIFFE, headers: { 'x-purpose-of-use': 'tax-audit' } }));
      assert.equal(d.allowed, true, d.reason);
      assert.equal(raised.length, i === count - 1 ? 1 : 0);
    }
    for (let i = 0; i < INVALID_CREDENTIALS_DEFAULTS.count; i++) {
      await pipeline.check(checkRequest({ host: HOSTS.open, path: '/v1/datasets/population', headers: { 'x-api-key': `guess-${i}` }, sourceIp: `2001:db8:aa:bb::${i + 1}` }));
    }
    assert.deepEqual(raised.map((a) => a.signal), ['distinct-subjects', 'invalid-credentials']);
    await trail.close();

    const report = await verifyFiles([file], { keys: createLocalJWKSet(key.jwks()), requireSealed: true });
    assert.equal(report.intact, true, JSON.stringify(report.problem));
    const text = readFileSync(file, 'utf8');
    const alerts = text.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.type === 'alert');
    assert.equal(alerts.length, 2);
    const [exfil, creds] = alerts as [Record<string, unknown>, Record<string, unknown>];
    assert.equal(exfil.signal, 'distinct-subjects');
    assert.equal(exfil.tenant, 'dept-revenue');
    assert.equal(exfil.subject, pseudo.subject(REVENUE_SPIFFE));
    assert.equal(exfil.count, count);
    assert.equal(creds.signal, 'invalid-credentials');
    assert.equal(creds.network, '2001:db8:aa::/48');
    assert.equal(creds.networkId, pseudo.subject('network:2001:db8:aa:bb::/64'));
    // Nothing in clear: not the SPIFFE ID, not a citizen id, not a /64 or an address.
    for (const a of alerts) {
      const line = JSON.stringify(a);
      for (const secret of [REVENUE_SPIFFE, 'c-1', '2001:db8:aa:bb', 'guess-']) assert.ok(!line.includes(secret), `${secret} in ${line}`);
    }
    const shown = await summarize([file]);
    assert.deepEqual(shown.byAlert, { 'distinct-subjects dept-revenue': 1, 'invalid-credentials (no tenant)': 1 });
    assert.equal(shown.records, count + INVALID_CREDENTIALS_DEFAULTS.count, 'alerts are not counted as decisions');
  });

  test('an edited alert record fails verification', async () => {
    const file = join(dir, 'audit.log');
    const lines = readFileSync(file, 'utf8').trimEnd().split('\n');
    const at = lines.findIndex((l) => l.includes('"type":"alert"'));
    const edited = join(dir, 'edited.log');
    assert.ok(at > 0);
    lines[at] = lines[at]!.replace('"count":200', '"count":20');
    assert.ok(lines[at]!.includes('"count":20,'));
    writeFileSync(edited, lines.join('\n') + '\n');
    // Any JWKS: the chain breaks (edited) before a signature is even needed.
    const report = await verifyFiles([edited], { keys: createLocalJWKSet(newKey().jwks()) });
    assert.equal(report.intact, false);
    assert.equal(report.problem?.kind, 'edited');
  });
});

describe('the CRD and the code agree on the alert defaults', () => {
  test('spec.alerts defaults in crds/tenant.yaml are ALERT_DEFAULTS', () => {
    const alerts = (crdSchema('Tenant') as { properties: { spec: { properties: { alerts: { properties: Record<string, { properties: Record<string, { default?: unknown }> }> } } } } }).properties.spec.properties.alerts;
    const fromCrd: Record<string, Record<string, unknown>> = {};
    for (const [signal, s] of Object.entries(alerts.properties)) fromCrd[signal] = Object.fromEntries(Object.entries(s.properties).map(([k, v]) => [k, v.default]));
    assert.deepEqual(fromCrd, JSON.parse(JSON.stringify(ALERT_DEFAULTS)));
  });
});
