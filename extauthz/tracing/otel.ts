/**
 * Check spans with OpenTelemetry's JS SDK, exported over OTLP/HTTP (protobuf). Loaded only when
 * tracing is configured (index.ts imports this module dynamically), so a service without
 * tracing neither loads the SDK nor makes a span.
 *
 * One root span per Check (`portcullis.check`, kind SERVER) continues the request's W3C
 * traceparent; one child per phase that ran (`portcullis.parse` … `portcullis.audit`) is made
 * from the timings the pipeline recorded, once the decision is known. Attributes name policies,
 * rules, tenants, decisions and codes, never a subject, token, path parameter or address.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span, type TextMapGetter, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider, type SpanExporter } from '@opentelemetry/sdk-trace';
import type { Decision } from '../pipeline/decision.js';
import type { CheckTrace, CheckTracer, PhaseTiming } from '../pipeline/hooks.js';

export interface OtelTracingOptions {
  /** Full OTLP/HTTP traces URL (…/v1/traces). */
  tracesUrl: string;
  serviceVersion: string;
  instanceId: string;
  /** Tests: another exporter. */
  exporter?: SpanExporter;
}

const HEADERS: TextMapGetter<Readonly<Record<string, string>>> = {
  get: (carrier, key) => carrier[key],
  keys: (carrier) => Object.keys(carrier),
};

class OtelTrace implements CheckTrace {
  constructor(
    readonly span: Span,
    readonly traceId: string,
  ) {}
}

export class OtelCheckTracer implements CheckTracer {
  private readonly provider: TracerProvider;
  private readonly tracer: Tracer;
  private readonly propagator = new W3CTraceContextPropagator();

  constructor(o: OtelTracingOptions) {
    const exporter = o.exporter ?? new OTLPTraceExporter({ url: o.tracesUrl, timeoutMillis: 10_000 });
    this.provider = new TracerProvider({
      resource: resourceFromAttributes({ 'service.name': 'portcullis-extauthz', 'service.version': o.serviceVersion, 'service.instance.id': o.instanceId }),
      // Bounded: when the collector is slow or down, spans beyond the queue are dropped, never buffered without limit.
      spanProcessors: [new BatchSpanProcessor({ exporter, maxQueueSize: 4096, maxExportBatchSize: 512, scheduledDelayMillis: 1000, exportTimeoutMillis: 10_000 })],
      spanLimits: { attributeCountLimit: 32, attributeValueLengthLimit: 256 },
    });
    this.tracer = this.provider.getTracer('portcullis', o.serviceVersion);
  }

  begin(headers: Readonly<Record<string, string>> | undefined, startEpochMs: number): CheckTrace {
    const parent: Context = headers ? this.propagator.extract(ROOT_CONTEXT, headers, HEADERS) : ROOT_CONTEXT;
    const span = this.tracer.startSpan('portcullis.check', { kind: SpanKind.SERVER, startTime: startEpochMs }, parent);
    return new OtelTrace(span, span.spanContext().traceId);
  }

  end(t: CheckTrace, d: Decision, phases: readonly PhaseTiming[], epochMs: (t: bigint) => number): void {
    const endEpochMs = epochMs(process.hrtime.bigint());
    const root = (t as OtelTrace).span;
    if (root.isRecording()) {
      const parent = trace.setSpan(ROOT_CONTEXT, root);
      for (const p of phases) {
        const child = this.tracer.startSpan(`portcullis.${p.name}`, { kind: SpanKind.INTERNAL, startTime: epochMs(p.start) }, parent);
        child.setAttribute('portcullis.phase', p.name);
        child.end(epochMs(p.end));
      }
      decisionAttributes(root, d);
    }
    root.end(endEpochMs);
  }

  shutdown(): Promise<void> {
    return this.provider.shutdown();
  }
}

/** What the root span says about the decision: names and codes only. */
function decisionAttributes(span: Span, d: Decision): void {
  span.setAttribute('portcullis.decision', d.allowed ? 'allow' : 'deny');
  span.setAttribute('portcullis.code', d.code ?? 'OK');
  span.setAttribute('http.request.method', d.audit.method);
  // The matched template (/v1/citizens/{id}/records), never the path with its values.
  if (d.audit.pathTemplate !== '') span.setAttribute('http.route', d.audit.pathTemplate);
  span.setAttribute('http.response.status_code', d.status);
  if (d.policy !== undefined) span.setAttribute('portcullis.policy', d.policy);
  if (d.rule !== undefined) span.setAttribute('portcullis.rule', d.rule);
  if (d.principal) {
    span.setAttribute('portcullis.tenant', d.principal.tenant);
    span.setAttribute('portcullis.principal_type', d.principal.type);
  }
  if (d.code === 'INTERNAL') span.setStatus({ code: SpanStatusCode.ERROR, message: 'INTERNAL' });
}
