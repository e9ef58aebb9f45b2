/**
 * Suspicious-activity signals, counted as Checks are decided (docs/alerts.md):
 *   invalid-credentials  invalid credentials from one client network (IPv4 /24, IPv6 /64)
 *   deny-rate            one principal's denied share of its requests
 *   quota-burst          QUOTA_EXCEEDED denies of one tenant
 *   distinct-subjects    distinct data subjects one agency principal was allowed to access
 * A Check does O(1) work here: one map lookup and a few additions, a threshold comparison, and
 * nothing else unless that comparison raises an alert. Every map is bounded (KeyedWindows), every
 * key raises at most one alert per window, and alerts overall are capped per minute (a spray of
 * keys cannot become an alert storm; what the cap holds back is counted).
 */
import { randomBytes } from 'node:crypto';
import { Counter, Gauge, type Registry } from 'prom-client';
import { CATALOGUE, type ErrorCode } from '../errors.js';
import type { Decision } from '../pipeline/decision.js';
import type { SignalSink } from '../pipeline/hooks.js';
import type { Principal } from '../pipeline/principal.js';
import { SIGNALS, type Alert, type AlertSink, type SignalName } from './alert.js';
import { clientNetwork } from './network.js';
import { WindowedSketch } from './sketch.js';
import { CountSlot, DistinctSlot, KeyedWindows, RateSlot, type WindowSlot } from './windows.js';

/** Denials of presented credentials: every 401 but "none presented" and "valid, but not multi-factor". */
export const INVALID_CREDENTIAL_CODES: ReadonlySet<ErrorCode> = new Set(
  (Object.keys(CATALOGUE) as ErrorCode[]).filter((c) => CATALOGUE[c].http === 401 && c !== 'UNAUTHENTICATED' && c !== 'MFA_REQUIRED'),
);

/** Denials that say nothing about the principal's behaviour (the service or its quota refused), left out of deny-rate. */
const NOT_POLICY_DENIES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['QUOTA_EXCEEDED', 'QUOTA_UNAVAILABLE', 'AUDIT_UNAVAILABLE', 'DEADLINE_EXCEEDED', 'INTERNAL']);

/** Invalid credentials name no tenant, so their threshold is the service's (not a Tenant's). */
export const INVALID_CREDENTIALS_DEFAULTS = { count: 50, windowSeconds: 60 } as const;

export interface SignalLimits {
  /** Counters per row of the invalid-credentials sketch (a power of two; 4 rows of 4-byte counters). */
  sketchWidth: number;
  /** Networks remembered as alerted in the current invalid-credentials window (one alert each). */
  networks: number;
  /** Principals tracked for deny-rate. */
  principals: number;
  /** Tenants tracked for quota-burst. */
  tenants: number;
  /** Agency principals tracked for distinct-subjects (each holds at most its threshold of 32-bit ids). */
  accessors: number;
  /** Alerts raised per minute at most, over every signal and key (a token bucket of this size). */
  alertsPerMinute: number;
}

export const DEFAULT_SIGNAL_LIMITS: SignalLimits = { sketchWidth: 4096, networks: 4096, principals: 8192, tenants: 1024, accessors: 1024, alertsPerMinute: 60 };

export interface SignalEngineOptions {
  /** The audit trail's alert records; absent: metrics and the log only. */
  sink?: AlertSink;
  /** Told of every alert raised (the service logs it: signal, tenant, counts; no subject, no network). */
  onAlert?: (a: Alert) => void;
  /** An alert record could not be written. */
  onError?: (err: unknown, a: Alert) => void;
  invalidCredentials?: { count: number; windowSeconds: number };
  limits?: Partial<SignalLimits>;
}

class SignalMetrics {
  readonly alerts = new Counter({ name: 'portcullis_alerts_total', help: 'Suspicious-activity alerts raised, by signal and tenant (docs/alerts.md).', labelNames: ['signal', 'tenant'] as const, registers: [] });
  readonly suppressed = new Counter({ name: 'portcullis_alerts_suppressed_total', help: 'Alerts held back by the per-minute alert cap, by signal (an alert storm).', labelNames: ['signal'] as const, registers: [] });
  readonly unrecorded = new Counter({ name: 'portcullis_alerts_unrecorded_total', help: 'Alerts whose audit record could not be written, by signal.', labelNames: ['signal'] as const, registers: [] });
  readonly keys: Gauge<'signal'>;
  readonly evictions: Counter<'signal'>;

  constructor(engine: SignalEngine) {
    this.keys = new Gauge({
      name: 'portcullis_signal_tracked_keys',
      help: 'Keys (networks, principals, tenants) each signal currently counts for.',
      labelNames: ['signal'] as const,
      registers: [],
      collect: () => {
        for (const s of SIGNALS) this.keys.set({ signal: s }, engine.tracked(s).size);
      },
    });
    const reported = new Map<SignalName, number>();
    this.evictions = new Counter({
      name: 'portcullis_signal_evictions_total',
      help: 'Keys dropped from a full signal map to make room for a new one (a steady rise: someone sprays keys).',
      labelNames: ['signal'] as const,
      registers: [],
      collect: () => {
        for (const s of SIGNALS) {
          const n = engine.tracked(s).evictions;
          const delta = n - (reported.get(s) ?? 0);
          if (delta > 0) this.evictions.inc({ signal: s }, delta);
          reported.set(s, n);
        }
      },
    });
  }

  register(r: Registry): void {
    for (const m of [this.alerts, this.suppressed, this.unrecorded, this.keys, this.evictions]) r.registerMetric(m);
  }
}

/** FNV-1a over the path parameter values, from a per-process random basis: a 32-bit id per resource, in memory only. */
function resourceHash(params: Readonly<Record<string, string>>, basis: number): number {
  let h = basis;
  let any = false;
  for (const k in params) {
    const v = params[k]!;
    any = true;
    for (let i = 0; i < v.length; i++) h = Math.imul(h ^ v.charCodeAt(i), 16777619);
    h = Math.imul(h ^ 0x1f, 16777619);
  }
  return any ? h >>> 0 : -1;
}

function valueHash(v: string, basis: number): number {
  let h = basis;
  for (let i = 0; i < v.length; i++) h = Math.imul(h ^ v.charCodeAt(i), 16777619);
  return h >>> 0;
}

export class SignalEngine implements SignalSink {
  /** invalid-credentials: keys chosen by unauthenticated clients, so counted in a fixed-size sketch. */
  private readonly sketch: WindowedSketch;
  private readonly alertedNetworks = new Set<string>();
  private readonly maxAlertedNetworks: number;
  private readonly principals: KeyedWindows<RateSlot>;
  private readonly tenants: KeyedWindows<CountSlot>;
  private readonly accessors: KeyedWindows<DistinctSlot>;
  private readonly invalid: { count: number; windowMs: number };
  private readonly metrics = new SignalMetrics(this);
  private readonly basis = randomBytes(4).readUInt32LE(0);
  private readonly perMinute: number;
  private tokens: number;
  private refilledAt = -1;
  /** Observations that threw (a bug, never a client's doing): counted, never thrown into the Check. */
  errors = 0;

  constructor(private readonly o: SignalEngineOptions = {}) {
    const l = { ...DEFAULT_SIGNAL_LIMITS, ...o.limits };
    this.principals = new KeyedWindows(l.principals, (now, w) => new RateSlot(now, w));
    this.tenants = new KeyedWindows(l.tenants, (now, w) => new CountSlot(now, w));
    this.accessors = new KeyedWindows(l.accessors, (now, w) => new DistinctSlot(now, w));
    const ic = o.invalidCredentials ?? INVALID_CREDENTIALS_DEFAULTS;
    this.invalid = { count: ic.count, windowMs: ic.windowSeconds * 1000 };
    this.sketch = new WindowedSketch(this.invalid.windowMs, l.sketchWidth);
    this.maxAlertedNetworks = l.networks;
    this.perMinute = l.alertsPerMinute;
    this.tokens = l.alertsPerMinute;
  }

  register(registry: Registry): void {
    this.metrics.register(registry);
  }

  /** Keys held and evictions so far (invalid-credentials: the networks alerted in the current window). */
  tracked(signal: SignalName): { size: number; evictions: number } {
    if (signal === 'invalid-credentials') return { size: this.alertedNetworks.size, evictions: 0 };
    return this.windows(signal);
  }

  private windows(signal: Exclude<SignalName, 'invalid-credentials'>): KeyedWindows<CountSlot | RateSlot | DistinctSlot> {
    if (signal === 'deny-rate') return this.principals;
    if (signal === 'quota-burst') return this.tenants;
    return this.accessors;
  }

  /** A key's slot as it stands (tests). */
  peek(signal: Exclude<SignalName, 'invalid-credentials'>, key: string): WindowSlot | undefined {
    return this.windows(signal).peek(key);
  }

  /** One decided Check (after its audit record). `params`: the matched path template's parameters (used when the rule names no subjectParam). */
  observe(d: Decision, p: Principal | undefined, params: Readonly<Record<string, string>> | undefined, now: number): void {
    try {
      if (p === undefined) {
        if (d.code !== null && INVALID_CREDENTIAL_CODES.has(d.code)) this.invalidCredential(d, now);
        return;
      }
      const t = p.tenant.alerts;
      if (t.denyRate.enabled) this.request(d, p, now);
      if (d.code === 'QUOTA_EXCEEDED' && t.quotaBurst.enabled) this.quotaExceeded(d, p, now);
      if (d.allowed && params !== undefined && p.type === 'agency' && t.distinctSubjects.enabled) this.access(d, p, params, now);
    } catch {
      this.errors++;
    }
  }

  private invalidCredential(d: Decision, now: number): void {
    const net = clientNetwork(d.audit.sourceIp);
    if (net === null) return;
    const { estimate, newWindow } = this.sketch.add(net, now);
    if (newWindow) this.alertedNetworks.clear();
    if (estimate < this.invalid.count || this.alertedNetworks.has(net)) return;
    // Past the bound a network could alert twice in one window; the per-minute cap still holds.
    if (this.alertedNetworks.size < this.maxAlertedNetworks) this.alertedNetworks.add(net);
    this.raise({ signal: 'invalid-credentials', requestId: d.requestId, tenant: null, principalType: null, subject: null, network: net, windowStart: new Date(this.sketch.windowStart(now)), windowSeconds: this.invalid.windowMs / 1000, count: estimate, threshold: this.invalid.count, requests: null, ratio: null }, now);
  }

  private request(d: Decision, p: Principal, now: number): void {
    const th = p.tenant.alerts.denyRate;
    const s = this.principals.slot(`${p.tenant.key}\n${p.subject}`, now, th.windowMs);
    s.requests++;
    if (d.allowed || d.code === null || NOT_POLICY_DENIES.has(d.code)) return;
    s.denies++;
    if (s.alerted || s.denies < th.minDenies || s.denies < th.ratio * s.requests) return;
    s.alerted = true;
    this.raise({ signal: 'deny-rate', requestId: d.requestId, tenant: p.tenant.name, principalType: p.type, subject: p.subject, network: null, windowStart: new Date(s.start), windowSeconds: s.windowMs / 1000, count: s.denies, threshold: th.minDenies, requests: s.requests, ratio: th.ratio }, now);
  }

  private quotaExceeded(d: Decision, p: Principal, now: number): void {
    const th = p.tenant.alerts.quotaBurst;
    const s = this.tenants.slot(p.tenant.key, now, th.windowMs);
    if (++s.count < th.count || s.alerted) return;
    s.alerted = true;
    this.raise({ signal: 'quota-burst', requestId: d.requestId, tenant: p.tenant.name, principalType: null, subject: null, network: null, windowStart: new Date(s.start), windowSeconds: s.windowMs / 1000, count: s.count, threshold: th.count, requests: null, ratio: null }, now);
  }

  private access(d: Decision, p: Principal, params: Readonly<Record<string, string>>, now: number): void {
    // The rule's subjectParam names the data subject; without one, all the template's parameters together.
    const id = d.audit.resource !== undefined ? valueHash(d.audit.resource, this.basis) : resourceHash(params, this.basis);
    if (id < 0) return;
    const th = p.tenant.alerts.distinctSubjects;
    const s = this.accessors.slot(`${p.tenant.key}\n${p.subject}`, now, th.windowMs);
    // After the alert the window's ids are no longer needed: the set stays at most `count` large.
    if (s.alerted) return;
    s.ids.add(id);
    if (s.ids.size < th.count) return;
    s.alerted = true;
    const count = s.ids.size;
    s.ids.clear();
    this.raise({ signal: 'distinct-subjects', requestId: d.requestId, tenant: p.tenant.name, principalType: p.type, subject: p.subject, network: null, windowStart: new Date(s.start), windowSeconds: s.windowMs / 1000, count, threshold: th.count, requests: null, ratio: null }, now);
  }

  /** The per-minute cap: a token bucket refilled continuously. */
  private admit(now: number): boolean {
    if (this.refilledAt < 0) this.refilledAt = now;
    this.tokens = Math.min(this.perMinute, this.tokens + ((now - this.refilledAt) * this.perMinute) / 60_000);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  private raise(a: Alert, now: number): void {
    if (!this.admit(now)) {
      this.metrics.suppressed.inc({ signal: a.signal });
      return;
    }
    this.metrics.alerts.inc({ signal: a.signal, tenant: a.tenant ?? '' });
    this.o.onAlert?.(a);
    this.o.sink?.recordAlert(a).catch((err: unknown) => {
      this.metrics.unrecorded.inc({ signal: a.signal });
      this.o.onError?.(err, a);
    });
  }
}
