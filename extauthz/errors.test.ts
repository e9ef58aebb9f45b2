import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { CATALOGUE, PolicyError, PolicyLoadError, PortcullisError, type ErrorCode } from './errors.js';

// From dist/extauthz/ or extauthz/, the docs folder is two levels up from dist and one from source.
const DOC = new URL('../../docs/errors.md', import.meta.url);

interface Row {
  code: string;
  http: number;
  grpc: string;
  meaning: string;
}

/** The rows of the table whose first column is a `CODE`. */
function parseTable(markdown: string): Row[] {
  const rows: Row[] = [];
  for (const line of markdown.split('\n')) {
    const m = /^\|\s*`([A-Z_]+)`\s*\|(.*)\|\s*$/.exec(line);
    if (!m) continue;
    const cells = m[2]!.split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, '|'));
    assert.equal(cells.length, 3, `row ${m[1]} must have four columns`);
    rows.push({ code: m[1]!, http: Number(cells[0]), grpc: cells[1]!, meaning: cells[2]! });
  }
  return rows;
}

describe('error catalogue', () => {
  const rows = parseTable(readFileSync(DOC, 'utf8'));

  test('docs/errors.md has one row per catalogue code, in the same order', () => {
    assert.deepEqual(rows.map((r) => r.code), Object.keys(CATALOGUE));
  });

  for (const [code, entry] of Object.entries(CATALOGUE)) {
    test(`${code}: HTTP status, gRPC code and meaning match`, () => {
      const row = rows.find((r) => r.code === code);
      assert.ok(row, `${code} is missing from docs/errors.md`);
      assert.equal(row.http, entry.http);
      assert.equal(row.grpc, `${grpc.status[entry.grpc]} (${entry.grpc})`);
      assert.equal(row.meaning, entry.summary);
    });
  }

  test('every code is upper snake case and every HTTP status is an error status', () => {
    for (const [code, entry] of Object.entries(CATALOGUE)) {
      assert.match(code, /^[A-Z][A-Z0-9_]*$/);
      assert.ok(entry.http >= 400 && entry.http < 600, code);
      assert.notEqual(entry.grpc, grpc.status.OK, code);
    }
  });
});

describe('error classes', () => {
  test('PortcullisError carries its code and HTTP status', () => {
    const e = new PortcullisError('QUOTA_EXCEEDED', 'over', { cause: new Error('x') });
    assert.equal(e.code, 'QUOTA_EXCEEDED');
    assert.equal(e.httpStatus, 429);
    assert.ok(e.cause instanceof Error);
  });

  const format: [string, ConstructorParameters<typeof PolicyError>[2], string][] = [
    ['everything', { file: 'p.yaml', document: 2, object: 'ApiPolicy t/p', path: '/spec/rules/0/when', rule: 'r', line: 3, column: 7 }, 'p.yaml#2 ApiPolicy t/p /spec/rules/0/when rule r line 3 column 7: POLICY_CEL: bad'],
    ['file only', { file: 'p.yaml' }, 'p.yaml: POLICY_CEL: bad'],
    ['no location', {}, ': POLICY_CEL: bad'],
  ];
  for (const [name, location, expected] of format) {
    test(`PolicyError.format: ${name}`, () => assert.equal(new PolicyError('POLICY_CEL', 'bad', location).format(), expected));
  }

  test('PolicyLoadError lists every problem and takes the first code', () => {
    const e = new PolicyLoadError([new PolicyError('POLICY_YAML', 'a', { file: 'x' }), new PolicyError('POLICY_CEL', 'b', { file: 'y' })]);
    assert.equal(e.code, 'POLICY_YAML' satisfies ErrorCode);
    assert.match(e.message, /2 policy error\(s\):\n {2}x: POLICY_YAML: a\n {2}y: POLICY_CEL: b/);
  });
});
