/** Durations as the CRDs spell them (1s, 1m, 24h, 1h30m, 500ms, 7d), parsed once at policy load. */

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const WHOLE = /^(\d+(ms|s|m|h|d))+$/;
const PART = /(\d+)(ms|s|m|h|d)/g;

/** The longest period accepted: a year is already beyond any sensible quota window. */
export const MAX_PERIOD_MS = 366 * 86_400_000;

/** Milliseconds; throws a plain Error with a readable message (the caller adds the path). */
export function parseDuration(text: string): number {
  if (!WHOLE.test(text)) throw new Error(`"${text}" is not a duration (use e.g. 500ms, 1s, 1m, 24h, 1h30m, 7d)`);
  let ms = 0;
  for (const m of text.matchAll(PART)) ms += Number(m[1]) * UNIT_MS[m[2]!]!;
  if (ms <= 0) throw new Error(`duration "${text}" must be greater than zero`);
  if (ms > MAX_PERIOD_MS) throw new Error(`duration "${text}" is longer than 366d`);
  return ms;
}
