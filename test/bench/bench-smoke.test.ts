/** The in-process benchmark runs end to end and produces rows (no timing assertions). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createWorkload } from './workload.js';
import { loadSnapshot, phaseTable } from './phases.js';
import { formatMarkdown, formatText } from './table.js';

void test('per-phase benchmark produces a row per phase, with and without the token cache', async () => {
  const w = await createWorkload(5, 20);
  try {
    const table = await phaseTable(loadSnapshot(w.dir), w, 300);
    const phases = table.rows.map((r) => r[0]);
    for (const p of ['parse', 'route', 'identify', 'authorize', 'quota', 'total (check)']) assert.ok(phases.includes(p), `missing phase ${p}`);
    for (const r of table.rows) assert.equal(r.length, table.headers.length);
    for (const run of table.runs) {
      assert.equal(run.checks, 300);
      assert.equal(run.allowed, run.checks, `the workload mix should be allowed; first deny: ${run.firstDeny}`);
    }
    assert.match(formatText(table), /total \(check\)/);
    assert.match(formatMarkdown(table), /^### Per-phase cost/);
  } finally {
    w.remove();
  }
});

void test('scale benchmark: every figure is measured, and an edit compiles one policy', async () => {
  const { measureScale, scaleRow, SCALE_HEADERS } = await import('./scale.js');
  const point = await measureScale(12, 200);
  // Heap growth is measured between two full collections; for a dozen policies it is within what
  // the collections themselves free (the loaded sources), so it may be slightly negative.
  for (const [k, v] of Object.entries(point)) assert.ok(Number.isFinite(v) && (k === 'heapMB' || v >= 0), `${k} = ${v}`);
  assert.equal(scaleRow(point).length, SCALE_HEADERS.length);
});

void test('the sidecar-shaped mix, encoded as Envoy sends it and decoded by the lean codec, is allowed in full', async () => {
  const { DecisionPipeline } = await import('../../extauthz/pipeline/pipeline.js');
  const { decodeCheckRequest } = await import('../../extauthz/server/codec.js');
  const { fromProtoJson, protoRoot } = await import('../../proto/envoy.js');
  const w = await createWorkload(5, 20);
  try {
    const snapshot = loadSnapshot(w.dir);
    const pipeline = new DecisionPipeline({ snapshot: () => snapshot });
    const type = protoRoot().lookupType('envoy.service.auth.v3.CheckRequest');
    const denies: string[] = [];
    for (const r of w.sidecar) {
      const bytes = Buffer.from(type.encode(type.fromObject(fromProtoJson('envoy.service.auth.v3.CheckRequest', r))).finish());
      const d = await pipeline.check(decodeCheckRequest(bytes));
      if (!d.allowed) denies.push(`${d.code}: ${d.reason}`);
    }
    assert.deepEqual(denies, []);
    assert.equal(Object.keys(w.sidecar[0]!.attributes!.request!.http!.headers!).length >= 15, true, 'sidecar requests carry at least 15 headers');
  } finally {
    w.remove();
  }
});
