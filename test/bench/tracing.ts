/**
 * What tracing and the suspicious-activity signals cost a Check in process: the pipeline over the
 * workload mix with neither, with the signal engine (as serve always runs it), and with the
 * OpenTelemetry tracer building a root and seven phase spans per Check into a batch processor
 * whose exporter drops them. Interleaved rounds, so machine noise hits all alike.
 *
 *   node dist/test/bench/tracing.js [CHECKS_PER_ROUND] [ROUNDS]
 */
import type { ExportResult } from '@opentelemetry/core';
import type { ReadableSpan, SpanExporter } from '@opentelemetry/sdk-trace';
import { DecisionPipeline } from '../../extauthz/pipeline/pipeline.js';
import { Identifier } from '../../extauthz/pipeline/identify/index.js';
import { JwtIdentifier, VerifiedTokenCache } from '../../extauthz/pipeline/identify/jwt.js';
import { OtelCheckTracer } from '../../extauthz/tracing/otel.js';
import { SignalEngine } from '../../extauthz/signals/engine.js';
import { loadSnapshot } from './phases.js';
import { createWorkload } from './workload.js';

class DroppingExporter implements SpanExporter {
  spans = 0;
  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    this.spans += spans.length;
    done({ code: 0 });
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

const perRound = Number(process.argv[2] ?? 5000);
const rounds = Number(process.argv[3] ?? 6);
const w = await createWorkload(10);
try {
  const snapshot = loadSnapshot(w.dir);
  const exporter = new DroppingExporter();
  const tracer = new OtelCheckTracer({ tracesUrl: 'http://127.0.0.1:9/v1/traces', serviceVersion: 'bench', instanceId: 'bench', exporter });
  const make = (traced: boolean, signals: boolean): DecisionPipeline =>
    new DecisionPipeline({ snapshot: () => snapshot, identifier: new Identifier(new JwtIdentifier(new VerifiedTokenCache())), ...(traced ? { tracer } : {}), ...(signals ? { signals: new SignalEngine() } : {}) });
  const variants = { off: make(false, false), signals: make(false, true), on: make(true, false) };
  const totals = { off: [] as number[], signals: [] as number[], on: [] as number[] };
  for (const p of Object.values(variants)) for (const r of w.requests) await p.check(r);
  const round = async (p: DecisionPipeline): Promise<number> => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < perRound; i++) await p.check(w.requests[i % w.requests.length]!);
    return Number(process.hrtime.bigint() - t0) / 1e3 / perRound;
  };
  for (let r = 0; r < rounds; r++) {
    totals.off.push(await round(variants.off));
    totals.signals.push(await round(variants.signals));
    totals.on.push(await round(variants.on));
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`| pipeline | µs per Check (median of ${rounds} rounds of ${perRound}) |`);
  console.log('|---|---|');
  console.log(`| no signals, no tracing | ${median(totals.off).toFixed(2)} |`);
  console.log(`| signals (as served), no tracing | ${median(totals.signals).toFixed(2)} |`);
  console.log(`| tracing on (8 spans per Check, exporter dropping), no signals | ${median(totals.on).toFixed(2)} |`);
  await tracer.shutdown();
  console.log(`spans built: ${exporter.spans}`);
} finally {
  w.remove();
}
