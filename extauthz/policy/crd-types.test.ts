import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { generateTypes, TYPES_FILE } from './gen-types.js';

test('extauthz/policy/crd-types.ts is generated from the current crds/ (run npm run gen:types)', async () => {
  assert.equal(readFileSync(TYPES_FILE, 'utf8'), await generateTypes());
});
