import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { loadYaml, tempPolicyDir } from '../../test/helpers/policies.js';
import { rmSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { FolderPolicySource } from './folder-source.js';
import { loadPolicyDir, YAML_LIMITS } from './load.js';
import type { PolicySnapshot } from './snapshot.js';
import { ConvertedObjects, SourceConverter, type Raw } from '../../kube/objects.js';
import type { ApiPolicyObject } from './model.js';
import { generationFingerprint, PolicyStore, type ApplyResult, type StoreInput } from './store.js';

const TENANT = `apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: agency, namespace: t, uid: tu, generation: 1 }
spec:
  type: agency
  identity: { mtls: { spiffeIds: ["spiffe://td/ns/a/*"] } }
  quotas: [{ name: daily, limit: 10, per: 24h }]
`;

const policyYaml = (i: number, when = 'true', generation = 1, host = `api-${i}.example`): string => `apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: p${i}, namespace: t, uid: u${i}, generation: ${generation} }
spec:
  hosts: [${host}]
  rules:
    - name: r
      when: "${when}"
      quotas: [{ name: daily }]
`;

function input(texts: string[]): StoreInput {
  const loaded = loadYaml(Object.fromEntries(texts.map((t, i) => [`f${i}.yaml`, t])));
  assert.deepEqual(loaded.problems.map((p) => p.format()), []);
  return loaded.sources;
}

const POLICIES = [0, 1, 2, 3].map((i) => policyYaml(i));

describe('policy store: one reload model, per object', () => {
  test('a one-policy edit compiles only that policy and shares every other compiled object', () => {
    const store = new PolicyStore({ fingerprint: generationFingerprint });
    const first = store.apply(input([TENANT, ...POLICIES]));
    assert.equal(first.stats.policiesCompiled, 4);
    const edited = store.apply(input([TENANT, ...POLICIES.slice(0, 3), policyYaml(3, 'false', 2)]));
    assert.equal(edited.stats.policiesCompiled, 1);
    assert.equal(edited.stats.tenantsCompiled, 0);
    assert.ok(edited.changed);
    assert.ok(edited.snapshot.version > first.snapshot.version);
    for (const k of ['t/p0', 't/p1', 't/p2']) assert.equal(edited.snapshot.byKey.get(k), first.snapshot.byKey.get(k));
    assert.notEqual(edited.snapshot.byKey.get('t/p3'), first.snapshot.byKey.get('t/p3'));
    assert.equal(edited.snapshot.route('api-3.example', [], {})?.rules[0]?.when?.source, 'false');
    // The earlier snapshot is untouched (copy-on-write): in-flight Checks keep a consistent view.
    assert.equal(first.snapshot.route('api-3.example', [], {})?.rules[0]?.when?.source, 'true');
  });

  test('the same input objects applied again are known by identity; an edit changes only its own report', () => {
    const store = new PolicyStore({ fingerprint: generationFingerprint });
    const sources = input([TENANT, ...POLICIES]);
    const first = store.apply(sources);
    const same = store.apply({ ...sources, policies: [...sources.policies] });
    assert.equal(same.stats.policiesCompiled, 0);
    assert.equal(same.changed, false);
    assert.deepEqual([...same.changedReports], []);
    const edited = input([policyYaml(2, 'false', 2)]).policies[0]!;
    const policies = sources.policies.map((p, i) => (i === 2 ? edited : p));
    const r = store.apply({ ...sources, policies });
    assert.equal(r.stats.policiesCompiled, 1);
    assert.deepEqual([...r.changedReports], ['ApiPolicy t/p2']);
    assert.equal(r.reports.get('ApiPolicy t/p2')?.generation, 2);
    assert.equal(first.reports.get('ApiPolicy t/p2')?.generation, 1, 'an earlier result keeps its reports');
    assert.deepEqual([...r.reports.keys()], [...first.reports.keys()], 'reports keep their order');
    const dropped = store.apply({ ...sources, policies: policies.slice(1) });
    assert.deepEqual([...dropped.changedReports], ['ApiPolicy t/p0']);
    assert.equal(dropped.reports.has('ApiPolicy t/p0'), false);
    assert.equal(dropped.snapshot.byKey.has('t/p0'), false);
  });

  test('an update with the same uid and generation (status, labels) compiles nothing and keeps the snapshot', () => {
    const store = new PolicyStore({ fingerprint: generationFingerprint });
    const first = store.apply(input([TENANT, ...POLICIES]));
    const again = input([TENANT, ...POLICIES]);
    again.policies[0]!.metadata.labels = { touched: 'yes' };
    const r = store.apply(again);
    assert.equal(r.stats.policiesCompiled, 0);
    assert.equal(r.changed, false);
    assert.equal(r.snapshot, first.snapshot);
  });

  test('a broken edit keeps the last good version serving and its report says why', () => {
    const store = new PolicyStore({ fingerprint: generationFingerprint });
    store.apply(input([TENANT, ...POLICIES]));
    const r = store.apply(input([TENANT, ...POLICIES.slice(0, 3), policyYaml(3, 'principal.subject ==', 2)]));
    const report = r.reports.get('ApiPolicy t/p3')!;
    assert.equal(report.serving, 'last-good');
    assert.equal(report.generation, 2);
    assert.equal(report.servingGeneration, 1);
    assert.equal(report.errors[0]?.code, 'POLICY_CEL');
    assert.match(report.errors.at(-1)!.message, /last good version \(generation 1\) keeps serving/);
    assert.equal(r.snapshot.route('api-3.example', [], {})?.rules[0]?.when?.source, 'true');
    // Unrelated policies keep serving, unchanged.
    assert.equal(r.reports.get('ApiPolicy t/p0')?.serving, 'current');
    assert.equal(r.snapshot.size, 4);
    // Fixing it serves the new version.
    const fixed = store.apply(input([TENANT, ...POLICIES.slice(0, 3), policyYaml(3, 'false', 3)]));
    assert.equal(fixed.reports.get('ApiPolicy t/p3')?.serving, 'current');
    assert.deepEqual(fixed.problems, []);
  });

  test('a new policy that is broken serves nothing and is reported', () => {
    const store = new PolicyStore();
    const r = store.apply(input([TENANT, policyYaml(0, '1 +')]));
    assert.equal(r.reports.get('ApiPolicy t/p0')?.serving, 'none');
    assert.equal(r.snapshot.size, 0);
  });

  test('an edit that claims another policy\'s host is refused; the last good version keeps its own host', () => {
    const store = new PolicyStore({ fingerprint: generationFingerprint });
    store.apply(input([TENANT, ...POLICIES]));
    const r = store.apply(input([TENANT, ...POLICIES.slice(0, 3), policyYaml(3, 'true', 2, 'api-0.example')]));
    const report = r.reports.get('ApiPolicy t/p3')!;
    assert.equal(report.serving, 'last-good');
    assert.equal(report.errors[0]?.code, 'POLICY_CONFLICT');
    assert.equal(r.snapshot.route('api-0.example', [], {})?.key, 't/p0');
    assert.equal(r.snapshot.route('api-3.example', [], {})?.key, 't/p3');
  });

  test('a tenant change relinks the namespace\'s policies without compiling them again', () => {
    const store = new PolicyStore({ fingerprint: generationFingerprint });
    store.apply(input([TENANT, ...POLICIES]));
    const r = store.apply(input([TENANT.replace('generation: 1', 'generation: 2').replace('limit: 10', 'limit: 20'), ...POLICIES]));
    assert.equal(r.stats.tenantsCompiled, 1);
    assert.equal(r.stats.policiesCompiled, 0);
    assert.equal(r.stats.policiesLinked, 4);
    assert.equal(r.snapshot.route('api-0.example', [], {})?.tenants.byName.get('agency')?.quotas?.get('daily')?.limit, 20);
    // Dropping the quota the policies name breaks their references: the tenant is accepted, the
    // policies are refused (their last good versions named the quota too, so nothing serves).
    const dropped = store.apply(input([TENANT.replace('generation: 1', 'generation: 3').replace(/\n {2}quotas:.*\n/, '\n'), ...POLICIES]));
    assert.equal(dropped.reports.get('ApiPolicy t/p0')?.errors[0]?.code, 'POLICY_REFERENCE');
    assert.equal(dropped.reports.get('ApiPolicy t/p0')?.serving, 'none');
  });

  test('deleting a policy removes it from the snapshot', () => {
    const store = new PolicyStore();
    store.apply(input([TENANT, ...POLICIES]));
    const r = store.apply(input([TENANT, ...POLICIES.slice(1)]));
    assert.equal(r.snapshot.byKey.has('t/p0'), false);
    assert.equal(r.snapshot.route('api-0.example', [], {}), undefined);
    assert.equal(r.reports.has('ApiPolicy t/p0'), false);
  });

  test('applyAsync gives the event loop turns while it compiles, and ends with the same snapshot as apply', async () => {
    const many = Array.from({ length: 200 }, (_, i) => policyYaml(i, `params.size() == ${i} || true`));
    const sources = input([TENANT, ...many]);
    const store = new PolicyStore();
    let turns = 0;
    const tick = (): void => {
      turns++;
      if (!done) setImmediate(tick);
    };
    let done = false;
    setImmediate(tick);
    const r = await store.applyAsync(sources, 0);
    done = true;
    assert.ok(turns >= 50, `the event loop ran ${turns} times during the compile`);
    assert.equal(r.snapshot.size, 200);
    assert.deepEqual(r.problems, []);
  });

  test('runs are serialised: a second applyAsync starts after the first', async () => {
    const store = new PolicyStore();
    const a = store.applyAsync(input([TENANT, ...POLICIES]), 0);
    const b = store.applyAsync(input([TENANT, ...POLICIES.slice(0, 2)]), 0);
    const [ra, rb] = await Promise.all([a, b]);
    assert.equal(ra.snapshot.size, 4);
    assert.equal(rb.snapshot.size, 2);
    assert.equal(store.snapshot, rb.snapshot);
  });
});

describe('folder source: same model, files re-read only when they change', () => {
  test('a broken edit keeps the last good version, names the problem, and unrelated files keep serving', () => {
    const dir = tempPolicyDir({ '00-tenant.yaml': TENANT, '10-a.yaml': policyYaml(0), '20-b.yaml': policyYaml(1) });
    const rejected: string[][] = [];
    try {
      const src = new FolderPolicySource(dir.dir, { onRejected: (p) => rejected.push(p.map((x) => x.format())) });
      assert.deepEqual(src.reload(), []);
      dir.write('20-b.yaml', policyYaml(1, 'principal.subjet ==', 2));
      const problems = src.reload();
      assert.ok(problems.some((p) => p.code === 'POLICY_CEL' && p.location.object === 'ApiPolicy t/p1'));
      assert.ok(problems.some((p) => /last good version \(generation 1\) keeps serving/.test(p.message)));
      assert.equal(src.snapshot?.route('api-1.example', [], {})?.rules[0]?.when?.source, 'true');
      assert.equal(src.snapshot?.route('api-0.example', [], {})?.key, 't/p0');
      assert.equal(rejected.length, 1);
    } finally {
      dir.remove();
    }
  });

  test('a file that stops parsing keeps every object it held; schema errors keep that object', () => {
    const dir = tempPolicyDir({ '00-tenant.yaml': TENANT, '10-a.yaml': `${policyYaml(0)}---\n${policyYaml(1)}`, '20-b.yaml': policyYaml(2) });
    try {
      const src = new FolderPolicySource(dir.dir);
      assert.deepEqual(src.reload(), []);
      dir.write('10-a.yaml', 'key: [unclosed\n');
      dir.write('20-b.yaml', policyYaml(2).replace('hosts: [api-2.example]', 'hosts: ["NOT A HOST"]'));
      const problems = src.reload();
      assert.ok(problems.some((p) => p.code === 'POLICY_YAML' && p.location.file?.endsWith('10-a.yaml')));
      assert.ok(problems.some((p) => p.code === 'POLICY_SCHEMA' && p.location.object === 'ApiPolicy t/p2'));
      for (const h of ['api-0.example', 'api-1.example', 'api-2.example']) assert.ok(src.snapshot?.route(h, [], {}), h);
    } finally {
      dir.remove();
    }
  });
});


describe('folder source: a folder that cannot be read', () => {
  test('before anything loaded: no snapshot (NOT_SERVING), the problem reported', () => {
    const src = new FolderPolicySource('/nonexistent/portcullis-policies');
    const problems = src.reload();
    assert.match(problems[0]?.message ?? '', /cannot read policy folder/);
    assert.equal(src.snapshot, undefined);
  });
});

/**
 * Folder-level limits from the attacker's side: someone who can drop files into the watched folder
 * (a sidecar syncing from git, a shared volume) floods it with files or bytes. serve's first load
 * and every reload refuse the folder with the same POLICY_YAML problem validate gives, naming the
 * folder and the limit, before reading any file; a reload keeps the last good snapshot.
 */
describe('folder source: the folder-level limits hold on serve\'s first load and every reload', () => {
  const floods: { name: string; flood: (d: ReturnType<typeof tempPolicyDir>) => void; message: RegExp }[] = [
    {
      name: `${YAML_LIMITS.folderFiles + 1} files`,
      flood: (d) => {
        for (let i = 0; i <= YAML_LIMITS.folderFiles; i++) d.write(`flood/f${String(i).padStart(4, '0')}.yaml`, '# empty\n');
      },
      message: new RegExp(`more than the limit of ${YAML_LIMITS.folderFiles} YAML files`),
    },
    {
      // Sparse files: the sizes are what counts, and nothing of them is read.
      name: `more than ${YAML_LIMITS.folderBytes} bytes in files each within the per-file limit`,
      flood: (d) => {
        for (let i = 0; i * YAML_LIMITS.fileBytes <= YAML_LIMITS.folderBytes; i++) {
          d.write(`flood/big${i}.yaml`, '');
          truncateSync(join(d.dir, `flood/big${i}.yaml`), YAML_LIMITS.fileBytes);
        }
      },
      message: new RegExp(`more than the limit of ${YAML_LIMITS.folderBytes}`),
    },
  ];
  for (const c of floods) {
    test(`${c.name}: a reload keeps the last good snapshot and names the folder and the limit`, async () => {
      const dir = tempPolicyDir({ '00-tenant.yaml': TENANT, '10-a.yaml': policyYaml(0) });
      try {
        const rejected: string[] = [];
        const src = new FolderPolicySource(dir.dir, { onRejected: (p) => rejected.push(...p.map((x) => x.format())) });
        assert.deepEqual(src.reload(), []);
        c.flood(dir);
        dir.write('10-a.yaml', policyYaml(0, 'false', 2));
        const problems = await src.reloadAsync();
        const p = problems.find((x) => x.location.file === dir.dir);
        assert.equal(p?.code, 'POLICY_YAML', problems.map((x) => x.format()).join('\n'));
        assert.match(p.message, c.message);
        assert.ok(rejected.some((r) => r.includes(dir.dir)));
        // Nothing of the flooded folder was read: the edit to 10-a.yaml did not apply either.
        assert.equal(src.snapshot?.route('api-0.example', [], {})?.rules[0]?.when?.source, 'true');
        // validate sees the same folder the same way.
        assert.match(loadPolicyDir(dir.dir).problems.map((x) => x.message).join('\n'), c.message);
      } finally {
        dir.remove();
      }
    });

    test(`${c.name}: serve's first load refuses the folder (no snapshot: NOT_SERVING)`, () => {
      const dir = tempPolicyDir({ '00-tenant.yaml': TENANT, '10-a.yaml': policyYaml(0) });
      try {
        c.flood(dir);
        const src = new FolderPolicySource(dir.dir);
        const problems = src.reload();
        assert.equal(problems[0]?.code, 'POLICY_YAML');
        assert.match(problems[0]?.message ?? '', c.message);
        assert.equal(problems[0]?.location.file, dir.dir);
        assert.equal(src.snapshot, undefined);
      } finally {
        dir.remove();
      }
    });
  }

  test('once the flood is removed the next reload serves the folder', async () => {
    const dir = tempPolicyDir({ '00-tenant.yaml': TENANT, '10-a.yaml': policyYaml(0) });
    try {
      const src = new FolderPolicySource(dir.dir);
      floods[0]!.flood(dir);
      assert.equal(src.reload()[0]?.code, 'POLICY_YAML');
      assert.equal(src.snapshot, undefined);
      rmSync(join(dir.dir, 'flood'), { recursive: true });
      assert.deepEqual(await src.reloadAsync(), []);
      const after = src.snapshot as PolicySnapshot | undefined;
      assert.ok(after?.route('api-0.example', [], {}));
    } finally {
      dir.remove();
    }
  });
});

describe('policy store: PolicyChanges hints (the cluster source names what its watch changed)', () => {
  type Spec = { hosts: string[]; rules: unknown[] };
  const spec = (host: string, when = 'true'): Spec => ({ hosts: [`${host}.example`], rules: [{ name: 'r', when, quotas: [{ name: 'daily' }] }] });
  let rv = 0;
  const raw = (ns: string, name: string, s: Spec | undefined, { generation = 1, uid = `u-${ns}-${name}` }: { generation?: number; uid?: string } = {}): Raw =>
    ({ apiVersion: 'portcullis.io/v1alpha1', kind: 'ApiPolicy', metadata: { name, namespace: ns, uid, generation, resourceVersion: String(++rv), creationTimestamp: `2026-12-01T10:00:${String(rv).padStart(2, '0')}Z` }, ...(s ? { spec: s } : {}) }) as unknown as Raw;
  const tenant = (generation: number, quota = 10): Raw =>
    ({ apiVersion: 'portcullis.io/v1alpha1', kind: 'Tenant', metadata: { name: 'agency', namespace: 't', uid: 'tu', generation, resourceVersion: String(++rv) }, spec: { type: 'agency', identity: { mtls: { spiffeIds: ['spiffe://td/ns/a/*'] } }, quotas: [{ name: 'daily', limit: quota, per: '24h' }] } }) as Raw;

  /** What a consumer can observe of a run: the snapshot's policies in order, routing, the reports and which changed. */
  const observed = (r: ApplyResult): unknown => ({
    changed: r.changed,
    policies: [...r.snapshot.policies].map((p) => `${p.key} ${p.hosts.join(',')} ${p.rules.map((x) => x.when?.source).join(',')}`),
    routes: ['h0', 'h1', 'h2', 'h3', 'h9', 'new'].map((h) => r.snapshot.route(`${h}.example`, [], {})?.key),
    reports: [...r.reports.entries()].map(([id, rep]) => [id, rep.serving, rep.generation, rep.servingGeneration, rep.errors.map((e) => e.format()), rep.warnings.map((e) => e.format())]),
    changedReports: [...r.changedReports],
    tenants: [...r.snapshot.tenants.keys()],
  });

  test('runs with hints observe exactly what full scans observe, over every kind of change', () => {
    // The same events feed a hinted store (ConvertedObjects.take, as the cluster source does) and a scanning one.
    const hinted = new PolicyStore({ fingerprint: generationFingerprint });
    const scanned = new PolicyStore({ fingerprint: generationFingerprint });
    const converted = ConvertedObjects.policies();
    const live = new Map<string, Raw>();
    let tenants = [tenant(1)];
    const event = (o: Raw, ev: 'add' | 'update' | 'delete'): void => {
      const key = `${o.metadata!.namespace}/${o.metadata!.name}`;
      if (ev === 'delete') live.delete(key);
      else live.set(key, o);
      converted.changed(o, ev);
    };
    const converter = new SourceConverter();
    const both = (step: string): ApplyResult => {
      const rest = converter.sourcesFrom([], tenants, [], []);
      const { values, changes } = converted.take();
      const a = hinted.apply({ ...rest, policies: values as ApiPolicyObject[], ...(changes ? { policyChanges: changes } : {}) });
      const b = scanned.apply(converter.sourcesFrom([...live.values()], tenants, [], []));
      assert.deepEqual(observed(a), observed(b), step);
      return a;
    };
    for (let i = 0; i < 4; i++) event(raw('t', `p${i}`, spec(`h${i}`)), 'add');
    event(raw('u', 'q0', spec('h9')), 'add'); // a namespace without tenants
    both('initial');
    event(raw('t', 'p1', spec('h1', 'false'), { generation: 2 }), 'update');
    assert.equal(both('spec edit').stats.policiesCompiled, 1);
    event(raw('t', 'p2', spec('h2')), 'update');
    assert.equal(both('status-only update (same uid and generation)').changed, false);
    event(raw('t', 'p4', spec('h0')), 'add');
    assert.equal(both("a new policy claims p0's host").reports.get('ApiPolicy t/p4')?.serving, 'none');
    event(raw('t', 'p0', spec('h0')), 'delete');
    assert.equal(both('the older claimant deleted: the newer serves').snapshot.route('h0.example', [], {})?.key, 't/p4');
    event(raw('t', 'p3', spec('h3', 'principal.subject =='), { generation: 2 }), 'update');
    assert.equal(both('a broken edit').reports.get('ApiPolicy t/p3')?.serving, 'last-good');
    tenants = [tenant(2, 20)];
    event(raw('t', 'p5', spec('new')), 'add');
    both('a tenant change with a policy added (relinks the namespace: full scan)');
    event(raw('t', 'p1', spec('h1'), { generation: 3 }), 'update');
    event(raw('u', 'q0', spec('h9')), 'delete');
    event(raw('t', 'p6', spec('h6')), 'add');
    event(raw('t', 'p6', spec('h6')), 'delete');
    both('several changes in one run, one of them added and deleted again');
    event(raw('t', 'p2', spec('h2'), { uid: 'u-recreated' }), 'update');
    both('deleted and re-created under the same name (new uid)');
    event(raw('t', 'p3', undefined, { generation: 3 }), 'update');
    both('an update without a spec leaves the input');
    both('nothing changed');
    tenants = [];
    both('the tenant deleted');
  });

  test('a hint that does not follow the last applied input is ignored (the run scans)', () => {
    const store = new PolicyStore({ fingerprint: generationFingerprint });
    const converter = new SourceConverter();
    const p = (i: number, host = `h${i}`, generation = 1): Raw => raw('t', `p${i}`, spec(host), { generation, uid: `u${i}` });
    const first = converter.sourcesFrom([p(0), p(1)], [tenant(1)], [], []);
    store.apply(first);
    const edited = converter.sourcesFrom([p(0), p(1, 'moved', 2)], [tenant(1)], [], []);
    // A hint relative to some other array, naming nothing: unusable, so the edit is still found.
    const stale = store.apply({ ...edited, policyChanges: { since: [...first.policies], changed: new Map() } });
    assert.equal(stale.stats.policiesCompiled, 1);
    assert.equal(stale.snapshot.route('moved.example', [], {})?.key, 't/p1');
    // Relative to the input just applied, it is trusted: only the keys it names are visited.
    const next = converter.sourcesFrom([p(0, 'elsewhere', 2), p(1, 'moved', 2)], [tenant(1)], [], []);
    const trusted = store.apply({ ...next, policyChanges: { since: edited.policies, changed: new Map() } });
    assert.equal(trusted.stats.policiesCompiled, 0);
    assert.equal(trusted.changed, false);
  });
});
