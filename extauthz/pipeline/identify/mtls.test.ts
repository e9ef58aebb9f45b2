import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PortcullisError } from '../../errors.js';
import type { TenantDirectory } from '../../policy/tenants.js';
import { makeCert, type TestCert } from '../../../test/helpers/certs.js';
import { compileValid } from '../../../test/helpers/policies.js';
import { checkRequest, type RequestSpec } from '../../../test/helpers/requests.js';
import { HEALTH_SPIFFE, NS, REVENUE_SPIFFE, standardFiles } from '../../../test/helpers/fixtures.js';
import { parseCheckRequest } from '../context.js';
import { Identifier } from './index.js';
import { parseXfcc } from './mtls.js';

const NOW = new Date('2026-03-01T12:00:00Z');
// Tenants only need a key set to compile; these tests never present a token.
const dir: TenantDirectory = compileValid(standardFiles('https://idp.example/jwks')).snapshot.tenants.get(NS)!;

function identify(spec: RequestSpec): Promise<{ tenant: string; subject: string; spiffeId: string } | undefined> {
  return new Identifier()
    .identify(parseCheckRequest(checkRequest(spec), NOW), dir)
    .then((p) => (p ? { tenant: p.tenant.name, subject: p.subject, spiffeId: p.spiffeId } : undefined));
}

describe('mTLS identities', () => {
  let revenueCert: TestCert;
  let healthSubjectCert: TestCert;

  before(() => {
    revenueCert = makeCert('/CN=reporting/O=Revenue', [`URI:${REVENUE_SPIFFE}`, 'DNS:reporting.revenue.svc']);
    healthSubjectCert = makeCert('/O=Health/CN=etl-batch', ['DNS:etl.health.svc']);
  });

  test('source.principal SPIFFE ID binds to the agency tenant', async () => {
    assert.deepEqual(await identify({ principal: REVENUE_SPIFFE }), { tenant: 'dept-revenue', subject: REVENUE_SPIFFE, spiffeId: REVENUE_SPIFFE });
  });

  test('source.certificate (URL-encoded PEM) with a URI SAN binds to the agency tenant', async () => {
    assert.deepEqual(await identify({ certificate: revenueCert.urlEncoded }), { tenant: 'dept-revenue', subject: REVENUE_SPIFFE, spiffeId: REVENUE_SPIFFE });
  });

  test('source.certificate subject matches a subject pattern', async () => {
    const p = await identify({ certificate: healthSubjectCert.urlEncoded });
    assert.equal(p?.tenant, 'dept-health');
    assert.equal(p?.subject, 'CN=etl-batch,O=Health');
  });

  test('an unknown SPIFFE ID stays anonymous', async () => {
    assert.equal(await identify({ principal: 'spiffe://gov.example/ns/unknown/sa/x' }), undefined);
  });

  test('a SPIFFE pattern does not match a sibling namespace by prefix', async () => {
    assert.equal(await identify({ principal: 'spiffe://gov.example/ns/revenue-evil/sa/x' }), undefined);
  });

  test("one request's peer identity does not leak into the next request", async () => {
    assert.equal((await identify({ principal: REVENUE_SPIFFE }))?.tenant, 'dept-revenue');
    assert.equal(await identify({}), undefined);
    assert.equal(await identify({ headers: { 'x-forwarded-client-cert': 'URI=spiffe://gov.example/ns/other/sa/x' } }), undefined);
  });

  test('a garbage certificate is BAD_REQUEST', async () => {
    await assert.rejects(identify({ certificate: encodeURIComponent('-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n') }), (err: unknown) => err instanceof PortcullisError && err.code === 'BAD_REQUEST');
  });

  test('XFCC is used for a tenant that trusts it', async () => {
    const p = await identify({ headers: { 'x-forwarded-client-cert': `By=spiffe://c2g/ns/gw/sa/gateway;URI=${HEALTH_SPIFFE}` } });
    assert.equal(p?.tenant, 'dept-health');
  });

  test('a spoofed XFCC for a tenant that does not trust it is ignored', async () => {
    assert.equal(await identify({ headers: { 'x-forwarded-client-cert': `By=spiffe://c2g/ns/gw/sa/gateway;URI=${REVENUE_SPIFFE}` } }), undefined);
  });

  test('XFCC: only the first element (the original client) counts', async () => {
    const header = `URI=spiffe://gov.example/ns/other/sa/x,By=spiffe://c2g/ns/gw;URI=${HEALTH_SPIFFE}`;
    assert.equal(await identify({ headers: { 'x-forwarded-client-cert': header } }), undefined);
  });
});

describe('parseXfcc', () => {
  const cases: [string, { spiffeIds: string[]; subjects: string[] }][] = [
    ['By=spiffe://a;Hash=abc;URI=spiffe://td/ns/x', { spiffeIds: ['spiffe://td/ns/x'], subjects: [] }],
    ['Subject="CN=a,O=Health";URI=spiffe://td/y;DNS=a.svc', { spiffeIds: ['spiffe://td/y'], subjects: ['CN=a,O=Health', 'a.svc'] }],
    ['URI=https://not-spiffe', { spiffeIds: [], subjects: [] }],
    ['garbage', { spiffeIds: [], subjects: [] }],
  ];
  for (const [header, expected] of cases) test(header, () => assert.deepEqual(parseXfcc(header), expected));
});
