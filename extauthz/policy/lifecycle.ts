/**
 * API lifecycle (spec.deprecation and spec.rules[].deprecation), compiled when the policy loads:
 * dates parsed once (RFC 3339), sunset not before since, and the response header values built
 * once — Deprecation as an RFC 9745 structured-field date (@<unix seconds>), Sunset as an RFC
 * 8594 HTTP-date (IMF-fixdate), Link with rel="deprecation". A Check only compares numbers.
 */
import type { Deprecation } from './crd-types.js';

export type LifecycleState = 'announced' | 'deprecated' | 'sunset';

export interface CompiledLifecycle {
  /** Epoch milliseconds. */
  since: number;
  sunset?: number;
  afterSunset: 'deny' | 'serve';
  /** Response headers sent with every allowed response of the route (lower-case names). */
  headers: Readonly<Record<string, string>>;
}

export class LifecycleSpecError extends Error {
  constructor(
    message: string,
    /** The field below deprecation: since, sunset or link. */
    readonly field: string,
  ) {
    super(message);
    this.name = 'LifecycleSpecError';
  }
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|([+-])(\d{2}):(\d{2}))$/;

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Minutes east of UTC for Z or ±hh:mm, or undefined when out of range. */
function offsetMinutes(m: RegExpExecArray): number | undefined {
  if (!m[9]) return 0;
  const [h, min] = [Number(m[10]), Number(m[11])];
  if (h > 23 || min > 59) return undefined;
  return (m[9] === '-' ? -1 : 1) * (h * 60 + min);
}

/** Epoch milliseconds of an RFC 3339 date-time, or undefined when it is not one (Feb 30, 24:00, ...). */
export function parseRfc3339(s: string): number | undefined {
  const m = RFC3339.exec(s);
  if (!m) return undefined;
  const [y, mo, d, h, mi, sec] = [1, 2, 3, 4, 5, 6].map((i) => Number(m[i])) as [number, number, number, number, number, number];
  const inRange = mo >= 1 && mo <= 12 && d >= 1 && d <= daysIn(y, mo) && h <= 23 && mi <= 59 && sec <= 59;
  const offset = offsetMinutes(m);
  if (!inRange || offset === undefined) return undefined;
  const frac = m[7] ? Math.floor(Number(`0${m[7]}`) * 1000) : 0;
  return Date.UTC(y, mo - 1, d, h, mi, sec, frac) - offset * 60_000;
}

function date(s: string, field: string): number {
  const t = parseRfc3339(s);
  if (t === undefined) throw new LifecycleSpecError(`${field} is not an RFC 3339 date-time (e.g. 2026-06-01T00:00:00Z)`, field);
  return t;
}

export function compileLifecycle(spec: Deprecation): CompiledLifecycle {
  const since = date(spec.since, 'since');
  const headers: Record<string, string> = { deprecation: `@${Math.floor(since / 1000)}` };
  const out: CompiledLifecycle = { since, afterSunset: spec.afterSunset ?? 'deny', headers };
  if (spec.sunset !== undefined) {
    const sunset = date(spec.sunset, 'sunset');
    if (sunset < since) throw new LifecycleSpecError('sunset is before since', 'sunset');
    out.sunset = sunset;
    headers.sunset = new Date(sunset).toUTCString();
  }
  if (spec.link !== undefined) {
    if (!/^https?:\/\/[\x21-\x7e]+$/.test(spec.link) || /[<>"]/.test(spec.link)) throw new LifecycleSpecError('link must be an http(s) URL of visible ASCII without <, > or "', 'link');
    headers.link = `<${spec.link}>; rel="deprecation"`;
  }
  return out;
}

/** Where the route stands at `now`: announced before since, deprecated until the sunset, then sunset. */
export function lifecycleState(l: CompiledLifecycle, nowMs: number): LifecycleState {
  if (l.sunset !== undefined && nowMs >= l.sunset) return 'sunset';
  return nowMs >= l.since ? 'deprecated' : 'announced';
}
