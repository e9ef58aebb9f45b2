/**
 * `portcullis test`: the shipped example suites pass and cover every example rule; a suite with
 * deliberate failures exits 1 with each mismatch, the explain trace and a JUnit report; suites
 * that do not load exit 2. Credentials are minted in memory: the examples' JWKS URI (the dev
 * IdP on loopback) is never contacted, and no key appears in a suite.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../cli/main.js';
import type { Io } from '../cli/usage.js';
import { loadPolicyDir } from '../policy/load.js';
import { xmlEscape } from './junit.js';
import { suiteFiles } from './run.js';
import { loadSuite } from './suite.js';

const EXAMPLES = 'examples/policies';

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (s) => (out += s + '\n'), err: (s) => (err += s + '\n') };
  const code = await main(argv, io);
  return { code, out, err };
}

let tmp: string;

/** A copy of the example policies with the given suites (file name → YAML) in tests/. */
function folderWith(name: string, suites: Record<string, string>): string {
  const dir = join(tmp, name);
  cpSync(EXAMPLES, dir, { recursive: true, filter: (src) => !src.includes('/tests') });
  mkdirSync(join(dir, 'tests'));
  for (const [f, text] of Object.entries(suites)) writeFileSync(join(dir, 'tests', f), text);
  return dir;
}

before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'portcullis-test-cmd-'));
});

after(() => {
  rmSync(tmp, { recursive: true, force: true });
});

void describe('portcullis test: the example suites', () => {
  test('all pass (exit 0), with the JWKS source replaced by a key minted in memory', async () => {
    const junit = join(tmp, 'examples.xml');
    const r = await run('test', EXAMPLES, '--junit', junit);
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /^\d+ passed, 0 failed, in 3 suite\(s\)$/m);
    assert.doesNotMatch(r.out, /^FAIL/m);
    const xml = readFileSync(junit, 'utf8');
    assert.match(xml, /<testsuites name="portcullis test" tests="\d+" failures="0" errors="0"/);
    assert.doesNotMatch(xml, /<failure/);
  });

  test('they cover every rule of every example policy, allowed and denied', () => {
    const loaded = loadPolicyDir(EXAMPLES);
    assert.deepEqual(loaded.problems.map((p) => p.format()), [], 'the suites are not read as policies');
    const suites = suiteFiles(EXAMPLES).map(loadSuite);
    const named = new Set<string>();
    for (const s of suites) {
      for (const c of s.cases) {
        if (typeof c.expect.rule === 'string') named.add(c.expect.rule);
        if (c.expect.wouldDeny?.rule) named.add(c.expect.wouldDeny.rule);
      }
    }
    const rules = loaded.sources.policies.flatMap((p) => p.spec.rules.map((r) => r.name));
    assert.ok(rules.length >= 8);
    assert.deepEqual(rules.filter((r) => !named.has(r)), [], 'example rules no case expects');
    const decisions = new Set(suites.flatMap((s) => s.cases.map((c) => c.expect.decision)));
    assert.deepEqual([...decisions].sort(), ['allow', 'deny']);
    // Suites hold no secrets: no token, key or digest-looking value.
    for (const f of suiteFiles(EXAMPLES)) assert.doesNotMatch(readFileSync(f, 'utf8'), /eyJ[A-Za-z0-9_-]{10,}|[0-9a-f]{64}|authorization:/i, f);
  });
});

const FAILING = `suite: deliberate-failures
now: "2026-03-01T12:00:00Z"
cases:
  - name: passes
    request: { host: open.c2g.example, path: /healthz }
    expect: { decision: allow, rule: public-health }
  - name: "wrong rule <&\\"'> \\u0001 expected"
    request: { host: open.c2g.example, path: /healthz }
    expect: { decision: allow, rule: "no-such-rule <b>" }
  - name: expects an allow that is a deny
    request:
      host: records.c2g.example
      path: /v1/citizens/c-2/records
      principal: { jwt: { tenant: citizen-app, claims: { sub: c-1, amr: [mfa] } } }
    expect: { decision: allow, status: 200, code: null, upstreamHeaders: { x-portcullis-tenant: citizen-app } }
  - name: expects a would-be denial that is not there
    request:
      host: records.c2g.example
      path: /v1/citizens/c-1/records
      headers: { x-purpose-of-use: tax-audit, x-case-id: A-1 }
      principal: { spiffe: "spiffe://gov.example/ns/revenue/sa/auditor" }
    expect: { decision: allow, wouldDeny: { rule: tax-audit-needs-case-id } }
`;

void describe('portcullis test: failures', () => {
  test('a suite with deliberate failures exits 1, naming each mismatch with the explain trace', async () => {
    const dir = folderWith('failing', { 'fail.test.yaml': FAILING });
    const junit = join(tmp, 'failing.xml');
    const r = await run('test', dir, '--junit', junit);
    assert.equal(r.code, 1, r.err);
    assert.match(r.out, /^ok {4}deliberate-failures › passes$/m);
    assert.match(r.out, /^1 passed, 3 failed, in 1 suite\(s\)$/m);
    assert.match(r.out, /FAIL {2}deliberate-failures › wrong rule[^\n]*\n {4}- rule: expected "no-such-rule <b>", got "public-health"\n {4}explain:\n {4}\{/);
    assert.match(r.out, /- decision: expected "allow", got "deny"\n {4}- status: expected 200, got 403\n {4}- code: expected null, got "FORBIDDEN"\n {4}- upstream header x-portcullis-tenant: expected "citizen-app", got \(absent\)/);
    assert.match(r.out, /"rule": "citizen-reads-own-record",\n\s+"effect": "allow",\n\s+"matched": false,\n\s+"reason": "condition is false: [^"]+"/, 'the explain trace names why the rule did not match');
    assert.match(r.out, /- wouldDeny: expected \{"rule":"tax-audit-needs-case-id"\}, got none/);

    const xml = readFileSync(junit, 'utf8');
    assert.match(xml, /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<testsuites name="portcullis test" tests="4" failures="3" errors="0" time="[\d.]+">\n {2}<testsuite name="deliberate-failures" file="[^"]*fail\.test\.yaml" tests="4" failures="3"/);
    assert.match(xml, /<testcase name="passes" classname="deliberate-failures" file="[^"]+" time="[\d.]+"\/>/);
    // Names, messages and bodies are escaped; a control character cannot reach the report.
    assert.match(xml, /<testcase name="wrong rule &lt;&amp;&quot;&apos;&gt; \uFFFD expected"/);
    assert.match(xml, /<failure message="rule: expected &quot;no-such-rule &lt;b&gt;&quot;, got &quot;public-health&quot;" type="mismatch">- rule: expected &quot;no-such-rule &lt;b&gt;&quot;/);
    assert.doesNotMatch(xml, /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/);
    assert.equal((xml.match(/<failure /g) ?? []).length, 3);
    assert.equal((xml.match(/<\/failure>/g) ?? []).length, 3);
    assert.match(xml, /explain:\n\{\n {2}&quot;decision&quot;: &quot;deny&quot;/);
    // Nothing but escaped text between the tags: every < in the report opens one of ours.
    for (const tag of xml.match(/<[^>]*>/g) ?? []) assert.match(tag, /^<(\?xml |\/?testsuites|\/?testsuite|\/?testcase|\/?failure)[ >/]?/, tag);
  });
});

void describe('portcullis test: suites that do not load (exit 2)', () => {
  const cases: [string, Record<string, string> | undefined, RegExp][] = [
    ['a misspelt expectation', { 'a.test.yaml': 'cases:\n  - name: x\n    request: { host: a, path: / }\n    expect: { decison: allow }\n' }, /a\.test\.yaml: \/cases\/0\/expect: unknown field "decison"/],
    ['a principal of an unknown tenant', { 'a.test.yaml': 'cases:\n  - name: x\n    request: { host: a, path: /, principal: { jwt: { tenant: nobody } } }\n    expect: { decision: deny }\n' }, /case "x": no Tenant nobody in the policy folder/],
    ['two principals in one request', { 'a.test.yaml': 'cases:\n  - name: x\n    request: { host: a, path: /, principal: { spiffe: "spiffe://a/b", apiKey: { tenant: partner-acme } } }\n    expect: { decision: deny }\n' }, /\/cases\/0\/request\/principal: must NOT have more than 1 properties/],
    ['YAML that does not parse', { 'a.test.yaml': 'cases: [\n' }, /a\.test\.yaml: YAML: /],
    ['a suite without cases', { 'a.test.yaml': 'suite: empty\n' }, /must have required property 'cases'/],
    ['duplicate case names', { 'a.test.yaml': 'cases:\n  - { name: x, request: { host: a, path: / }, expect: { decision: deny } }\n  - { name: x, request: { host: a, path: / }, expect: { decision: deny } }\n' }, /two cases are named "x"/],
    ['no suites at all', undefined, /no test suites \(\*\.test\.yaml\) under/],
  ];
  for (const [name, suites, message] of cases) {
    test(name, async () => {
      const dir = folderWith(`bad-${name.replace(/\W+/g, '-')}`, suites ?? {});
      const r = await run('test', dir);
      assert.equal(r.code, 2, r.out);
      assert.match(r.err, message);
      assert.equal(r.out, '', 'no case ran');
    });
  }

  test('a policy folder that does not compile', async () => {
    const dir = folderWith('bad-policy', { 'a.test.yaml': 'cases:\n  - { name: x, request: { host: a, path: / }, expect: { decision: deny } }\n' });
    writeFileSync(join(dir, '50-broken.yaml'), 'apiVersion: portcullis.io/v1alpha1\nkind: ApiPolicy\nmetadata: { name: b, namespace: c2g }\nspec:\n  hosts: [b.example]\n  rules:\n    - name: r\n      when: "principal.subject =="\n');
    const r = await run('test', dir);
    assert.equal(r.code, 2);
    assert.match(r.err, /50-broken\.yaml#1 ApiPolicy c2g\/b \/spec\/rules\/0\/when rule r line 1 column \d+: POLICY_CEL/);
  });

  test('usage errors', async () => {
    assert.equal((await run('test')).code, 2);
    assert.equal((await run('test', EXAMPLES, '--junit')).code, 2);
    assert.equal((await run('test', EXAMPLES, '--nope')).code, 2);
  });
});

void test('xmlEscape: markup, quotes and characters XML 1.0 cannot carry', () => {
  assert.equal(xmlEscape(`a<b>&"'`), 'a&lt;b&gt;&amp;&quot;&apos;');
  assert.equal(xmlEscape('x\u0000y\u001bz\ttab\nnl'), 'x\uFFFDy\uFFFDz\ttab\nnl');
  assert.equal(xmlEscape('lone \uD800 surrogate, pair 😀'), 'lone \uFFFD surrogate, pair 😀');
});
