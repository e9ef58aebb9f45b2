/**
 * Done when: a consumer and an agency request for the same record, run through ext_authz and
 * then ext_proc (both over real gRPC, with the examples/masking policies), come back masked as
 * the policy says.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { authorizationService } from '../../proto/envoy.js';
import { AuthorizationService } from '../../extauthz/server/authorization.js';
import { DecisionPipeline } from '../../extauthz/pipeline/pipeline.js';
import { ExternalProcessorService } from '../../extauthz/extproc/service.js';
import { DirectiveIssuer, DirectiveVerifier, MaskKey } from '../../extauthz/masking/token.js';
import { compileYaml } from '../helpers/policies.js';
import { generateKey, mintToken } from '../helpers/keys.js';
import { JwksServer } from '../helpers/jwks-server.js';
import { checkRequest } from '../helpers/requests.js';
import { bodyOf, ExtProcClient, headers } from './extproc-client.js';

const DIR = join(process.cwd(), 'examples', 'masking');
const RECORD = readFileSync(join(DIR, 'record-1984.json'), 'utf8');
const hashKey = Buffer.alloc(32, 7);
type Msg = Record<string, unknown>;
type Rec = { name: string; ssn: string; records: { taxId: string; dependants: { ssn: string }[] }[] };

describe('consumer and agency read the same record through ext_authz then ext_proc', () => {
  let server: grpc.Server;
  let jwks: JwksServer;
  let check: (req: unknown) => Promise<Msg>;
  let extproc: ExtProcClient;
  let authClient: grpc.Client;
  let token: string;

  before(async () => {
    const key = await generateKey('ES256');
    jwks = await new JwksServer([key.publicJwk]).start();
    const files: Record<string, string> = {};
    for (const f of readdirSync(join(DIR, 'policies'))) files[f] = readFileSync(join(DIR, 'policies', f), 'utf8').replace('http://127.0.0.1:8089/.well-known/jwks.json', jwks.url);
    const compiled = compileYaml(files);
    assert.deepEqual([...compiled.loadProblems, ...compiled.problems].map((p) => p.format()), []);
    const signing = MaskKey.generate();
    server = new grpc.Server();
    new AuthorizationService(new DecisionPipeline({ snapshot: () => compiled.snapshot, directives: new DirectiveIssuer(signing) })).addToServer(server);
    new ExternalProcessorService({ verifier: new DirectiveVerifier(signing), hashKey }).addToServer(server);
    const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
    const Auth = grpc.makeClientConstructor(authorizationService(), 'Authorization');
    authClient = new Auth(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    const c = authClient as unknown as { Check: (r: unknown, cb: (e: Error | null, m: Msg) => void) => void };
    check = (req) => new Promise((res, rej) => c.Check(req, (e, m) => (e ? rej(e) : res(m))));
    extproc = new ExtProcClient(port);
    token = await mintToken(key, { iss: 'https://id.c2g.example', aud: 'records-api', sub: '1984', claims: { amr: ['mfa'] } });
  });
  after(async () => {
    extproc.close();
    authClient.close();
    server.forceShutdown();
    await jwks.close();
  });

  /** What Envoy does: Check, apply the OK response's headers, then run ext_proc with the upstream's answer. */
  async function fetchRecord(reqHeaders: Record<string, string>, principal?: string): Promise<unknown> {
    const rid = reqHeaders['x-request-id']!;
    const res = await check(checkRequest({ host: 'records.c2g.example', path: '/v1/citizens/1984/records', headers: reqHeaders, ...(principal ? { principal } : {}) }));
    const ok = res.okResponse as { headers: { header: { key: string; value: string } }[] } | undefined;
    assert.ok(ok, `denied: ${JSON.stringify(res.status)}`);
    const upstream: Record<string, string> = { ...reqHeaders };
    for (const h of ok.headers) upstream[h.header.key] = h.header.value;
    const metadataContext = { filterMetadata: { 'envoy.filters.http.ext_authz': res.dynamicMetadata } };
    const r = await extproc.exchange([
      { requestHeaders: headers({ ...upstream, 'x-request-id': rid }, true), metadataContext },
      { responseHeaders: headers({ ':status': '200', 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(RECORD)) }) },
      { responseBody: { body: Buffer.from(RECORD), endOfStream: true } },
    ]);
    return JSON.parse(bodyOf(r[2]) ?? 'null');
  }

  test('the citizen sees their record with the tax id and SSNs shortened', async () => {
    const body = (await fetchRecord({ authorization: `Bearer ${token}`, 'x-request-id': 'e2e-consumer' })) as Rec;
    assert.equal(body.name, 'Ada Lovelace');
    assert.equal(body.ssn, '*******1120');
    assert.deepEqual(body.records.map((r) => r.taxId), ['********6789', '********6789']);
    assert.equal(body.records[0]!.dependants[0]!.ssn, '*******9999');
  });

  test('the agency without a detail purpose gets the minimised, anonymised record', async () => {
    const body = await fetchRecord({ 'x-purpose-of-use': 'statistics', 'x-request-id': 'e2e-agency-stats' }, 'spiffe://gov.example/ns/revenue/sa/auditor');
    assert.deepEqual(body, { dateOfBirth: '1985', address: { postcode: '10' }, records: [{ year: 2024, income: '[40000,50000)' }, { year: 2025, income: '[50000,60000)' }] });
  });

  test('the agency on a declared tax audit gets the detailed record, SSNs shortened', async () => {
    const body = (await fetchRecord({ 'x-purpose-of-use': 'tax-audit', 'x-request-id': 'e2e-agency-audit' }, 'spiffe://gov.example/ns/revenue/sa/auditor')) as Rec;
    assert.equal(body.name, 'Ada Lovelace');
    assert.equal(body.records[0]!.taxId, 'AT-123456789');
    assert.equal(body.ssn, '*******1120');
  });

});
