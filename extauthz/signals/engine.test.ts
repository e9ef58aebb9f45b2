/**
 * Every signal at, below and above its threshold on an injected clock (no sleeps), one alert per
 * key and window, the per-minute alert cap, and the memory bounds under a spray of keys.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import type { ErrorCode } from '../errors.js';
import type { TenantSpec } from '../policy/model.js';
import { compileTenant, JwksCache } from '../policy/tenants.js';
import { ALERT_DEFAULTS } from '../policy/alerts.js';
import type { Decision } from '../pipeline/decision.js';
import type { Principal } from '../pipeline/principal.js';
import type { Alert } from './alert.js';
import { INVALID_CREDENTIAL_CODES, INVALID_CREDENTIALS_DEFAULTS, SignalEngine, type SignalEngineOptions } from './engine.js';
import { clientNetwork } from './network.js';

const T0 = Date.parse('2026-12-01T10:00:00Z');
const SEC = 1000;

function tenant(name: string, type: TenantSpec['type'], alerts?: TenantSpec['alerts']): Principal['tenant'] {
  const spec: TenantSpec = { type, identity: { mtls: { spiffeIds: [`spiffe://gov.example/ns/${name}/*`] } }, ...(alerts ? { alerts } : {}) };
  return compileTenant({ kind: 'Tenant', metadata: { name, namespace: 'gov' }, spec, origin: {} }, new Map(), new JwksCache());
}

function principal(t: Principal['tenant'], subject: string): Principal {
  return { type: t.principalType, tenant: t, subject, method: 'mtls', claims: {}, spiffeId: subject, mfa: false };
}

let n = 0;
function decision(code: ErrorCode | null, sourceIp = '198.51.100.7'): Decision {
  return {
    requestId: `req-${n++}`, allowed: code === null, status: code === null ? 200 : 403, code, reason: '', headers: {}, removeHeaders: [], responseHeaders: {}, metadata: {}, trace: [],
    audit: { method: 'GET', host: 'h', pathTemplate: '/v1/citizens/{id}', sourceIp },
  };
}

function engine(extra: SignalEngineOptions = {}): { e: SignalEngine; alerts: Alert[]; recorded: Alert[] } {
  const alerts: Alert[] = [];
  const recorded: Alert[] = [];
  const e = new SignalEngine({ onAlert: (a) => alerts.push(a), sink: { recordAlert: (a) => (recorded.push(a), Promise.resolve()) }, ...extra });
  return { e, alerts, recorded };
}

describe('invalid credentials from one client network', () => {
  const { count, windowSeconds } = INVALID_CREDENTIALS_DEFAULTS;
  test('the codes counted: presented credentials that fail, not missing ones or missing MFA', () => {
    assert.deepEqual([...INVALID_CREDENTIAL_CODES].sort(), ['AMBIGUOUS_PRINCIPAL', 'INVALID_API_KEY', 'INVALID_TOKEN', 'REVOKED', 'TOKEN_INACTIVE', 'UNKNOWN_CLIENT_CERT', 'UNKNOWN_ISSUER'].sort());
  });

  test('one below the threshold: no alert; at it: one alert for the /24, with no address in it', () => {
    const { e, alerts } = engine();
    for (let i = 0; i < count - 1; i++) e.observe(decision('INVALID_TOKEN', `203.0.113.${i % 200}`), undefined, undefined, T0 + i);
    assert.equal(alerts.length, 0);
    e.observe(decision('INVALID_API_KEY', '203.0.113.250'), undefined, undefined, T0 + count);
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0]!.network, '203.0.113.0/24');
    assert.equal(alerts[0]!.count, count);
    assert.equal(alerts[0]!.threshold, count);
    assert.equal(alerts[0]!.windowSeconds, windowSeconds);
    // More in the same window: still one alert.
    for (let i = 0; i < 3 * count; i++) e.observe(decision('INVALID_TOKEN', '203.0.113.9'), undefined, undefined, T0 + count + i);
    assert.equal(alerts.length, 1);
  });

  test('the same count spread over two windows, or over two networks, raises nothing', () => {
    const { e, alerts } = engine();
    const half = Math.ceil(count / 2);
    for (let i = 0; i < half; i++) e.observe(decision('INVALID_TOKEN', '192.0.2.1'), undefined, undefined, T0);
    for (let i = 0; i < half; i++) e.observe(decision('INVALID_TOKEN', '192.0.2.1'), undefined, undefined, T0 + windowSeconds * SEC);
    for (let i = 0; i < count - 1; i++) e.observe(decision('INVALID_TOKEN', '192.0.3.1'), undefined, undefined, T0);
    for (let i = 0; i < count - 1; i++) e.observe(decision('INVALID_TOKEN', '192.0.4.1'), undefined, undefined, T0);
    assert.equal(alerts.length, 0);
  });

  test('no credentials, MFA missing, or a policy deny are not invalid credentials', () => {
    const { e, alerts } = engine();
    for (let i = 0; i < 2 * count; i++) {
      e.observe(decision('UNAUTHENTICATED'), undefined, undefined, T0);
      e.observe(decision('FORBIDDEN'), undefined, undefined, T0);
      e.observe(decision('MFA_REQUIRED'), undefined, undefined, T0);
    }
    assert.equal(alerts.length, 0);
  });

  test('a new window raises a new alert', () => {
    const { e, alerts } = engine({ invalidCredentials: { count: 3, windowSeconds: 10 } });
    for (let i = 0; i < 3; i++) e.observe(decision('INVALID_TOKEN'), undefined, undefined, T0 + i);
    assert.equal(alerts.length, 1);
    for (let i = 0; i < 3; i++) e.observe(decision('INVALID_TOKEN'), undefined, undefined, T0 + 10 * SEC + i);
    assert.equal(alerts.length, 2);
    assert.equal(alerts[1]!.windowStart.getTime(), T0 + 10 * SEC);
  });

  test('IPv6 groups by /64: rotating addresses inside one /64 is one network', () => {
    const { e, alerts } = engine({ invalidCredentials: { count: 5, windowSeconds: 60 } });
    for (let i = 0; i < 5; i++) e.observe(decision('INVALID_TOKEN', `2001:db8:1:2::${(i + 1).toString(16)}`), undefined, undefined, T0);
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0]!.network, '2001:db8:1:2::/64');
    for (let i = 0; i < 4; i++) e.observe(decision('INVALID_TOKEN', `2001:db8:1:${i + 3}::1`), undefined, undefined, T0);
    assert.equal(alerts.length, 1);
  });
});

describe('clientNetwork', () => {
  test('prefixes, never addresses', () => {
    assert.equal(clientNetwork('10.1.2.3'), '10.1.2.0/24');
    assert.equal(clientNetwork('::ffff:10.1.2.3'), '10.1.2.0/24');
    assert.equal(clientNetwork('2001:DB8:0001:0002:3:4:5:6'), '2001:db8:1:2::/64');
    assert.equal(clientNetwork('2001:db8::1'), '2001:db8:0:0::/64');
    assert.equal(clientNetwork('::1'), '0:0:0:0::/64');
    assert.equal(clientNetwork(''), null);
    assert.equal(clientNetwork('not-an-ip'), null);
  });
});

describe('deny rate of one principal', () => {
  const d = ALERT_DEFAULTS.denyRate;
  test(`defaults: ${d.minDenies} denies at a ratio of ${d.ratio} or more raise one alert`, () => {
    const t = tenant('revenue', 'agency');
    const p = principal(t, 'spiffe://gov.example/ns/revenue/sa/a');
    const { e, alerts } = engine();
    // Equal allows and denies: ratio exactly 0.5, reached at the minDenies-th deny.
    for (let i = 0; i < d.minDenies - 1; i++) {
      e.observe(decision(null), p, undefined, T0 + i);
      e.observe(decision('FORBIDDEN'), p, undefined, T0 + i);
    }
    assert.equal(alerts.length, 0);
    e.observe(decision(null), p, undefined, T0 + 100);
    e.observe(decision('FORBIDDEN'), p, undefined, T0 + 100);
    assert.equal(alerts.length, 1);
    const a = alerts[0]!;
    assert.deepEqual([a.signal, a.tenant, a.count, a.requests, a.ratio, a.threshold], ['deny-rate', 'revenue', d.minDenies, 2 * d.minDenies, d.ratio, d.minDenies]);
    for (let i = 0; i < 50; i++) e.observe(decision('FORBIDDEN'), p, undefined, T0 + 200);
    assert.equal(alerts.length, 1, 'one alert per principal and window');
  });

  test('many denies under the ratio, or few at a high ratio, raise nothing', () => {
    const t = tenant('revenue', 'agency');
    const p = principal(t, 'a');
    const q = principal(t, 'b');
    const { e, alerts } = engine();
    // 100 denies among 300 requests: ratio 1/3.
    for (let i = 0; i < 100; i++) {
      e.observe(decision(null), p, undefined, T0);
      e.observe(decision(null), p, undefined, T0);
      e.observe(decision('FORBIDDEN'), p, undefined, T0);
    }
    // Every request denied, but one short of minDenies.
    for (let i = 0; i < d.minDenies - 1; i++) e.observe(decision('CONDITION_ERROR'), q, undefined, T0);
    assert.equal(alerts.length, 0);
  });

  test('quota and service-side denies are not counted as the principal\'s denies', () => {
    const p = principal(tenant('revenue', 'agency', { quotaBurst: { enabled: false } }), 'a');
    const { e, alerts } = engine();
    for (const code of ['QUOTA_EXCEEDED', 'QUOTA_UNAVAILABLE', 'AUDIT_UNAVAILABLE', 'DEADLINE_EXCEEDED', 'INTERNAL'] as const) {
      for (let i = 0; i < 2 * d.minDenies; i++) e.observe(decision(code), p, undefined, T0);
    }
    assert.equal(alerts.length, 0);
  });

  test('a Tenant\'s own thresholds and window apply; enabled: false turns the signal off', () => {
    const strict = principal(tenant('strict', 'partner', { denyRate: { minDenies: 3, ratio: 0.9, windowSeconds: 10 } }), 'k1');
    const off = principal(tenant('off', 'partner', { denyRate: { enabled: false } }), 'k2');
    const { e, alerts } = engine();
    for (let i = 0; i < 100; i++) e.observe(decision('FORBIDDEN'), off, undefined, T0);
    e.observe(decision('FORBIDDEN'), strict, undefined, T0);
    e.observe(decision('FORBIDDEN'), strict, undefined, T0);
    // The window passes: the two earlier denies no longer count.
    e.observe(decision('FORBIDDEN'), strict, undefined, T0 + 10 * SEC);
    assert.equal(alerts.length, 0);
    e.observe(decision('FORBIDDEN'), strict, undefined, T0 + 11 * SEC);
    e.observe(decision('FORBIDDEN'), strict, undefined, T0 + 12 * SEC);
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0]!.windowSeconds, 10);
  });
});

describe('quota exhaustion bursts per tenant', () => {
  const d = ALERT_DEFAULTS.quotaBurst;
  test(`default: ${d.count} QUOTA_EXCEEDED in ${d.windowSeconds} s over all the tenant's principals`, () => {
    const t = tenant('app', 'consumer-app', { denyRate: { enabled: false } });
    const { e, alerts } = engine();
    for (let i = 0; i < d.count - 1; i++) e.observe(decision('QUOTA_EXCEEDED'), principal(t, `citizen-${i}`), undefined, T0 + i);
    assert.equal(alerts.length, 0);
    e.observe(decision('QUOTA_EXCEEDED'), principal(t, 'citizen-x'), undefined, T0 + d.count);
    assert.equal(alerts.length, 1);
    assert.deepEqual([alerts[0]!.signal, alerts[0]!.tenant, alerts[0]!.subject, alerts[0]!.count], ['quota-burst', 'app', null, d.count]);
    for (let i = 0; i < d.count; i++) e.observe(decision('QUOTA_EXCEEDED'), principal(t, 'y'), undefined, T0 + d.count + i);
    assert.equal(alerts.length, 1);
  });

  test('the same number spread over two windows, or of other denies, raises nothing', () => {
    const t = tenant('app', 'consumer-app', { quotaBurst: { count: 10, windowSeconds: 60 }, denyRate: { enabled: false } });
    const { e, alerts } = engine();
    for (let i = 0; i < 9; i++) e.observe(decision('QUOTA_EXCEEDED'), principal(t, 'a'), undefined, T0);
    for (let i = 0; i < 9; i++) e.observe(decision('QUOTA_EXCEEDED'), principal(t, 'a'), undefined, T0 + 60 * SEC);
    for (let i = 0; i < 50; i++) e.observe(decision('QUOTA_UNAVAILABLE'), principal(t, 'a'), undefined, T0 + 60 * SEC);
    assert.equal(alerts.length, 0);
    e.observe(decision('QUOTA_EXCEEDED'), principal(t, 'a'), undefined, T0 + 61 * SEC);
    assert.equal(alerts.length, 1);
  });
});

describe('distinct data subjects by one agency principal (exfiltration pattern)', () => {
  const d = ALERT_DEFAULTS.distinctSubjects;
  test(`default: ${d.count} distinct resources in ${d.windowSeconds} s; repeats of one do not count`, () => {
    const t = tenant('revenue', 'agency');
    const p = principal(t, 'spiffe://gov.example/ns/revenue/sa/batch');
    const { e, alerts, recorded } = engine();
    for (let i = 0; i < 1000; i++) e.observe(decision(null), p, { id: 'citizen-1' }, T0 + i);
    for (let i = 2; i < d.count; i++) e.observe(decision(null), p, { id: `citizen-${i}` }, T0 + 1000 + i);
    assert.equal(alerts.length, 0);
    e.observe(decision(null), p, { id: 'citizen-new' }, T0 + 5000);
    assert.equal(alerts.length, 1);
    assert.deepEqual([alerts[0]!.signal, alerts[0]!.tenant, alerts[0]!.count, alerts[0]!.threshold], ['distinct-subjects', 'revenue', d.count, d.count]);
    assert.equal(recorded.length, 1, 'the alert goes to the audit sink');
    for (let i = 0; i < 500; i++) e.observe(decision(null), p, { id: `more-${i}` }, T0 + 6000);
    assert.equal(alerts.length, 1);
  });

  test('denied requests, non-agency principals and requests without path parameters do not count', () => {
    const agency = principal(tenant('revenue', 'agency', { distinctSubjects: { count: 5 }, denyRate: { enabled: false } }), 'a');
    const partner = principal(tenant('partner', 'partner', { distinctSubjects: { count: 5 } }), 'b');
    const { e, alerts } = engine();
    for (let i = 0; i < 20; i++) {
      e.observe(decision('FORBIDDEN'), agency, { id: `d-${i}` }, T0);
      e.observe(decision(null), partner, { id: `p-${i}` }, T0);
      e.observe(decision(null), agency, {}, T0);
      e.observe(decision(null), agency, undefined, T0);
    }
    for (let i = 0; i < 4; i++) e.observe(decision(null), agency, { id: `ok-${i}` }, T0);
    assert.equal(alerts.length, 0);
    e.observe(decision(null), agency, { id: 'ok-4' }, T0);
    assert.equal(alerts.length, 1);
  });

  test('with a subjectParam only the data subject counts: many documents of one citizen are one subject', () => {
    const agency = principal(tenant('revenue', 'agency', { distinctSubjects: { count: 3 } }), 'a');
    const { e, alerts } = engine();
    const of = (citizen: string): Decision => {
      const d = decision(null);
      d.audit.resource = citizen;
      return d;
    };
    for (let i = 0; i < 50; i++) e.observe(of('c-1'), agency, { id: 'c-1', doc: `doc-${i}` }, T0);
    e.observe(of('c-2'), agency, { id: 'c-2', doc: 'x' }, T0);
    assert.equal(alerts.length, 0);
    e.observe(of('c-3'), agency, { id: 'c-3', doc: 'x' }, T0);
    assert.equal(alerts.length, 1);
  });

  test('two parameters make one resource id; the window restarts', () => {
    const agency = principal(tenant('revenue', 'agency', { distinctSubjects: { count: 3, windowSeconds: 10 } }), 'a');
    const { e, alerts } = engine();
    e.observe(decision(null), agency, { id: 'x', doc: '1' }, T0);
    e.observe(decision(null), agency, { id: 'x', doc: '1' }, T0);
    e.observe(decision(null), agency, { id: 'x', doc: '2' }, T0);
    e.observe(decision(null), agency, { id: 'y', doc: '1' }, T0 + 10 * SEC);
    e.observe(decision(null), agency, { id: 'y', doc: '2' }, T0 + 10 * SEC);
    assert.equal(alerts.length, 0);
    e.observe(decision(null), agency, { id: 'y', doc: '3' }, T0 + 11 * SEC);
    assert.equal(alerts.length, 1);
  });
});

describe('bounds: no alert storm, bounded memory', () => {
  test('alerts are capped per minute over all keys; the rest are counted as suppressed', async () => {
    const registry = new Registry();
    const { e, alerts } = engine({ invalidCredentials: { count: 1, windowSeconds: 60 }, limits: { alertsPerMinute: 10 } });
    e.register(registry);
    for (let i = 0; i < 100; i++) e.observe(decision('INVALID_TOKEN', `10.${i}.0.1`), undefined, undefined, T0);
    assert.equal(alerts.length, 10);
    // The bucket refills at 10 a minute: 6 s later one more fits, not more.
    for (let i = 0; i < 100; i++) e.observe(decision('INVALID_TOKEN', `10.${i}.1.1`), undefined, undefined, T0 + 6 * SEC);
    assert.equal(alerts.length, 11);
    const text = await registry.metrics();
    assert.match(text, /portcullis_alerts_suppressed_total\{signal="invalid-credentials"\} 189/);
    assert.match(text, /portcullis_alerts_total\{signal="invalid-credentials",tenant=""\} 11/);
  });

  test('a spray of networks cannot hide a heavy hitter, nor make a sprayed network alert', async () => {
    const registry = new Registry();
    const { e, alerts } = engine({ invalidCredentials: { count: 100, windowSeconds: 60 } });
    e.register(registry);
    // The heavy hitter starts amid the spray, and 150 sprayed networks come between two of its
    // attempts: 133 attempts, over the threshold by itself (99 would have needed the sketch's
    // collisions, which depend on its per-process key, to reach 100).
    let heavy = 0;
    for (let i = 0; i < 20_500; i++) {
      e.observe(decision('INVALID_TOKEN', `${10 + (i % 200)}.${(i >> 8) & 255}.${i & 255}.1`), undefined, undefined, T0 + i);
      if (i % 150 === 100 && i > 500) {
        e.observe(decision('INVALID_TOKEN', '198.51.100.1'), undefined, undefined, T0 + i);
        heavy++;
      }
    }
    assert.ok(heavy > 100, `${heavy} attempts`);
    assert.equal(alerts.length, 1, 'the heavy hitter alerts despite the spray');
    assert.equal(alerts[0]!.network, '198.51.100.0/24');
    const text = await registry.metrics();
    // The estimate is never below the true count; collisions with the spray can only raise it.
    assert.ok(alerts[0]!.count >= 100);
    assert.match(text, /portcullis_signal_tracked_keys\{signal="invalid-credentials"\} 1/);
  });

  test('principal and accessor maps stay bounded, and a distinct-subjects window holds at most its threshold', () => {
    const t = tenant('revenue', 'agency', { distinctSubjects: { count: 50 } });
    const { e } = engine({ limits: { principals: 32, accessors: 16 } });
    for (let i = 0; i < 5000; i++) e.observe(decision(i % 2 ? null : 'FORBIDDEN'), principal(t, `p-${i}`), { id: `s-${i}` }, T0 + i);
    assert.equal(e.tracked('deny-rate').size, 32);
    assert.ok(e.tracked('deny-rate').evictions >= 5000 - 32);
    assert.equal(e.tracked('distinct-subjects').size, 16);
    const p = principal(t, 'heavy');
    const slot = (): number | undefined => e.peek('distinct-subjects', `${t.key}\nheavy`)?.weight();
    for (let i = 0; i < 49; i++) e.observe(decision(null), p, { id: `s-${i}` }, T0 + 10_000);
    assert.equal(slot(), 49);
    for (let i = 0; i < 10_000; i++) e.observe(decision(null), p, { id: `t-${i}` }, T0 + 10_000);
    // After the alert at 50 the window's ids are dropped: nothing grows with traffic.
    assert.equal(slot(), 0);
    assert.equal(e.tracked('distinct-subjects').size, 16);
  });

  test('a failing alert record is counted, never thrown into the Check', async () => {
    const registry = new Registry();
    const errors: unknown[] = [];
    const e = new SignalEngine({ invalidCredentials: { count: 1, windowSeconds: 60 }, sink: { recordAlert: () => Promise.reject(new Error('disk full')) }, onError: (err) => errors.push(err) });
    e.register(registry);
    e.observe(decision('INVALID_TOKEN'), undefined, undefined, T0);
    await new Promise((r) => setImmediate(r));
    assert.equal(errors.length, 1);
    assert.match(await registry.metrics(), /portcullis_alerts_unrecorded_total\{signal="invalid-credentials"\} 1/);
  });
});
