import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { compilePolicyMasking, masksFor } from './policy.js';
import type { ApiPolicySpec } from '../policy/model.js';

const spec = (over: Partial<ApiPolicySpec>): ApiPolicySpec => ({ hosts: ['r.example'], rules: [{ name: 'r' }], ...over }) as ApiPolicySpec;

describe('policy masking compile', () => {
  test('an invalid field is reported at /spec/rules/N/mask/M/field', () => {
    const m = compilePolicyMasking(spec({ rules: [{ name: 'a' }, { name: 'b', mask: [{ field: '$.ok', action: 'remove' }, { field: '$.[', action: 'remove' }] }] }), {});
    assert.deepEqual(m.problems.map((p) => [p.code, p.location.path, p.location.rule]), [['POLICY_INVALID', '/spec/rules/1/mask/1/field', 'b']]);
  });

  test('an invalid defaultMask is reported at /spec/defaultMask/M/field', () => {
    const m = compilePolicyMasking(spec({ defaultMask: [{ field: 'name', action: 'remove' }] }), {});
    assert.equal(m.problems[0]?.location.path, '/spec/defaultMask/0/field');
  });

  test('detail without when is refused', () => {
    const m = compilePolicyMasking(spec({ rules: [{ name: 'x', detail: true }] }), {});
    assert.equal(m.problems[0]?.location.path, '/spec/rules/0/detail');
  });

  const s = spec({
    defaultMask: [{ field: '$..name', action: 'remove' }],
    rules: [
      { name: 'plain', mask: [{ field: '$.taxId', action: 'partial', keepLast: 4 }] },
      { name: 'detailed', when: "request.headers['x-purpose-of-use'] == 'tax-audit'", detail: true },
      { name: 'no', effect: 'deny' },
    ],
  });
  const m = compilePolicyMasking(s, {});
  const table: [string, number, 'agency' | 'consumer' | undefined, string[] | undefined][] = [
    ['consumers get the rule masks only', 0, 'consumer', ['$.taxId partial']],
    ['agencies without detail get the rule masks plus defaultMask', 0, 'agency', ['$.taxId partial', '$..name remove']],
    ['agencies on a detail rule get no defaultMask', 1, 'agency', []],
    ['anonymous callers get the rule masks', 0, undefined, ['$.taxId partial']],
    ['deny rules carry none', 2, 'agency', undefined],
  ];
  for (const [name, i, type, expected] of table) test(name, () => assert.deepEqual(masksFor(m.rules[i], type)?.summary, expected));
});
