import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { controllerReport, mergeConditions, policyConditions, programmedVerdict, statusEqual, tenantConditions, type TenantSecrets } from './conditions.js';

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
    const c = mergeConditions(undefined, policyConditions({ problems: [], programmed: { status: 'True', reason: 'Applied', message: 'm' } }), 4, T0);
    const a = { observedGeneration: 4, conditions: c };
    assert.equal(statusEqual(a, { observedGeneration: 4, conditions: c.map((x) => ({ ...x })) }), true);
    assert.equal(statusEqual(a, { observedGeneration: 5, conditions: c }), false);
    assert.equal(statusEqual(a, { observedGeneration: 4, conditions: c.map((x) => ({ ...x, message: 'other' })) }), false);
    assert.equal(statusEqual(undefined, a), false);
  });

  const cases = [
    { name: 'compiled and programmed', outcome: { problems: [], programmed: { status: 'True', reason: 'Applied', message: '' } }, ready: 'True', reason: 'Ready' },
    { name: 'compile problems', outcome: { problems: ['rule x: bad CEL'] }, ready: 'False', reason: 'Invalid' },
    { name: 'apply failed', outcome: { problems: [], programmed: { status: 'False', reason: 'ApplyFailed', message: 'no CRD' } }, ready: 'False', reason: 'ApplyFailed' },
    { name: 'no controller has reported', outcome: { problems: [], programmed: { status: 'Unknown', reason: 'AwaitingEnvoyGateway', message: '' } }, ready: 'Unknown', reason: 'AwaitingEnvoyGateway' },
    { name: 'compile problems win over an unknown programming', outcome: { problems: ['x'], programmed: { status: 'Unknown', reason: 'AwaitingEnvoyGateway', message: '' } }, ready: 'False', reason: 'Invalid' },
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

  const sp = 'SecurityPolicy/portcullis-p';
  const verdicts = [
    { name: 'all applied, no Envoy Gateway objects', facts: { problems: [], objects: ['AuthorizationPolicy/a'], controller: [] }, status: 'True', reason: 'Applied' },
    { name: 'apply failure first', facts: { applyFailure: 'x not installed', problems: [{ reason: 'TargetNotFound', message: 'm' }], objects: [], controller: [] }, status: 'False', reason: 'ApplyFailed' },
    { name: 'translation problem', facts: { problems: [{ reason: 'ReferenceGrantMissing', message: 'm' }, { reason: 'TargetNotFound', message: 'n' }], objects: [sp], controller: [] }, status: 'False', reason: 'ReferenceGrantMissing' },
    { name: 'Envoy Gateway rejected', facts: { problems: [], objects: [sp], controller: [{ object: sp, accepted: 'False', message: 'backend not allowed' }] }, status: 'False', reason: 'RejectedByEnvoyGateway' },
    { name: 'Envoy Gateway silent', facts: { problems: [], objects: [sp], controller: [{ object: sp, accepted: 'Unknown', message: '' }] }, status: 'Unknown', reason: 'AwaitingEnvoyGateway' },
    { name: 'Envoy Gateway accepted', facts: { problems: [], objects: [sp], controller: [{ object: sp, accepted: 'True', message: '' }] }, status: 'True', reason: 'Applied' },
  ] as const;
  for (const v of verdicts) {
    test(`programmed: ${v.name}`, () => {
      const got = programmedVerdict(v.facts as never);
      assert.equal(got.status, v.status);
      assert.equal(got.reason, v.reason);
    });
  }

  const accepted = (status: string, message = ''): unknown => ({ type: 'Accepted', status, message });
  const reports = [
    { name: 'no status', status: undefined, want: 'Unknown' },
    { name: 'no ancestors yet', status: { ancestors: [] }, want: 'Unknown' },
    { name: 'an ancestor without Accepted', status: { ancestors: [{ conditions: [] }] }, want: 'Unknown' },
    { name: 'accepted by every ancestor', status: { ancestors: [{ conditions: [accepted('True')] }, { conditions: [accepted('True')] }] }, want: 'True' },
    { name: 'refused by one ancestor', status: { ancestors: [{ conditions: [accepted('True')] }, { conditions: [accepted('False', 'no ReferenceGrant')] }] }, want: 'False' },
  ];
  for (const r of reports) {
    test(`Envoy Gateway status: ${r.name}`, () => assert.equal(controllerReport(sp, r.status).accepted, r.want));
  }

  test('tenant conditions carry the problems', () => {
    const [accepted] = tenantConditions(['jwks must hold public keys only']);
    assert.equal(accepted!.status, 'False');
    assert.match(accepted!.message, /public keys/);
  });

  const refs = ['Secret c2g/acme-keys (apiKeys)', 'Secret c2g/acme-revoked key list.json (revocation)'];
  const tenantCases: { name: string; problems: string[]; secrets?: TenantSecrets; want: Record<string, [string, string]> }[] = [
    { name: 'names no Secret: Accepted and Ready, no SecretsVerified', problems: [], want: { Accepted: ['True', 'Valid'], Ready: ['True', 'Ready'] } },
    { name: 'Secrets verified', problems: [], secrets: { refs, verified: true }, want: { Accepted: ['True', 'Valid'], SecretsVerified: ['True', 'Verified'], Ready: ['True', 'Ready'] } },
    { name: 'a Secret missing', problems: ['/spec/revocation: POLICY_INVALID: revocation.secretRef: Secret c2g/acme-revoked not found'], secrets: { refs, verified: true, problem: 'SecretNotFound' }, want: { Accepted: ['False', 'SecretNotFound'], SecretsVerified: ['False', 'SecretNotFound'], Ready: ['False', 'SecretNotFound'] } },
    { name: 'refused for another reason first: Secrets not checked', problems: ['/spec/identity: POLICY_INVALID: jwks must hold public keys only'], secrets: { refs, verified: true }, want: { Accepted: ['False', 'Invalid'], SecretsVerified: ['Unknown', 'NotChecked'], Ready: ['False', 'Invalid'] } },
    { name: 'verification off: never Ready=True', problems: [], secrets: { refs, verified: false }, want: { Accepted: ['True', 'Valid'], SecretsVerified: ['Unknown', 'NotVerified'], Ready: ['Unknown', 'SecretsNotVerified'] } },
    { name: 'verification off and the spec refused: Ready=False', problems: ['/spec/identity: POLICY_INVALID: x'], secrets: { refs, verified: false }, want: { Accepted: ['False', 'Invalid'], SecretsVerified: ['Unknown', 'NotVerified'], Ready: ['False', 'Invalid'] } },
  ];
  for (const c of tenantCases) {
    test(`tenant conditions: ${c.name}`, () => {
      const got = tenantConditions(c.problems, c.secrets ? { secrets: c.secrets } : {});
      assert.deepEqual(Object.fromEntries(got.map((x) => [x.type, [x.status, x.reason]])), c.want);
      const secretsVerified = got.find((x) => x.type === 'SecretsVerified');
      if (secretsVerified?.status === 'False') assert.match(secretsVerified.message, /Secret c2g\/acme-revoked/);
      else if (secretsVerified) assert.match(secretsVerified.message, /Secret c2g\/acme-keys \(apiKeys\), Secret c2g\/acme-revoked key list\.json \(revocation\)/);
    });
  }
});
