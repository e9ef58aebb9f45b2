import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveServeConfig } from '../extauthz/config.js';
import { PortcullisError } from '../extauthz/errors.js';
import { parseOperatorArgs, type OperatorConfig } from '../operator/config.js';
import { parseNamespaces } from './namespaces.js';

test('--secret-namespaces: a comma list of namespace names, trimmed and de-duplicated; anything else is a usage error', () => {
  assert.deepEqual(parseNamespaces('--x', ' c2g, partners,,c2g '), ['c2g', 'partners']);
  for (const bad of ['C2G', 'a_b', '-a', 'a'.repeat(64), '../x']) {
    assert.throws(() => parseNamespaces('--x', bad), (e: unknown) => e instanceof PortcullisError && e.code === 'USAGE', bad);
  }
});

test('both processes take the same namespaces; the operator verifies Secrets unless told not to', () => {
  assert.deepEqual(resolveServeConfig({ policySource: 'kubernetes', secretNamespaces: 'c2g,partners' }, {}).secretNamespaces, ['c2g', 'partners']);
  assert.deepEqual(resolveServeConfig({ policySource: 'kubernetes' }, { secretNamespaces: 'c2g' }).secretNamespaces, ['c2g']);
  assert.equal(resolveServeConfig({ policySource: 'kubernetes' }, {}).secretNamespaces, undefined);
  const op = (args: string[]): OperatorConfig => parseOperatorArgs(args, {}) as OperatorConfig;
  assert.equal(op([]).verifySecrets, true);
  assert.equal(op([]).secretNamespaces, undefined);
  assert.equal(op(['--no-verify-secrets']).verifySecrets, false);
  assert.deepEqual(op(['--secret-namespaces', 'c2g,partners']).secretNamespaces, ['c2g', 'partners']);
});
