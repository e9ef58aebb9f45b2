/** The messages between `serve --workers`' primary thread and its workers (structured-clone data only). */
import type { Registry } from 'prom-client';
import type { ServeConfig } from '../config.js';
import type { Fingerprint, WireInput } from './forwarded-source.js';

/** One registry's metrics as JSON (what AggregatorRegistry.aggregate takes). */
export type WorkerMetrics = Awaited<ReturnType<Registry['getMetricsAsJSON']>>;

export interface WorkerInit {
  index: number;
  /** This worker's config: the concrete shared ports, its own audit chain and file. */
  config: ServeConfig;
  initial?: WireInput;
  fingerprint: Fingerprint;
  quotaTable: SharedArrayBuffer;
  maskKeys: { signing: Uint8Array; hash: Uint8Array };
  subjectKey?: Uint8Array;
}

export type ToWorker = { type: 'policies'; input: WireInput } | { type: 'metrics'; id: number } | { type: 'close' };

export type FromWorker =
  | { type: 'started'; grpcPort: number; extProcPort: number; ready: boolean; jwks?: object }
  | { type: 'ready' }
  | { type: 'metrics'; id: number; metrics: WorkerMetrics };
