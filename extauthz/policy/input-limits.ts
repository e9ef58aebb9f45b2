/**
 * The largest request the parse phase accepts. They bound what a policy can be asked to
 * evaluate, so the CEL cost estimator (cel-env.ts) computes its worst cases from the same numbers
 * the parse phase enforces (pipeline/context.ts): one definition, no drift between the two.
 */
export const LIMITS = {
  headerCount: 200,
  headerValueBytes: 16 * 1024,
  headersTotalBytes: 64 * 1024,
  pathBytes: 8 * 1024,
  hostBytes: 255,
} as const;
