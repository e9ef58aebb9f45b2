import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { formatSummary, summarize } from './show.js';

void test('audit show counts decisions by decision, tenant, rule and code, and masking outcomes', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-show-'));
  try {
    const lines = [
      { type: 'chain-start', time: '2026-11-23T10:00:00.000Z' },
      { type: 'decision', time: '2026-11-23T10:01:00.000Z', decision: 'allow', tenant: 'a', rule: 'r1', code: null },
      { type: 'decision', time: '2026-11-23T11:02:00.000Z', decision: 'deny', tenant: 'a', rule: null, code: 'FORBIDDEN' },
      { type: 'masking', time: '2026-11-23T11:02:01.000Z', outcome: 'masked' },
      { type: 'masking', time: '2026-11-23T11:02:02.000Z', outcome: 'blocked' },
      { type: 'checkpoint', time: '2026-11-23T11:03:00.000Z' },
    ];
    const file = join(dir, 'audit.log');
    writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\nnot json\n');
    const s = await summarize([file]);
    assert.equal(s.records, 2);
    assert.equal(s.chains, 1);
    assert.equal(s.checkpoints, 1);
    assert.deepEqual(s.byDecision, { allow: 1, deny: 1 });
    assert.deepEqual(s.byCode, { OK: 1, FORBIDDEN: 1 });
    assert.deepEqual(s.byRule, { r1: 1, '(none)': 1 });
    assert.deepEqual(s.byMasking, { masked: 1, blocked: 1 });
    assert.deepEqual(Object.keys(s.byHour), ['2026-11-23T10:00Z', '2026-11-23T11:00Z']);
    assert.match(formatSummary(s), /masking outcomes:\n {2}blocked {2}1/);
    assert.equal(s.wouldDeny.records, 0);
    assert.doesNotMatch(formatSummary(s), /shadow/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

void test('audit show summarises would-be denials (shadow mode) by rule and tenant', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pc-show-'));
  try {
    const w = (rule: string | null, code = 'FORBIDDEN'): Record<string, unknown> => ({ policy: 'c2g/records', rule, code, status: 403 });
    const lines = [
      { type: 'decision', time: '2026-11-23T10:01:00.000Z', decision: 'allow', tenant: 'a', rule: 'r1', code: null, wouldDeny: w('stricter') },
      { type: 'decision', time: '2026-11-23T10:02:00.000Z', decision: 'allow', tenant: 'b', rule: 'r1', code: null, wouldDeny: w('stricter') },
      { type: 'decision', time: '2026-11-23T10:03:00.000Z', decision: 'deny', tenant: 'a', rule: null, code: 'FORBIDDEN', wouldDeny: w(null) },
      { type: 'decision', time: '2026-11-23T10:04:00.000Z', decision: 'allow', tenant: 'b', rule: 'r1', code: null, wouldDeny: w('r1', 'QUOTA_EXCEEDED') },
      { type: 'decision', time: '2026-11-23T10:05:00.000Z', decision: 'allow', tenant: 'b', rule: 'r1', code: null },
    ];
    const file = join(dir, 'audit.log');
    writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
    const s = await summarize([file]);
    assert.deepEqual(s.wouldDeny, {
      records: 4,
      allowedNow: 3,
      byRule: { 'c2g/records stricter': 2, 'c2g/records (default)': 1, 'c2g/records r1': 1 },
      byTenant: { a: 2, b: 2 },
      byCode: { FORBIDDEN: 3, QUOTA_EXCEEDED: 1 },
    });
    const text = formatSummary(s);
    assert.match(text, /shadow: 4 would-be denial\(s\), 3 of them allowed now/);
    assert.match(text, /would deny by rule \(policy rule\):\n {2}c2g\/records stricter {3}2/);
    assert.match(text, /would deny by tenant:\n {2}a {2}2\n {2}b {2}2/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
