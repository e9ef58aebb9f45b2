import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PortcullisError } from '../../errors.js';
import { compileValid } from '../../../test/helpers/policies.js';
import { checkRequest } from '../../../test/helpers/requests.js';
import { NS, PARTNER_KEY, standardFiles } from '../../../test/helpers/fixtures.js';
import { parseCheckRequest } from '../context.js';
import { Identifier } from './index.js';

const NOW = new Date('2026-03-01T12:00:00Z');
const dir = compileValid(standardFiles('https://idp.example/jwks')).snapshot.tenants.get(NS)!;

function identify(headers: Record<string, string>): ReturnType<Identifier['identify']> {
  return new Identifier().identify(parseCheckRequest(checkRequest({ headers }), NOW), dir);
}

describe('API keys', () => {
  test('a valid key identifies the partner by key id', async () => {
    const p = await identify({ 'x-api-key': PARTNER_KEY });
    assert.equal(p?.tenant.name, 'partner-acme');
    assert.equal(p?.type, 'partner');
    assert.equal(p?.subject, 'key-1');
    assert.equal(p?.method, 'api-key');
  });

  const bad: [string, string][] = [
    ['unknown key', 'not-the-key'],
    ['the stored digest itself is not a key', '0'.repeat(64)],
    ['empty key', ''],
    ['over-long key', 'k'.repeat(600)],
  ];
  for (const [name, value] of bad) {
    test(`rejects: ${name}`, async () => {
      await assert.rejects(identify({ 'x-api-key': value }), (err: unknown) => err instanceof PortcullisError && err.code === 'INVALID_API_KEY');
    });
  }

  test('a bearer token takes precedence over an API key', async () => {
    await assert.rejects(identify({ 'x-api-key': PARTNER_KEY, authorization: 'Basic abc' }), (err: unknown) => err instanceof PortcullisError && err.code === 'INVALID_TOKEN');
  });

  test('the Secret holds only digests: the digest of the key is what is stored', () => {
    const tenant = dir.byName.get('partner-acme')!;
    assert.equal(tenant.apiKeys!.digests.length, 1);
    assert.equal(tenant.apiKeys!.digests[0]!.digest.length, 32);
  });
});
