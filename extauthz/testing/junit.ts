/**
 * JUnit XML for CI systems (the schema Jenkins, GitLab and GitHub reporters read): one
 * testsuite per suite file, one testcase per case, a failure element with the mismatches and the
 * explain trace. Every attribute and text node is escaped, and characters XML 1.0 cannot carry
 * (control characters, lone surrogates) are replaced, so a hostile rule name or header value
 * cannot break the report.
 */
import type { CaseResult, RunResult } from './run.js';

// XML 1.0 Char: #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
const NOT_XML_CHAR = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;

export function xmlEscape(v: string): string {
  return v.replace(NOT_XML_CHAR, '\uFFFD').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}

function seconds(s: number): string {
  return s.toFixed(3);
}

function testcase(r: CaseResult, details: (r: CaseResult) => string): string {
  const open = `    <testcase name="${xmlEscape(r.case.name)}" classname="${xmlEscape(r.suite.name)}" file="${xmlEscape(r.suite.file)}" time="${seconds(r.seconds)}"`;
  if (r.failures.length === 0) return `${open}/>`;
  const message = xmlEscape(r.failures.join('; '));
  return `${open}>\n      <failure message="${message}" type="mismatch">${xmlEscape(details(r))}</failure>\n    </testcase>`;
}

/** The report; `details` gives a failure's body text (the mismatches and the explain trace). */
export function junitXml(run: RunResult, details: (r: CaseResult) => string): string {
  const lines = ['<?xml version="1.0" encoding="UTF-8"?>'];
  const failures = run.results.filter((r) => r.failures.length > 0).length;
  const total = run.results.reduce((t, r) => t + r.seconds, 0);
  lines.push(`<testsuites name="portcullis test" tests="${run.results.length}" failures="${failures}" errors="0" time="${seconds(total)}">`);
  for (const s of run.suites) {
    const rs = run.results.filter((r) => r.suite === s);
    const f = rs.filter((r) => r.failures.length > 0).length;
    lines.push(`  <testsuite name="${xmlEscape(s.name)}" file="${xmlEscape(s.file)}" tests="${rs.length}" failures="${f}" errors="0" skipped="0" time="${seconds(rs.reduce((t, r) => t + r.seconds, 0))}">`);
    for (const r of rs) lines.push(testcase(r, details));
    lines.push('  </testsuite>');
  }
  lines.push('</testsuites>');
  return lines.join('\n') + '\n';
}
