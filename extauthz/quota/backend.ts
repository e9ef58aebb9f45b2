/** What a quota backend does: charge a set of counters all or none, atomically. */
import type { Limits, Verdict } from './algorithms.js';

export interface ChargeItem extends Limits {
  /** The storage key (hash-tagged, no personal data in clear). */
  key: string;
  cost: number;
}

export type ChargeOutcome = Omit<Verdict, 'next'>;

export interface QuotaBackend {
  readonly name: 'memory' | 'redis';
  /**
   * Evaluates every item; stores the new states only if all of them admit the request. Rejects
   * when the backend cannot be reached (the quota's onBackendError then decides). A signal that
   * has fired before the backend is asked means: charge nothing.
   */
  charge(items: readonly ChargeItem[], signal?: AbortSignal): Promise<ChargeOutcome[]>;
  /**
   * Dry run (shadow mode): the outcomes charge would return now, with nothing stored. Rejects as
   * charge does when the backend cannot be reached.
   */
  peek(items: readonly ChargeItem[], signal?: AbortSignal): Promise<ChargeOutcome[]>;
  close(): Promise<void>;
}

/** Thrown by a backend that cannot answer (connection down, timeout). */
export class QuotaBackendError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'QuotaBackendError';
  }
}
