/** `portcullis check` and `portcullis explain`: one decision from a folder and a CheckRequest file. */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fromProtoJson } from '../../proto/envoy.js';
import { assertProtoJsonShape, RequestShapeError } from './request-file.js';
import { compileFolder } from '../policy/folder-source.js';
import { DecisionPipeline } from '../pipeline/pipeline.js';
import { MemoryBackend } from '../quota/memory-backend.js';
import { QuotaEnforcer } from '../quota/phase.js';
import { DirectiveIssuer, MaskKey } from '../masking/token.js';
import type { CheckRequestInput } from '../pipeline/check-request.js';
import type { Decision } from '../pipeline/decision.js';
import { EXIT, usageError, type Command, type Io } from './usage.js';
import { CLI_AUDIT_HELP, CLI_AUDIT_OPTIONS, openCliAudit } from '../audit/cli-trail.js';

const OPTIONS = {
  policies: { type: 'string' },
  request: { type: 'string' },
  now: { type: 'string' },
  ...CLI_AUDIT_OPTIONS,
  help: { type: 'boolean', short: 'h' },
} as const;

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

export function parseNow(v: string | undefined): Date | undefined {
  if (v === undefined) return undefined;
  const d = new Date(v);
  if (!RFC3339.test(v) || Number.isNaN(d.getTime())) throw usageError(`--now must be an RFC 3339 time, got "${v}"`);
  return d;
}

export function readCheckRequest(file: string): CheckRequestInput {
  let text: string;
  try {
    text = file === '-' ? readFileSync(0, 'utf8') : readFileSync(file, 'utf8');
  } catch (err) {
    throw usageError(`cannot read request file ${file}: ${(err as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw usageError(`request file ${file} is not JSON: ${(err as Error).message}`);
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw usageError('the request must be a CheckRequest JSON object');
  try {
    assertProtoJsonShape('envoy.service.auth.v3.CheckRequest', json);
  } catch (err) {
    if (err instanceof RequestShapeError) throw usageError(`request file ${file} is not a CheckRequest: ${err.message}`);
    throw err;
  }
  try {
    return fromProtoJson('envoy.service.auth.v3.CheckRequest', json) as CheckRequestInput;
  } catch (err) {
    throw usageError(`request file ${file} is not a CheckRequest: ${(err as Error).message}`);
  }
}

export function decisionSummary(d: Decision): Record<string, unknown> {
  return { decision: d.allowed ? 'allow' : 'deny', status: d.status, rule: d.rule ?? null, code: d.code, reason: d.reason, headers: d.headers, ...(d.allowed ? { masks: d.audit.masks ?? [] } : {}), ...(Object.keys(d.responseHeaders).length > 0 ? { responseHeaders: d.responseHeaders } : {}), ...(d.audit.wouldDeny ? { wouldDeny: d.audit.wouldDeny } : {}) };
}

/** The decision as printed: the summary, plus the policy, principal, trace and body for explain. */
function decisionOutput(d: Decision, explain: boolean): string {
  return explain ? explainOutput(d) : JSON.stringify(decisionSummary(d));
}

/** What explain prints for a decision (also each failing case of portcullis test). */
export function explainOutput(d: Decision): string {
  const out = decisionSummary(d);
  Object.assign(out, { policy: d.policy ?? null, principal: d.principal ?? null, trace: d.trace, body: d.body ?? null, ...(d.shadow ? { shadow: d.shadow } : {}) });
  return JSON.stringify(out, null, 2);
}

function quotaAt(now: Date | undefined): QuotaEnforcer {
  return new QuotaEnforcer({ backend: new MemoryBackend({ clock: () => (now ?? new Date()).getTime() }) });
}

async function decide(args: string[], io: Io, explain: boolean): Promise<number> {
  const { values } = parseArgs({ args, options: OPTIONS, strict: true, allowPositionals: false });
  if (values.help) {
    io.out(explain ? EXPLAIN.help : CHECK.help);
    return EXIT.OK;
  }
  if (!values.policies || !values.request) throw usageError('--policies DIR and --request FILE are required');
  const now = parseNow(values.now);
  const compiled = compileFolder(values.policies);
  if (compiled.problems.length > 0) {
    for (const p of compiled.problems) io.err(p.format());
    return EXIT.USAGE;
  }
  const request = readCheckRequest(values.request);
  // The directive header is signed with a throwaway key: check shows what would be sent, not a usable token.
  const audit = await openCliAudit(values, io.err);
  const pipeline = new DecisionPipeline({ snapshot: () => compiled.snapshot, audit, directives: new DirectiveIssuer(MaskKey.generate()), quota: quotaAt(now) });
  const d = await pipeline.check(request, now ? { now, explain } : { explain });
  await audit.close();
  io.out(decisionOutput(d, explain));
  return d.allowed ? EXIT.OK : EXIT.DENY;
}

export const CHECK: Command = {
  summary: 'decide one CheckRequest against a policy folder',
  help: `Usage: portcullis check --policies DIR --request FILE [--now RFC3339]

Loads the policy folder, decides the CheckRequest in FILE (canonical proto3 JSON of
envoy.service.auth.v3.CheckRequest; - reads stdin) and prints one JSON line:
  {"decision","status","rule","code","reason","headers"}
and "wouldDeny" when a shadow policy or shadow rule would have denied the request.
--now evaluates at that time (token expiry, CEL now) instead of the clock.

${CLI_AUDIT_HELP}

Exit status: 0 allow, 1 deny, 2 usage, policy or input error.`,
  run: (args, io) => decide(args, io, false),
};

export const EXPLAIN: Command = {
  summary: 'check, plus every rule considered and why it did or did not match',
  help: `Usage: portcullis explain --policies DIR --request FILE [--now RFC3339]

Like check, and prints the policy chosen, the principal (type, tenant, subject) and, for
every rule considered in order, whether it matched and why not; for a condition that was
false, the part of it that made it false (operands of && and || evaluated one by one).
When a shadow policy or shadow rules apply (docs/controls.md), "shadow" holds what they
would have decided: policy, allowed, code, status, rule, reason and their own trace.

${CLI_AUDIT_HELP}

Exit status: 0 allow, 1 deny, 2 usage, policy or input error.`,
  run: (args, io) => decide(args, io, true),
};
