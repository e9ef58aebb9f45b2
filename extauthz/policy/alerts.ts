/**
 * A Tenant's suspicious-activity thresholds (spec.alerts), resolved at load: every omitted field
 * takes its default, so the Check path reads plain numbers. The defaults are the ones the CRD
 * schema declares (a test keeps the two in step) and docs/alerts.md documents.
 */
import type { TenantSpec } from './model.js';

export interface DenyRateThresholds {
  enabled: boolean;
  ratio: number;
  minDenies: number;
  windowMs: number;
}

export interface CountThresholds {
  enabled: boolean;
  count: number;
  windowMs: number;
}

export interface AlertThresholds {
  denyRate: DenyRateThresholds;
  quotaBurst: CountThresholds;
  distinctSubjects: CountThresholds;
}

export const ALERT_DEFAULTS = {
  denyRate: { enabled: true, ratio: 0.5, minDenies: 20, windowSeconds: 300 },
  quotaBurst: { enabled: true, count: 100, windowSeconds: 60 },
  distinctSubjects: { enabled: true, count: 200, windowSeconds: 300 },
} as const;

type Spec = NonNullable<TenantSpec['alerts']>;

/** The spec's fields over the defaults, windowSeconds as windowMs. */
function resolve(defaults: { windowSeconds: number }, spec: object | undefined): unknown {
  const { windowSeconds, ...rest } = Object.assign({}, defaults, spec);
  return Object.freeze({ ...rest, windowMs: windowSeconds * 1000 });
}

export function compileAlerts(spec: Spec | undefined): AlertThresholds {
  return Object.freeze({
    denyRate: resolve(ALERT_DEFAULTS.denyRate, spec?.denyRate) as DenyRateThresholds,
    quotaBurst: resolve(ALERT_DEFAULTS.quotaBurst, spec?.quotaBurst) as CountThresholds,
    distinctSubjects: resolve(ALERT_DEFAULTS.distinctSubjects, spec?.distinctSubjects) as CountThresholds,
  });
}

/** The thresholds of a Tenant without spec.alerts: one shared object. */
export const DEFAULT_ALERT_THRESHOLDS: AlertThresholds = compileAlerts(undefined);
