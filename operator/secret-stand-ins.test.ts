import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import { compileSources } from '../extauthz/policy/store.js';
import { sourcesFrom, type Raw } from '../kube/objects.js';
import { SecretStandIns } from './secret-stand-ins.js';

const DIGEST = '60b8c0fed3b557ab29cc53d110c099c35794335974612a9bb7b75f25cbc18c9f';
const secret = (values: Record<string, string>, name = 's'): Raw => ({
  apiVersion: 'v1', kind: 'Secret',
  metadata: { name, namespace: 't', uid: `u-${name}`, resourceVersion: '7', labels: { 'portcullis.io/revocation': 'true' }, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify(values) }, managedFields: [{ manager: 'kubectl' }] },
  data: Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Buffer.from(v).toString('base64')])),
});

const identity = { mtls: { spiffeIds: ['spiffe://x.example/*'] } };
/** One tenant per use a Secret value can have, each naming key k of Secret s. */
const tenants: Raw[] = [
  { metadata: { name: 'keys', namespace: 't', uid: 'k', generation: 1 }, spec: { type: 'partner', identity: { apiKeys: { secretRef: { name: 's' } } } } },
  { metadata: { name: 'rev', namespace: 't', uid: 'r', generation: 1 }, spec: { type: 'agency', identity, revocation: { secretRef: { name: 's', key: 'k' } } } },
  { metadata: { name: 'intro', namespace: 't', uid: 'i', generation: 1 }, spec: { type: 'consumer-app', identity: { jwt: { issuer: 'https://id.example', audiences: ['a'], jwks: { keys: [] } }, introspection: { endpoint: 'https://id.example/introspect', clientId: 'c', clientSecretRef: { name: 's', key: 'k' }, mode: 'opaque' } } } },
];

/** Every tenant's formatted problems (the status text), compiled by the engine against these Secrets. */
function verdicts(secrets: Raw[]): Record<string, string[]> {
  const r = compileSources(sourcesFrom([], tenants, secrets));
  return Object.fromEntries(['keys', 'rev', 'intro'].map((n) => [n, (r.tenantProblems.get(`t/${n}`) ?? []).map((p) => p.format())]));
}

const values: [string, string][] = [
  ['an API-key digest', DIGEST],
  ['a digest in upper case with spaces', ` ${DIGEST.toUpperCase()} `],
  ['a digest of decimal digits only (a JSON number)', '1'.repeat(64)],
  ['a digest of digits with a leading zero (not JSON)', `0${'1'.repeat(63)}`],
  ['a digest that parses as a JSON number with an exponent', `1e${'1'.repeat(62)}`],
  ['an empty value', ''],
  ['a client secret', 'hunter2-very-secret-value'],
  ['a JSON number', '12345'],
  ['a valid revocation list', '{"sub":["citizen-1984"],"jti":[{"id":"tok-1","until":"2030-01-01T00:00:00Z"}]}'],
  ['an empty list', '{}'],
  ['truncated JSON', '{"sub": ["citizen-1984"'],
  ['a list that is not an object', '["citizen-1984"]'],
  ['an unknown top-level field', '{"sub":["citizen-1984"],"users":["alice"]}'],
  ['a field that is not a list', '{"sub":"citizen-1984"}'],
  ['an empty id', '{"sub":["citizen-1984",""]}'],
  ['an id over 512 bytes', `{"jti":["${'é'.repeat(300)}"]}`],
  ['an entry with an unknown field', '{"jti":[{"id":"tok-1","who":"alice"}]}'],
  ['an entry whose id is not a string', '{"jti":[{"id":1984}]}'],
  ['an until that is not RFC 3339', '{"jti":[{"id":"tok-1","until":"next tuesday"}]}'],
  ['an until of the right shape that is no date', '{"jti":[{"id":"tok-1","until":"2026-13-45T99:00:00Z"}]}'],
  ['an until that is a number', '{"sub":[{"id":"citizen-1984","until":20300101}]}'],
  ['an entry that is a list', '{"sub":[["citizen-1984"]]}'],
];

describe('Secret stand-ins: the engine judges them as it judges the values, and they hold none of them', () => {
  const standIns = new SecretStandIns(randomBytes(32));
  for (const [name, v] of values) {
    test(name, () => {
      const original = secret({ k: v });
      const reduced = standIns.reduce(original);
      assert.deepEqual(verdicts([reduced]), verdicts([original]), 'same verdict for every use (API keys, revocation list, introspection secret)');
      const kept = JSON.stringify(reduced);
      for (const secretText of ['citizen-1984', 'tok-1', 'alice', 'hunter2', DIGEST, 'é']) {
        if (v.includes(secretText)) assert.ok(!kept.includes(secretText), `${secretText} is not kept`);
      }
    });
  }

  test('control: the comparison can fail (one fixed stand-in for every value would change verdicts)', () => {
    assert.notDeepEqual(verdicts([secret({ k: 'x' })]), verdicts([secret({ k: DIGEST })]));
    assert.notDeepEqual(verdicts([secret({ k: '{"sub":[""]}' })]), verdicts([secret({ k: '{"sub":[1]}' })]));
  });

  test('the reduced object keeps what the engine reads and drops annotations, managed fields and data', () => {
    const reduced = standIns.reduce(secret({ k: 'x' }));
    assert.deepEqual(Object.keys(reduced).sort(), ['apiVersion', 'kind', 'metadata', 'stringData']);
    assert.deepEqual(Object.keys(reduced.metadata!).sort(), ['labels', 'name', 'namespace', 'resourceVersion', 'uid']);
  });

  test('two tenants sharing an API key are still a conflict (equal digests, equal stand-ins), and a different key is not', () => {
    const both: Raw[] = ['a', 'b'].map((n) => ({ metadata: { name: n, namespace: 't', uid: n, generation: 1, creationTimestamp: `2026-01-0${n === 'a' ? 1 : 2}T00:00:00Z` }, spec: { type: 'partner', identity: { apiKeys: { secretRef: { name: n } } } } }) as unknown as Raw);
    const clash = (bDigest: string): string[] => {
      const secrets = [secret({ key1: DIGEST }, 'a'), secret({ key2: bDigest }, 'b')].map((s) => standIns.reduce(s));
      return (compileSources(sourcesFrom([], both, secrets)).tenantProblems.get('t/b') ?? []).map((p) => p.message);
    };
    assert.match(clash(DIGEST.toUpperCase()).join('\n'), /same API key/);
    assert.deepEqual(clash(DIGEST.replace(/^6/, '7')), []);
  });
});
