/**
 * Shadow mode: shadow policies and shadow rules never change a decision (each request is decided
 * exactly as without them, compared field by field), their would-be denials are recorded, and
 * their quotas are peeked, never charged.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Pseudonymizer } from '../audit/pseudonym.js';
import { decisionFields } from '../audit/record.js';
import { ServiceMetrics } from '../server/metrics.js';
import { MemoryBackend } from '../quota/memory-backend.js';
import { QuotaEnforcer } from '../quota/phase.js';
import { compileValid } from '../../test/helpers/policies.js';
import { bearer, checkRequest, type RequestSpec } from '../../test/helpers/requests.js';
import type { Decision } from './decision.js';
import { DecisionPipeline } from './pipeline.js';
import { DeadlineExceeded } from './deadline.js';

const NOW = new Date('2026-03-01T12:00:00Z');
const REVENUE = 'spiffe://gov.example/ns/revenue/sa/app';
const HEALTH = 'spiffe://gov.example/ns/health/sa/app';

const TENANTS = `apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: revenue, namespace: s }
spec:
  type: agency
  identity: { mtls: { spiffeIds: ["spiffe://gov.example/ns/revenue/*"] } }
  quotas:
    - { name: daily, limit: 3, per: 24h, algorithm: fixed-window, key: tenant }
---
apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: health, namespace: s }
spec:
  type: agency
  identity: { mtls: { spiffeIds: ["spiffe://gov.example/ns/health/*"] } }
---
apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: citizens, namespace: s }
spec:
  type: consumer-app
  identity: { jwt: { issuer: https://id.example, audiences: [api], jwks: { keys: [{ kty: EC, crv: P-256, x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" }] } } }
`;

/** The policies; without `shadow`, the same set with every shadow rule and shadow policy left out. */
function policies(shadow: boolean): string {
  const shadowRules = shadow
    ? `
    - { name: stricter, effect: deny, shadow: true, paths: ["/v1/items/secret/**"] }
    - { name: open-writes, shadow: true, methods: [POST], paths: ["/v1/items/**"], principals: { types: [agency] } }`
    : '';
  const shadowPolicies = shadow
    ? `---
apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: beta-next, namespace: s }
spec:
  mode: shadow
  hosts: [beta.example]
  rules:
    - { name: revenue-only, methods: [GET], paths: ["/v1/**"], principals: { tenants: [revenue] }, quotas: [{ name: daily }] }
---
apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: dark, namespace: s }
spec:
  mode: shadow
  hosts: [dark.example]
  defaultAction: allow
  rules:
    - { name: public, methods: [GET], principals: { anonymous: true } }
    - { name: revenue-counted, methods: [POST], principals: { tenants: [revenue] }, quotas: [{ name: daily }] }
`
    : '';
  return `apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: live, namespace: s }
spec:
  hosts: [live.example]
  rules:
    - { name: read, methods: [GET], paths: ["/v1/items/**"], principals: { types: [agency] }, quotas: [{ name: daily }], mask: [{ field: "$.taxId", action: redact }] }${shadowRules}
---
apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: beta, namespace: s }
spec:
  hosts: [beta.example]
  rules:
    - { name: read, methods: [GET], paths: ["/v1/**"], principals: { types: [agency] } }
${shadowPolicies}`;
}

function snapshotOf(shadow: boolean): ReturnType<typeof compileValid>['snapshot'] {
  return compileValid({ 'tenants.yaml': TENANTS, 'policies.yaml': policies(shadow) }).snapshot;
}

function pipeline(shadow: boolean, backend = new MemoryBackend({ clock: () => NOW.getTime() })): DecisionPipeline {
  const snapshot = snapshotOf(shadow);
  return new DecisionPipeline({ snapshot: () => snapshot, clock: () => NOW, quota: new QuotaEnforcer({ backend }) });
}

function req(spec: RequestSpec): ReturnType<typeof checkRequest> {
  return checkRequest({ ...spec, headers: { 'x-request-id': 'req-1', ...(spec.headers ?? {}) } });
}

type Expect = { allowed: boolean; code: string | null; rule?: string };
type ShadowExpect = { allowed: boolean; code: string | null; rule: string | null; policy: string };

const CASES: [string, RequestSpec, Expect, ShadowExpect][] = [
  ['shadow rules that agree', { host: 'live.example', path: '/v1/items/1', principal: REVENUE }, { allowed: true, code: null, rule: 'read' }, { allowed: true, code: null, rule: 'read', policy: 's/live' }],
  ['a shadow deny rule would deny an allowed request', { host: 'live.example', path: '/v1/items/secret/1', principal: REVENUE }, { allowed: true, code: null, rule: 'read' }, { allowed: false, code: 'FORBIDDEN', rule: 'stricter', policy: 's/live' }],
  ['a shadow allow rule does not allow what the enforcing rules deny', { host: 'live.example', method: 'POST', path: '/v1/items/1', principal: REVENUE }, { allowed: false, code: 'FORBIDDEN' }, { allowed: true, code: null, rule: 'open-writes', policy: 's/live' }],
  ['anonymous: both deny', { host: 'live.example', path: '/v1/items/1' }, { allowed: false, code: 'UNAUTHENTICATED' }, { allowed: false, code: 'UNAUTHENTICATED', rule: null, policy: 's/live' }],
  ['a bad token: identify fails for both', { host: 'live.example', path: '/v1/items/1', headers: bearer('not.a.token') }, { allowed: false, code: 'INVALID_TOKEN' }, { allowed: false, code: 'INVALID_TOKEN', rule: null, policy: 's/live' }],
  ['a shadow policy would deny another tenant', { host: 'beta.example', path: '/v1/x', principal: HEALTH }, { allowed: true, code: null, rule: 'read' }, { allowed: false, code: 'FORBIDDEN', rule: null, policy: 's/beta-next' }],
  ['a shadow policy that agrees', { host: 'beta.example', path: '/v1/x', principal: REVENUE }, { allowed: true, code: null, rule: 'read' }, { allowed: true, code: null, rule: 'revenue-only', policy: 's/beta-next' }],
  ['a shadow policy alone on its host opens nothing (default deny)', { host: 'dark.example', path: '/anything' }, { allowed: false, code: 'NO_POLICY' }, { allowed: true, code: null, rule: 'public', policy: 's/dark' }],
  ['a shadow policy alone on its host: its own path handling', { host: 'dark.example', path: '/a;b=c' }, { allowed: false, code: 'NO_POLICY' }, { allowed: false, code: 'BAD_REQUEST', rule: null, policy: 's/dark' }],
];

/** The decision with the fields shadow mode may add (and the timing) left out. */
function applied(d: Decision): unknown {
  const copy = structuredClone(d);
  delete copy.shadow;
  delete copy.audit.wouldDeny;
  delete copy.audit.latencyMs;
  return copy;
}

void describe('shadow mode: decisions', () => {
  for (const [name, spec, expect, shadow] of CASES) {
    test(name, async () => {
      const d = await pipeline(true).check(req(spec), { now: NOW });
      assert.deepEqual({ allowed: d.allowed, code: d.code, ...(expect.rule ? { rule: d.rule } : {}) }, expect, d.reason);
      assert.ok(d.shadow, 'the shadow evaluation ran');
      assert.deepEqual({ allowed: d.shadow.allowed, code: d.shadow.code, rule: d.shadow.rule, policy: d.shadow.policy }, shadow, d.shadow.reason);
      if (shadow.allowed) assert.equal(d.audit.wouldDeny, undefined);
      else assert.deepEqual(d.audit.wouldDeny, { policy: shadow.policy, rule: shadow.rule, code: shadow.code, status: d.shadow.status });
      // Unchanged: the same request without any shadow policy or rule gets exactly this decision.
      const without = await pipeline(false).check(req(spec), { now: NOW });
      assert.equal(without.shadow, undefined);
      assert.deepEqual(applied(d), applied(without));
    });
  }

  test('policies without shadow rules carry no shadow view, and their decisions no shadow outcome', async () => {
    const snap = snapshotOf(true);
    assert.equal(snap.byKey.get('s/beta')!.shadowView, undefined);
    assert.ok(snap.byKey.get('s/live')!.shadowView);
    assert.equal(snap.byKey.get('s/live')!.allowRules.map((r) => r.name).join(), 'read');
    assert.equal(snapshotOf(false).hasShadowPolicies, false);
    const d = await pipeline(false).check(req({ host: 'beta.example', path: '/v1/x', principal: HEALTH }), { now: NOW });
    assert.equal(d.shadow, undefined);
  });

  test('a context extension naming a shadow policy never makes it decide', async () => {
    const d = await pipeline(true).check(req({ host: 'dark.example', path: '/x', contextExtensions: { 'portcullis.io/policy': 's/dark' } }), { now: NOW });
    assert.equal(d.code, 'NO_POLICY');
    assert.equal(d.shadow?.rule, 'public');
  });

  test('explain names the failing part of a shadow condition', async () => {
    const d = await pipeline(true).check(req({ host: 'beta.example', path: '/v1/x', principal: HEALTH }), { now: NOW, explain: true });
    assert.deepEqual(d.shadow?.trace.map((t) => [t.rule, t.reason]), [['revenue-only', 'tenant health not listed']]);
  });
});

void describe('shadow mode: quotas are computed, not charged', () => {
  test('a shadow policy sees the counters enforcement charges, and charges none itself', async () => {
    const backend = new MemoryBackend({ clock: () => NOW.getTime() });
    const p = pipeline(true, backend);
    const out: [boolean, string | null][] = [];
    for (let i = 0; i < 4; i++) {
      const d = await p.check(req({ host: 'live.example', path: '/v1/items/1', principal: REVENUE }), { now: NOW });
      out.push([d.allowed, d.audit.wouldDeny?.code ?? null]);
    }
    // daily = 3: the shadow view peeks before this request's charge, so both agree at the limit;
    // had the shadow evaluation charged too, the second request would already be refused.
    assert.deepEqual(out, [[true, null], [true, null], [true, null], [false, 'QUOTA_EXCEEDED']]);
    assert.equal(backend.size, 1);
  });

  test('a shadow policy alone on its host: every request denied, the shadow quota never charged', async () => {
    const backend = new MemoryBackend({ clock: () => NOW.getTime() });
    const p = pipeline(true, backend);
    for (let i = 0; i < 5; i++) {
      const d = await p.check(req({ host: 'dark.example', method: 'POST', path: '/x', principal: REVENUE }), { now: NOW });
      assert.equal(d.code, 'NO_POLICY');
      assert.deepEqual([d.shadow?.allowed, d.shadow?.rule], [true, 'revenue-counted']);
    }
    assert.equal(backend.size, 0, 'no counter was written');
  });
});

void describe('shadow mode: audit record and metric', () => {
  test('the audit record carries wouldDeny; the decision stays allow', async () => {
    const d = await pipeline(true).check(req({ host: 'live.example', path: '/v1/items/secret/1', principal: REVENUE }), { now: NOW });
    const f = decisionFields(d, undefined, Pseudonymizer.ephemeral(), 'cli');
    assert.equal(f.decision, 'allow');
    assert.deepEqual(f.wouldDeny, { policy: 's/live', rule: 'stricter', code: 'FORBIDDEN', status: 403 });
    const plain = decisionFields(await pipeline(true).check(req({ host: 'live.example', path: '/v1/items/1', principal: REVENUE }), { now: NOW }), undefined, Pseudonymizer.ephemeral(), 'cli');
    assert.equal('wouldDeny' in plain, false, 'records without a would-be denial are unchanged');
  });

  test('would-be denials are counted by policy, rule, code and tenant', async () => {
    const m = new ServiceMetrics(false);
    const p = pipeline(true);
    for (const spec of [{ host: 'live.example', path: '/v1/items/secret/1', principal: REVENUE }, { host: 'beta.example', path: '/v1/x', principal: HEALTH }, { host: 'live.example', path: '/v1/items/1', principal: REVENUE }]) {
      m.countDecision(await p.check(req(spec), { now: NOW }));
    }
    const text = await m.registry.metrics();
    assert.match(text, /portcullis_shadow_would_deny_total\{policy="s\/live",rule="stricter",code="FORBIDDEN",tenant="revenue"\} 1/);
    assert.match(text, /portcullis_shadow_would_deny_total\{policy="s\/beta-next",rule="\(default\)",code="FORBIDDEN",tenant="health"\} 1/);
    assert.equal(text.match(/^portcullis_shadow_would_deny_total\{/gm)?.length, 2);
  });
});

void describe('shadow mode: host claims', () => {
  test('two shadow policies may not claim the same host and path (an enforcing and a shadow one may)', async () => {
    const { compileYaml } = await import('../../test/helpers/policies.js');
    const twin = policies(true).replace(/name: beta-next/, 'name: beta-next-2').split('---\n').find((d) => d.includes('beta-next-2'))!;
    const c = compileYaml({ 'tenants.yaml': TENANTS, 'policies.yaml': `${policies(true)}---\n${twin}` });
    assert.deepEqual(c.problems.map((p) => p.code), ['POLICY_CONFLICT']);
    assert.match(c.problems[0]!.message, /already claimed by the older shadow policy s\/beta-next/);
  });
});

void describe('shadow mode: a slow shadow never changes the decision', () => {
  // Without the shadow's own deadline the peek would hang the Check: the timeout turns that into a failure.
  test('a shadow quota peek that outlives the shadow deadline is abandoned; the Check is decided as without it', { timeout: 10_000 }, async () => {
    const snapshot = snapshotOf(true);
    const enforcer = new QuotaEnforcer({ backend: new MemoryBackend({ clock: () => NOW.getTime() }) });
    let peeked = false;
    // A peek that answers only when its signal aborts (a Redis round trip that hangs).
    const quota = {
      charge: (r: Parameters<typeof enforcer.charge>[0]) => enforcer.charge(r),
      peek: (r: Parameters<typeof enforcer.charge>[0]) => {
        peeked = true;
        return new Promise<never>((_, reject) => {
          const fail = (): void => reject(new DeadlineExceeded('peeking'));
          if (r.signal?.aborted) fail();
          else r.signal?.addEventListener('abort', fail, { once: true });
        });
      },
    };
    const p = new DecisionPipeline({ snapshot: () => snapshot, clock: () => NOW, quota });
    const check = new AbortController();
    const shadow = new AbortController();
    const pending = p.check(req({ host: 'live.example', path: '/v1/items/1', principal: REVENUE }), { now: NOW, signal: check.signal, shadowSignal: shadow.signal });
    shadow.abort();
    const d = await pending;
    assert.deepEqual([d.allowed, d.code, d.rule], [true, null, 'read'], d.reason);
    assert.equal(peeked, true, 'the shadow reached its quota peek');
    assert.equal(d.shadow?.code, 'DEADLINE_EXCEEDED');
    assert.equal(check.signal.aborted, false);
  });
});
