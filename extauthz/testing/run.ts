/**
 * Runs policy test suites against a policy folder: each case is decided by the same pipeline
 * `check` uses (explain on, a fresh in-memory quota table per case, a throwaway masking key),
 * with credentials minted by credentials.ts, and compared field by field with its expectation.
 */
import { PolicyError } from '../errors.js';
import { loadPolicyDir, policyFiles } from '../policy/load.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import { compileSources } from '../policy/store.js';
import { JwksCache } from '../policy/tenants.js';
import { DecisionPipeline } from '../pipeline/pipeline.js';
import type { CheckRequestInput } from '../pipeline/check-request.js';
import type { Decision } from '../pipeline/decision.js';
import { MemoryBackend } from '../quota/memory-backend.js';
import { QuotaEnforcer } from '../quota/phase.js';
import { DirectiveIssuer, MaskKey } from '../masking/token.js';
import { CredentialError, TestCredentials } from './credentials.js';
import { loadSuite, SUITE_PATTERN, SuiteError, type Expectation, type Suite, type TestCase } from './suite.js';

export interface CaseResult {
  suite: Suite;
  case: TestCase;
  /** Empty when the case passed. */
  failures: string[];
  decision: Decision;
  seconds: number;
}

export interface RunResult {
  suites: Suite[];
  results: CaseResult[];
}

/** Problems that stop the run before any case (exit 2): the folder, a suite, a principal. */
export class TestLoadError extends Error {
  constructor(readonly problems: readonly string[]) {
    super(problems.join('\n'));
    this.name = 'TestLoadError';
  }
}

export function suiteFiles(dir: string): string[] {
  return policyFiles(dir, { suites: true }).filter((f) => SUITE_PATTERN.test(f));
}

function loadSuites(dir: string): Suite[] {
  let files: string[];
  try {
    files = suiteFiles(dir);
  } catch (err) {
    throw new TestLoadError([`cannot read ${dir}: ${(err as Error).message}`]);
  }
  if (files.length === 0) throw new TestLoadError([`no test suites (*.test.yaml) under ${dir}`]);
  const problems: string[] = [];
  const suites: Suite[] = [];
  for (const f of files) {
    try {
      suites.push(loadSuite(f));
    } catch (err) {
      if (!(err instanceof SuiteError)) throw err;
      problems.push(err.message);
    }
  }
  if (problems.length > 0) throw new TestLoadError(problems);
  return suites;
}

function format(problems: readonly PolicyError[]): string[] {
  return problems.map((p) => p.format());
}

async function mint(sources: Parameters<typeof TestCredentials.forSources>[0], suites: readonly Suite[]): Promise<TestCredentials> {
  try {
    return await TestCredentials.forSources(sources, suites);
  } catch (err) {
    if (err instanceof CredentialError) throw new TestLoadError([err.message]);
    throw err;
  }
}

/** Every principal a suite describes must name a tenant that exists: a typo is a load error, not a failing case. */
function unknownTenants(suites: readonly Suite[], credentials: TestCredentials): string[] {
  const unknown: string[] = [];
  for (const s of suites) {
    for (const c of s.cases) {
      const p = c.request.principal;
      const ref = p?.jwt?.tenant ?? p?.apiKey?.tenant;
      if (ref === undefined) continue;
      try {
        credentials.tenant(ref);
      } catch (err) {
        unknown.push(`${s.file}: case "${c.name}": ${(err as Error).message}`);
      }
    }
  }
  return unknown;
}

async function compileForTests(dir: string, suites: readonly Suite[]): Promise<Env> {
  const loaded = loadPolicyDir(dir);
  if (loaded.problems.length > 0) throw new TestLoadError(format(loaded.problems));
  const credentials = await mint(loaded.sources, suites);
  const compiled = compileSources(credentials.sources, { jwks: new JwksCache({ allowInsecureLoopback: false }) });
  if (compiled.problems.length > 0) throw new TestLoadError(format(compiled.problems));
  const unknown = unknownTenants(suites, credentials);
  if (unknown.length > 0) throw new TestLoadError(unknown);
  return { snapshot: compiled.snapshot, credentials };
}

interface Env {
  snapshot: PolicySnapshot;
  credentials: TestCredentials;
}

async function checkRequestFor(c: TestCase, index: number, credentials: TestCredentials, now: Date): Promise<CheckRequestInput> {
  const r = c.request;
  const presented = await credentials.present(r.principal, now);
  const headers: Record<string, string> = { 'x-request-id': `portcullis-test-${index}` };
  for (const [k, v] of Object.entries(r.headers ?? {})) headers[k.toLowerCase()] = v;
  Object.assign(headers, presented.headers);
  const http: NonNullable<NonNullable<CheckRequestInput['attributes']>['request']>['http'] = { method: r.method ?? 'GET', host: r.host, path: r.path, headers };
  if (r.body !== undefined) {
    http.body = typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
    http.size = Buffer.byteLength(http.body);
  }
  const source: NonNullable<NonNullable<CheckRequestInput['attributes']>['source']> = { address: { socketAddress: { address: r.sourceIp ?? '192.0.2.1', portValue: 40000 } } };
  if (presented.spiffe) source.principal = presented.spiffe;
  return { attributes: { source, request: { http }, ...(r.contextExtensions ? { contextExtensions: r.contextExtensions } : {}) } };
}

function show(v: unknown): string {
  return v === undefined ? '(absent)' : JSON.stringify(v);
}

function compareHeaders(what: string, expected: Record<string, string | null> | undefined, actual: Record<string, string>, out: string[]): void {
  for (const [k, v] of Object.entries(expected ?? {})) {
    const got = actual[k.toLowerCase()];
    if (v === null ? got !== undefined : got !== v) out.push(`${what} ${k}: expected ${v === null ? '(absent)' : JSON.stringify(v)}, got ${show(got)}`);
  }
}

/** Every way the decision differs from the expectation, one line each. */
export function mismatches(e: Expectation, d: Decision): string[] {
  const out: string[] = [];
  const eq = (what: string, want: unknown, got: unknown): void => {
    if (want !== undefined && JSON.stringify(want) !== JSON.stringify(got)) out.push(`${what}: expected ${show(want)}, got ${show(got)}`);
  };
  eq('decision', e.decision, d.allowed ? 'allow' : 'deny');
  eq('status', e.status, d.status);
  eq('code', e.code, d.code);
  eq('rule', e.rule, d.rule ?? null);
  eq('policy', e.policy, d.policy ?? null);
  eq('masks', e.masks, d.audit.masks ?? []);
  compareHeaders('header', e.headers, d.allowed ? d.responseHeaders : d.headers, out);
  compareHeaders('upstream header', e.upstreamHeaders, d.allowed ? d.headers : {}, out);
  compareWouldDeny(e.wouldDeny, d, out);
  return out;
}

function compareWouldDeny(e: Expectation['wouldDeny'], d: Decision, out: string[]): void {
  const w = d.audit.wouldDeny;
  if (e === null && w) out.push(`wouldDeny: expected none, got ${show(w)}`);
  if (!e) return;
  if (!w) {
    out.push(`wouldDeny: expected ${show(e)}, got none${d.shadow ? '' : ' (no shadow policy or rule applies)'}`);
    return;
  }
  for (const k of ['policy', 'rule', 'code', 'status'] as const) {
    if (e[k] !== undefined && e[k] !== w[k]) out.push(`wouldDeny.${k}: expected ${show(e[k])}, got ${show(w[k])}`);
  }
}

function timeOf(c: TestCase, s: Suite, runStart: Date): Date {
  const t = c.now ?? s.now;
  return t ? new Date(t) : runStart;
}

async function runCase(s: Suite, c: TestCase, index: number, env: Env & { runStart: Date }): Promise<CaseResult> {
  const started = process.hrtime.bigint();
  const now = timeOf(c, s, env.runStart);
  const pipeline = new DecisionPipeline({
    snapshot: () => env.snapshot,
    clock: () => now,
    quota: new QuotaEnforcer({ backend: new MemoryBackend({ clock: () => now.getTime() }) }),
    directives: new DirectiveIssuer(MaskKey.generate()),
  });
  let decision: Decision | undefined;
  for (let i = 0; i < (c.repeat ?? 1); i++) {
    // A fresh request (and token) each time: repeat models repeated calls, as the quotas see them.
    decision = await pipeline.check(await checkRequestFor(c, index, env.credentials, now), { now, explain: true });
  }
  return { suite: s, case: c, failures: mismatches(c.expect, decision!), decision: decision!, seconds: Number(process.hrtime.bigint() - started) / 1e9 };
}

/** Loads the folder and its suites (TestLoadError: exit 2), then decides every case in order. */
export async function runTests(dir: string, runStart: Date = new Date()): Promise<RunResult> {
  const suites = loadSuites(dir);
  const env = { ...(await compileForTests(dir, suites)), runStart };
  const results: CaseResult[] = [];
  let index = 0;
  for (const s of suites) for (const c of s.cases) results.push(await runCase(s, c, index++, env));
  return { suites, results };
}
