/**
 * Tracing of Checks (docs/tracing.md): off unless an OTLP endpoint is configured
 * (`--otlp-endpoint`, OTEL_EXPORTER_OTLP_ENDPOINT). Off, nothing here runs and the
 * OpenTelemetry SDK is never loaded; on, otel.ts builds the spans.
 */
import { readFileSync } from 'node:fs';
import type { CheckTracer } from '../pipeline/hooks.js';

export interface TracingConfig {
  /** OTLP/HTTP base URL (http://collector:4318) or the full traces URL (…/v1/traces). */
  endpoint: string;
}

export interface Tracing {
  tracer: CheckTracer;
  shutdown(): Promise<void>;
}

/** The traces URL of an endpoint: the OTLP base URL gets /v1/traces, a URL ending in it is kept. */
export function tracesUrl(endpoint: string): string {
  const u = new URL(endpoint);
  if (!u.pathname.endsWith('/v1/traces')) u.pathname = `${u.pathname.replace(/\/+$/, '')}/v1/traces`;
  return u.toString();
}

/** service.version: the package's version (dist/extauthz/tracing → the package root). */
function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export async function createTracing(cfg: TracingConfig, meta: { instanceId: string }): Promise<Tracing> {
  const { OtelCheckTracer } = await import('./otel.js');
  const tracer = new OtelCheckTracer({ tracesUrl: tracesUrl(cfg.endpoint), serviceVersion: packageVersion(), instanceId: meta.instanceId });
  return { tracer, shutdown: () => tracer.shutdown() };
}
