/**
 * The operator's generated Istio objects against Istio's and Envoy's own Go types (the
 * conformance client's --mesh mode, test/conformance/mesh.go): every translation golden case is
 * translated again, each object written to a folder and checked — CUSTOM AuthorizationPolicies
 * must send every probe request (unlisted Hosts, cluster names, IPs, any path and method) to the
 * provider under Istio's rule semantics; EnvoyFilters must parse as Istio's EnvoyFilter and their
 * ext_proc patch as Envoy's HttpFilter, valid by Envoy's rules, fail closed, after ext_authz.
 * Negative controls (the old host-narrowed policy, a fail-open filter) prove the checks can fail.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { translate, type GeneratedObject } from '../../operator/translate.js';
import { goldenCases } from '../helpers/golden.js';
import { ensureConformanceBinary, findGo } from './binary.js';

const go = findGo();

function run(bin: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(bin, args, { timeout: 120_000, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

const NARROWED: GeneratedObject = {
  apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy',
  metadata: { name: 'old-narrowed', namespace: 'c2g', labels: {}, ownerReferences: [] },
  spec: { selector: { matchLabels: { app: 'records' } }, action: 'CUSTOM', provider: { name: 'portcullis' }, rules: [{ to: [{ operation: { hosts: ['records.c2g.example', 'records.c2g.example:*'] } }] }] },
};

function failOpen(filter: GeneratedObject): GeneratedObject {
  const copy = structuredClone(filter);
  const patch = (copy.spec.configPatches as { patch: { value: { typed_config: Record<string, unknown> } } }[])[0]!.patch;
  patch.value.typed_config.failure_mode_allow = true;
  return { ...copy, metadata: { ...copy.metadata, name: 'fail-open' } };
}

void describe('generated Istio objects vs Istio and Envoy types', { skip: go ? false : 'no Go toolchain: the conformance client cannot be built' }, () => {
  let dir: string;
  let lines: Map<string, string>;
  const generated: string[] = [];

  before(async () => {
    const bin = await ensureConformanceBinary(go!);
    dir = mkdtempSync(path.join(os.tmpdir(), 'portcullis-mesh-'));
    let envoyFilter: GeneratedObject | undefined;
    for (const { name, input, config } of goldenCases()) {
      translate(input, config).objects.forEach((o, i) => {
        if (!o.apiVersion.includes('istio.io/')) return;
        const file = `${name}-${i}`;
        generated.push(`mesh/${o.kind}/${file}`);
        writeFileSync(path.join(dir, `${file}.yaml`), stringify(o));
        if (o.kind === 'EnvoyFilter') envoyFilter ??= o;
      });
    }
    assert.ok(envoyFilter, 'some golden case generates an EnvoyFilter');
    writeFileSync(path.join(dir, 'zz-control-narrowed.yaml'), stringify(NARROWED));
    writeFileSync(path.join(dir, 'zz-control-fail-open.yaml'), stringify(failOpen(envoyFilter)));
    const out = await run(bin.path, ['--mesh', dir]);
    lines = new Map(out.stdout.split('\n').flatMap((l) => {
      const m = /^(PASS|FAIL|SKIP) (\S+?)(?::\s(.*))?$/.exec(l);
      return m ? [[m[2]!, `${m[1]} ${m[3] ?? ''}`.trim()] as [string, string]] : [];
    }));
  }, { timeout: 30 * 60_000 });

  after(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  void test('every generated AuthorizationPolicy, PeerAuthentication and EnvoyFilter passes', () => {
    assert.ok(generated.some((g) => g.startsWith('mesh/AuthorizationPolicy/')) && generated.some((g) => g.startsWith('mesh/EnvoyFilter/')) && generated.some((g) => g.startsWith('mesh/PeerAuthentication/')));
    for (const g of generated) assert.equal(lines.get(g), 'PASS', `${g}: ${lines.get(g) ?? 'not reported'}`);
  });

  void test('a host-narrowed CUSTOM policy is caught: a request by the cluster name would bypass the provider', () => {
    const line = lines.get('mesh/AuthorizationPolicy/zz-control-narrowed') ?? '';
    assert.match(line, /^FAIL /);
    assert.match(line, /Host "records-api"\) matches no rule: Istio would allow it without asking the provider/);
  });

  void test('a fail-open ext_proc filter is caught by the project rules', () => {
    assert.match(lines.get('mesh/EnvoyFilter/zz-control-fail-open') ?? '', /^FAIL .*failure_mode_allow must be false/);
  });
});
