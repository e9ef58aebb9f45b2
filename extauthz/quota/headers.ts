/**
 * Response headers of the IETF httpapi rate-limit draft (draft-ietf-httpapi-ratelimit-headers):
 *   RateLimit-Policy: "burst";q=40;w=2, "daily";q=1000000;w=86400
 *   RateLimit: "burst";r=39;t=1, "daily";r=999999;t=43200
 * plus Retry-After (seconds) when the request is refused. q is the most one can spend at once
 * (the bucket capacity for token-bucket, the limit for windows) and w the seconds over which q
 * is restored, so r never exceeds q.
 */
import type { ChargeOutcome } from './backend.js';
import type { CompiledQuota } from './model.js';

export const RATELIMIT = 'ratelimit';
export const RATELIMIT_POLICY = 'ratelimit-policy';
export const RETRY_AFTER = 'retry-after';

function seconds(ms: number): number {
  return Math.max(0, Math.ceil(ms / 1000));
}

/** RateLimit-Policy items depend on the compiled quota only: computed once per quota. */
const policyItems = new WeakMap<CompiledQuota, string>();

export function policyItem(q: CompiledQuota): string {
  let item = policyItems.get(q);
  if (item === undefined) {
    item = computePolicyItem(q);
    policyItems.set(q, item);
  }
  return item;
}

function computePolicyItem(q: CompiledQuota): string {
  const w = q.algorithm === 'token-bucket' ? (q.capacity / q.limit) * q.periodMs : q.periodMs;
  return `"${q.name}";q=${q.capacity};w=${Math.max(1, seconds(w))}`;
}

export function rateLimitHeaders(quotas: readonly CompiledQuota[], outcomes: readonly ChargeOutcome[]): Record<string, string> {
  const items = outcomes.map((o, i) => `"${quotas[i]!.name}";r=${Math.max(0, o.remaining)};t=${seconds(o.resetMs)}`);
  const headers: Record<string, string> = {
    [RATELIMIT_POLICY]: quotas.map(policyItem).join(', '),
    [RATELIMIT]: items.join(', '),
  };
  const refused = outcomes.filter((o) => !o.allowed);
  if (refused.length > 0) headers[RETRY_AFTER] = String(Math.max(1, ...refused.map((o) => seconds(o.retryAfterMs))));
  return headers;
}
