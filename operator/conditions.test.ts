import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { mergeConditions, policyConditions, statusEqual, tenantConditions } from './conditions.js';

const T0 = new Date('2026-01-01T00:00:00Z');
const T1 = new Date('2026-01-01T01:00:00Z');

describe('conditions', () => {
  test('lastTransitionTime moves only when the status flips', () => {
    const first = mergeConditions(undefined, [{ type: 'Ready', status: 'True', reason: 'Ready', message: 'ok' }], 1, T0);
    const same = mergeConditions(first, [{ type: 'Ready', status: 'True', reason: 'Ready', message: 'still ok' }], 2, T1);
    assert.equal(same[0]!.lastTransitionTime, '2026-01-01T00:00:00Z');
    assert.equal(same[0]!.observedGeneration, 2);
    const flipped = mergeConditions(same, [{ type: 'Ready', status: 'False', reason: 'Invalid', message: 'bad' }], 3, T1);
    assert.equal(flipped[0]!.lastTransitionTime, '2026-01-01T01:00:00Z');
  });

  test('statusEqual sees no change when nothing changed, and sees every field change', () => {
    const c = mergeConditions(undefined, policyConditions({ problems: [], programmed: { ok: true, reason: 'Applied', message: 'm' } }), 4, T0);
    const a = { observedGeneration: 4, conditions: c };
    assert.equal(statusEqual(a, { observedGeneration: 4, conditions: c.map((x) => ({ ...x })) }), true);
    assert.equal(statusEqual(a, { observedGeneration: 5, conditions: c }), false);
    assert.equal(statusEqual(a, { observedGeneration: 4, conditions: c.map((x) => ({ ...x, message: 'other' })) }), false);
    assert.equal(statusEqual(undefined, a), false);
  });

  const cases = [
    { name: 'compiled and applied', outcome: { problems: [], programmed: { ok: true, reason: 'Applied', message: '' } }, ready: 'True', reason: 'Ready' },
    { name: 'compile problems', outcome: { problems: ['rule x: bad CEL'] }, ready: 'False', reason: 'Invalid' },
    { name: 'apply failed', outcome: { problems: [], programmed: { ok: false, reason: 'ApplyFailed', message: 'no CRD' } }, ready: 'False', reason: 'ApplyFailed' },
  ] as const;
  for (const c of cases) {
    test(`policy conditions: ${c.name}`, () => {
      const conds = policyConditions(c.outcome as never);
      assert.deepEqual(conds.map((x) => x.type), ['Accepted', 'Programmed', 'Ready']);
      const ready = conds.find((x) => x.type === 'Ready')!;
      assert.equal(ready.status, c.ready);
      assert.equal(ready.reason, c.reason);
    });
  }

  test('tenant conditions carry the problems', () => {
    const [accepted] = tenantConditions(['jwks must hold public keys only']);
    assert.equal(accepted!.status, 'False');
    assert.match(accepted!.message, /public keys/);
  });
});
