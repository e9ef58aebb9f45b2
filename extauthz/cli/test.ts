/** `portcullis test DIR`: run the policy test suites (*.test.yaml) under DIR against DIR's policies. */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { junitXml } from '../testing/junit.js';
import { runTests, TestLoadError, type CaseResult } from '../testing/run.js';
import { explainOutput } from './check.js';
import { EXIT, usageError, type Command } from './usage.js';

function label(r: CaseResult): string {
  return `${r.suite.name} › ${r.case.name}`;
}

/** A failure's report: each mismatch, then the decision as explain prints it (rules and why). */
export function failureDetails(r: CaseResult): string {
  return [...r.failures.map((f) => `- ${f}`), 'explain:', explainOutput(r.decision)].join('\n');
}

function indent(text: string): string {
  return text.split('\n').map((l) => `    ${l}`).join('\n');
}

export const TEST: Command = {
  summary: 'run the policy test suites of a folder (expected decisions, minted credentials)',
  help: `Usage: portcullis test DIR [--junit FILE]
Loads the policies under DIR as validate does, then runs every test suite under DIR: the
YAML files named *.test.yaml (by convention in DIR/tests/; the policy loader never reads
them as policies). A suite:
  suite: NAME                      optional (default: the file name)
  now: RFC3339                     optional time of every case (default: now)
  cases:
    - name: TEXT
      request: { method, host, path, headers, body, sourceIp, contextExtensions,
                 principal: one of
                   jwt: { tenant, claims, expiresIn }   a token minted for the tenant's
                                                        issuer and first audience
                   apiKey: { tenant, id }               a key registered for the tenant
                   spiffe: spiffe://...                 the mTLS peer (source.principal) }
      repeat: N                    decide N times (quotas charge), check the last
      now: RFC3339                 this case's time
      expect: { decision, status, code, rule, policy, masks, headers, upstreamHeaders,
                wouldDeny }        only the fields given are compared
Suites hold no secrets: every JWT tenant's key source is replaced, for this run only, by a
key generated in memory, and every API-key tenant's Secret by digests of generated keys.
Each case gets a fresh in-memory quota table. A failure is printed with every mismatch and
the explain output (each rule considered and why it did or did not match).
  --junit FILE   also write a JUnit XML report to FILE
Exit status: 0 all cases pass, 1 some fail, 2 usage error, or a policy or suite that does
not load (with every problem).`,
  async run(args, io) {
    const { values, positionals } = parseArgs({ args, options: { junit: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: true });
    if (values.help) {
      io.out(TEST.help);
      return EXIT.OK;
    }
    if (positionals.length !== 1) throw usageError('test takes exactly one folder');
    let run;
    try {
      run = await runTests(positionals[0]!);
    } catch (err) {
      if (!(err instanceof TestLoadError)) throw err;
      for (const p of err.problems) io.err(p);
      return EXIT.USAGE;
    }
    for (const r of run.results) {
      if (r.failures.length === 0) io.out(`ok    ${label(r)}`);
      else io.out(`FAIL  ${label(r)}\n${indent(failureDetails(r))}`);
    }
    const failed = run.results.filter((r) => r.failures.length > 0).length;
    io.out(`${run.results.length - failed} passed, ${failed} failed, in ${run.suites.length} suite(s)`);
    if (values.junit) {
      try {
        writeFileSync(values.junit, junitXml(run, failureDetails));
      } catch (err) {
        throw usageError(`cannot write --junit ${values.junit}: ${(err as Error).message}`);
      }
    }
    return failed > 0 ? EXIT.DENY : EXIT.OK;
  },
};
