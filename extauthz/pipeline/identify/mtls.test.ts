import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PortcullisError } from '../../errors.js';
import type { TenantDirectory } from '../../policy/tenants.js';
import fc from 'fast-check';
import { envoyXfccElement, makeCert, makeCertWithSanSection, rfc2253Subject, subj, type TestCert } from '../../../test/helpers/certs.js';
import { compileValid } from '../../../test/helpers/policies.js';
import { checkRequest, type RequestSpec } from '../../../test/helpers/requests.js';
import { HEALTH_SPIFFE, NS, REVENUE_SPIFFE, standardFiles } from '../../../test/helpers/fixtures.js';
import { parseCheckRequest } from '../context.js';
import { Identifier } from './index.js';
import { certificateIdentityFromPem } from './san.js';

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

describe('mTLS from the attacker side: a forged certificate field never names another tenant', () => {
  // Only dept-health trusts XFCC: its patterns are spiffe://gov.example/ns/health/* and CN=*,O=Health.
  const BY = 'spiffe://c2g/ns/gw/sa/gateway';
  const xfcc = (element: string) => identify({ headers: { 'x-forwarded-client-cert': element } });

  test('the exact Envoy XFCC of a real certificate whose CN holds an escaped quote binds by its real subject', async () => {
    const cert = makeCert('/O=Health/CN=etl "batch", nightly', []);
    const subject = rfc2253Subject(cert);
    assert.equal(subject, 'CN=etl \\"batch\\"\\, nightly,O=Health', 'OpenSSL escapes the quote and the comma');
    const element = envoyXfccElement(cert, BY, {});
    assert.match(element, /^By=spiffe:\/\/c2g\/ns\/gw\/sa\/gateway;Hash=[0-9a-f]{64};Subject="CN=etl \\"batch\\"\\, nightly,O=Health"$/);
    assert.deepEqual(await xfcc(element), { tenant: 'dept-health', subject: 'CN=etl \\"batch\\"\\, nightly,O=Health', spiffeId: '' });
  });

  const forged: [string, [string, string][], string[]][] = [
    // [why it must not bind, the certificate's RDNs (least specific first), its real URI SANs]
    ['a CN "x,O=Health" is one RDN, not CN=x plus O=Health', [['CN', 'x,O=Health']], []],
    ['a quote in the CN neither ends the Subject nor adds an RDN', [['O', 'Evil'], ['CN', 'x",O=Health']], []],
    ['keys inside a quoted CN are not keys', [['O', 'Evil'], ['OU', '";DNS=etl.health.svc;Subject="CN=a,O=Health'], ['CN', `x";URI=${HEALTH_SPIFFE}`]], ['spiffe://gov.example/ns/other/sa/x']],
    ['an escaped backslash before a quote does not end the value early', [['O', 'Evil'], ['CN', `x\\";URI=${HEALTH_SPIFFE}`]], []],
    ['a comma in a quoted CN does not start a new element', [['O', 'Evil'], ['CN', `a,x=y",By=z;URI=${HEALTH_SPIFFE}`]], []],
    ['a plus in the CN does not make a multi-valued RDN', [['O', 'Evil'], ['CN', 'a+O=Health']], []],
  ];
  for (const [why, rdns, uris] of forged) {
    test(why, async () => {
      const cert = makeCert(subj(...rdns), uris.map((u) => `URI:${u}`));
      const element = envoyXfccElement(cert, BY, { uris });
      assert.equal(await xfcc(element), undefined, element);
    });
  }

  const headers: [string, string, 'anonymous' | 'BAD_REQUEST'][] = [
    ['two URI SANs: not an X.509-SVID', `By=${BY};URI=${HEALTH_SPIFFE};URI=spiffe://gov.example/ns/other/sa/x`, 'anonymous'],
    ['a dot segment', `By=${BY};URI=spiffe://gov.example/ns/health/../revenue/sa/x`, 'anonymous'],
    ['percent-encoding', `By=${BY};URI=spiffe://gov.example/ns/health%2Fsa/x`, 'anonymous'],
    ['a trailing slash', `By=${BY};URI=spiffe://gov.example/ns/health/`, 'anonymous'],
    ['a query', `By=${BY};URI=spiffe://gov.example/ns/health/sa/x?admin=1`, 'anonymous'],
    ['an upper-case trust domain', `By=${BY};URI=spiffe://GOV.example/ns/health/sa/x`, 'anonymous'],
    ['a sibling prefix', `By=${BY};URI=spiffe://gov.example/ns/healthy/sa/x`, 'anonymous'],
    ['a wildcard DNS SAN', `By=${BY};DNS=*.health.svc`, 'anonymous'],
    ['a quote in an unquoted value', `By=${BY};URI=spiffe://gov.example/ns/health/sa/"x"`, 'BAD_REQUEST'],
    ['an unterminated quote', `By=${BY};Subject="CN=a,O=Health`, 'BAD_REQUEST'],
    ['Subject twice', `Subject="CN=a,O=Evil";Subject="CN=a,O=Health"`, 'BAD_REQUEST'],
    ['text after a quoted value', `Subject="CN=a,O=Health"x;URI=${HEALTH_SPIFFE}`, 'BAD_REQUEST'],
  ];
  for (const [name, header, expected] of headers) {
    test(`XFCC ${name}: ${expected}`, async () => {
      if (expected === 'anonymous') assert.equal(await xfcc(header), undefined);
      else await assert.rejects(xfcc(header), (err: unknown) => err instanceof PortcullisError && err.code === 'BAD_REQUEST');
    });
  }

  test('certificate SANs are read from the extension: a DNS SAN holding ", URI:spiffe://…" is one DNS name', async () => {
    // Node's display string would read "DNS:a, URI:spiffe://…" as two SANs.
    const cert = makeCertWithSanSection('x', [`DNS.1 = a, URI:${REVENUE_SPIFFE}`]);
    assert.equal(await identify({ certificate: cert.urlEncoded }), undefined);
  });

  test('a certificate with two URI SANs is not an SVID for either', async () => {
    const cert = makeCert('/CN=x', [`URI:${REVENUE_SPIFFE}`, 'URI:spiffe://gov.example/ns/other/sa/x']);
    assert.equal(await identify({ certificate: cert.urlEncoded }), undefined);
  });

  test('an invalid source.principal is never bound', async () => {
    for (const principal of [`${REVENUE_SPIFFE}/`, 'spiffe://gov.example/ns/revenue/./sa', 'SPIFFE://gov.example/ns/revenue/sa/x', 'spiffe://gov.example/ns/revenue/sa/x#frag']) {
      assert.equal(await identify({ principal }), undefined, principal);
    }
  });
});

/**
 * A URI SAN may hold `;`, `,` and `=` (RFC 3986) and Envoy writes URI values unquoted, so a partner
 * whose CA issues the URI it asks for can put pairs of its own into the element the edge writes.
 * Certificates made by OpenSSL, elements in Envoy's exact form: none of them may bind.
 */
describe('mTLS from the attacker side: pairs smuggled in a URI SAN are never Envoy\'s', () => {
  const BY = 'spiffe://c2g/ns/gw/sa/gateway';
  // A tenant bound by DNS name through XFCC, beside the standard ones.
  const DNS_TENANT = `apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: dept-dns, namespace: ${NS} }
spec:
  type: agency
  identity: { mtls: { subjects: ["etl.dns.svc"], trustXfcc: true } }
`;
  const dnsDir: TenantDirectory = compileValid({ ...standardFiles('https://idp.example/jwks'), '30-dns.yaml': DNS_TENANT }).snapshot.tenants.get(NS)!;
  const who = (header: string): Promise<string | undefined> =>
    new Identifier().identify(parseCheckRequest(checkRequest({ headers: { 'x-forwarded-client-cert': header } }), NOW), dnsDir).then((p) => p?.tenant.name);
  let forged: TestCert;
  before(() => {
    // Self-signed, never validated by any edge: what the smuggled Cert pair would carry.
    forged = makeCert('/CN=anything', [`URI:${HEALTH_SPIFFE}`]);
  });

  const smuggled: [string, () => string, 'anonymous' | 'BAD_REQUEST'][] = [
    ['a Cert pair naming a health SPIFFE ID (self-signed)', () => `https://partner.example/x;Cert=${forged.urlEncoded}`, 'BAD_REQUEST'],
    ['a Subject pair', () => 'https://partner.example/x;Subject=O=Health', 'BAD_REQUEST'],
    ['a Hash pair', () => 'https://partner.example/x;Hash=00', 'BAD_REQUEST'],
    ['a DNS pair naming a DNS-bound tenant', () => 'https://partner.example/x;DNS=etl.dns.svc', 'anonymous'],
    ['a second URI pair naming a health SPIFFE ID', () => `https://partner.example/x;URI=${HEALTH_SPIFFE}`, 'anonymous'],
    ['a comma and a new element naming health', () => `https://partner.example/x,By=${BY};URI=${HEALTH_SPIFFE}`, 'anonymous'],
  ];
  for (const [why, san, expected] of smuggled) {
    test(`${why}: ${expected}`, async () => {
      const uri = san();
      const cert = makeCertWithSanSection('partner', [`URI.1 = ${uri}`]);
      const element = envoyXfccElement(cert, BY, { uris: [uri] });
      assert.deepEqual(certificateIdentityFromPem(cert.pem).uris, [uri], 'OpenSSL put the whole text into one URI SAN');
      if (expected === 'anonymous') assert.equal(await who(element), undefined, element);
      else await assert.rejects(who(element), (err: unknown) => err instanceof PortcullisError && err.code === 'BAD_REQUEST');
    });
  }

  test('a real DNS SAN still binds: without a URI value, or through Cert when there is one', async () => {
    const dnsOnly = makeCert('/CN=etl', ['DNS:etl.dns.svc']);
    assert.equal(await who(envoyXfccElement(dnsOnly, BY, { dns: ['etl.dns.svc'] })), 'dept-dns');
    const both = makeCert('/CN=etl', ['URI:https://etl.example/a', 'DNS:etl.dns.svc']);
    // URI and DNS pairs alone are ambiguous (the DNS pair may be the URI's text): not bound ...
    assert.equal(await who(envoyXfccElement(both, BY, { uris: ['https://etl.example/a'], dns: ['etl.dns.svc'] })), undefined);
    // ... but the certificate itself (set_current_client_cert_details.cert) is unambiguous.
    assert.equal(await who(`By=${BY};Cert="${both.urlEncoded}";URI=https://etl.example/a;DNS=etl.dns.svc`), 'dept-dns');
  });

  test('property: whatever text a partner\'s URI SAN holds, its element binds no tenant', async () => {
    const piece = fc.constantFrom(';', ',', '=', 'x', 'Cert=', `Cert=${encodeURIComponent('-----BEGIN CERTIFICATE-----')}`, 'Subject=', 'Subject=O=Health', 'DNS=etl.dns.svc', `URI=${HEALTH_SPIFFE}`, 'By=', 'Hash=00', HEALTH_SPIFFE, 'etl.dns.svc');
    await fc.assert(
      fc.asyncProperty(fc.array(piece, { maxLength: 8 }), async (parts) => {
        const uri = `https://partner.example/${parts.join('')}`;
        // Envoy's element for a partner certificate (subject CN=partner,O=Partner) with that one URI SAN.
        const element = `By=${BY};Hash=${'ab'.repeat(32)};Subject="CN=partner,O=Partner";URI=${uri}`;
        let tenant: string | undefined;
        try {
          tenant = await who(element);
        } catch (err) {
          assert.ok(err instanceof PortcullisError && err.code === 'BAD_REQUEST', String(err));
          return;
        }
        assert.equal(tenant, undefined, element);
      }),
      { numRuns: 400 },
    );
  });
});

describe('property: no generated XFCC binds to a tenant its first element does not name', () => {
  // An RFC 2253 escaper written independently of dn.ts: OpenSSL's rules for ESC_2253.
  const esc = (v: string) => v.replace(/[\\,+"<>;]/g, '\\$&').replace(/^[ #]/, '\\$&').replace(/ $/, '\\ ');
  const hostile = fc.constantFrom(',', ';', '"', '\\', '=', '+', ' ', 'O=Health', 'CN=', 'URI=', HEALTH_SPIFFE, 'By=', 'a', '*', '#');
  const value = fc.array(hostile, { minLength: 1, maxLength: 8 }).map((a) => a.join('')).filter((v) => v.trim() === v && v !== '');
  const uri = fc.constantFrom(HEALTH_SPIFFE, 'spiffe://gov.example/ns/health', 'spiffe://gov.example/ns/healthz/sa/x', 'spiffe://gov.example/ns/health/../x', `${HEALTH_SPIFFE}/`, REVENUE_SPIFFE, 'spiffe://GOV.example/ns/health/x');
  const org = fc.constantFrom('Health', 'Evil', 'health');

  test('bound to dept-health only by a real valid health URI or a real [CN][O=Health] subject', async () => {
    await fc.assert(
      fc.asyncProperty(value, org, fc.array(uri, { maxLength: 2 }), fc.array(value, { maxLength: 2 }), async (cn, o, uris, extra) => {
        const subject = `CN=${esc(cn)},O=${esc(o)}`;
        const first = [`By=spiffe://c2g/ns/gw/sa/gateway`, `Subject="${subject}"`, ...uris.map((u) => `URI=${u}`)].join(';');
        const later = extra.map((e) => `By=spiffe://c2g/x;Subject="CN=${esc(e)},O=Health";URI=${HEALTH_SPIFFE}`);
        const p = await identify({ headers: { 'x-forwarded-client-cert': [first, ...later].join(',') } });
        const namesHealth = (uris.length === 1 && uris[0] === HEALTH_SPIFFE) || o.toLowerCase() === 'health';
        assert.equal(p?.tenant, namesHealth ? 'dept-health' : undefined, first);
      }),
      { numRuns: 300 },
    );
  });

  test('arbitrary header text never binds unless it holds a name the tenant admits', async () => {
    const chunk = fc.constantFrom('By=', 'URI=', 'Subject=', 'DNS=', 'Hash=', ';', ',', '"', '\\', '=', HEALTH_SPIFFE, 'CN=a', 'O=Health', 'etl.health.svc', ' ', 'x');
    await fc.assert(
      fc.asyncProperty(fc.array(chunk, { maxLength: 12 }), async (parts) => {
        const header = parts.join('');
        let p: Awaited<ReturnType<typeof identify>>;
        try {
          p = await identify({ headers: { 'x-forwarded-client-cert': header } });
        } catch (err) {
          assert.ok(err instanceof PortcullisError && err.code === 'BAD_REQUEST', String(err));
          return;
        }
        if (p) assert.ok(header.includes(HEALTH_SPIFFE) || header.includes('O=Health'), header);
        assert.notEqual(p?.tenant, 'dept-revenue', 'revenue does not trust XFCC');
      }),
      { numRuns: 500 },
    );
  });
});
