/**
 * Path parameters (`;`) and fragments (`#`) per the policy of the host (ApiPolicy
 * spec.pathHandling). Upstreams disagree on them: a servlet container routes `/admin;x=1` as
 * `/admin`, most others as a segment named `admin;x=1`, and a fragment should never reach a
 * server at all. Both are refused unless the policy names the behaviour its upstream has.
 */
import type { CompiledPolicy } from '../policy/compile.js';
import { decodeSegment, type RequestContext } from './context.js';

export type Reroute = (segments: readonly string[]) => CompiledPolicy | undefined;

/** Why the request is refused (a BAD_REQUEST reason), or undefined; `strip` rewrites ctx.path and ctx.segments. */
export function applyPathHandling(ctx: RequestContext, policy: CompiledPolicy, reroute: Reroute): string | undefined {
  const handling = policy.spec.pathHandling ?? {};
  if (ctx.hasFragment && (handling.fragment ?? 'reject') === 'reject') return 'fragment (#) in the path: refused (ApiPolicy pathHandling.fragment)';
  if (!ctx.hasPathParameters) return undefined;
  const mode = handling.parameters ?? 'reject';
  if (mode === 'reject') return 'path parameter (;) in the path: refused (ApiPolicy pathHandling.parameters)';
  return mode === 'keep' ? undefined : strip(ctx, policy, reroute);
}

function strip(ctx: RequestContext, policy: CompiledPolicy, reroute: Reroute): string | undefined {
  const raw = ctx.path.slice(1).split('/').map((s) => s.split(';')[0]!);
  if (raw.length > 1 && raw[raw.length - 1] === '') raw.pop();
  const segments = raw.map(decodeSegment);
  // The stripped path must still be this policy's: stripping may not move a request elsewhere.
  if (reroute(segments) !== policy) return 'the path without its parameters belongs to another policy';
  ctx.path = '/' + raw.join('/');
  ctx.segments = segments;
  return undefined;
}
