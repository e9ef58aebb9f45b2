import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { toJsonSchema } from '../extauthz/policy/crd-schema.js';
import { describe, test } from 'node:test';
import { stringify } from 'yaml';
import { GOLDEN_CONFIG, GOLDEN_DIR as DIR, goldenCases } from '../test/helpers/golden.js';
import { policyConditions, programmedVerdict } from './conditions.js';
import { childName, envoyDuration, isShared, translate, workloadObjectName, type TranslateInput, type Translation } from './translate.js';

// Golden files live beside the sources: operator/testdata/translate/<case>/{input,output}.yaml,
// the output with the status it implies. Regenerate with UPDATE_GOLDEN=1 and review the diff.
const UPDATE = process.env.UPDATE_GOLDEN === '1';

/**
 * The status the translation implies for a policy that compiled, once every object is applied
 * and Envoy Gateway (when its policies are generated) has accepted them.
 */
function impliedStatus(t: Translation): string[] {
  const controller = t.objects.filter((o) => o.apiVersion.startsWith('gateway.envoyproxy.io/')).map((o) => ({ object: `${o.kind}/${o.metadata.name}`, accepted: 'True' as const, message: '' }));
  const programmed = programmedVerdict({ problems: t.problems, objects: t.objects.map((o) => `${o.kind}/${o.metadata.name}`), controller });
  return policyConditions({ problems: [], programmed }).map((c) => `${c.type}=${c.status} ${c.reason}`);
}

describe('translate (golden files)', () => {
  for (const { name, input, config } of goldenCases()) {
    test(name, () => {
      const out = translate(input, config);
      const actual = stringify({ ...out, status: impliedStatus(out) }, { sortMapEntries: false, aliasDuplicateObjects: false });
      const file = `${DIR}${name}/output.yaml`;
      if (UPDATE) writeFileSync(file, actual);
      assert.equal(actual, readFileSync(file, 'utf8'), `golden ${name} differs; rerun with UPDATE_GOLDEN=1 and review`);
    });
  }

  test('every output kind and every problem reason has a golden case', () => {
    const kinds = new Set<string>();
    const reasons = new Set<string>();
    for (const { input, config } of goldenCases()) {
      const out = translate(input, config);
      for (const o of out.objects) kinds.add(`${o.kind}${o.kind === 'AuthorizationPolicy' ? (o.spec.selector ? '/selector' : '/targetRefs') : ''}`);
      for (const p of out.problems) reasons.add(p.reason);
    }
    assert.deepEqual([...kinds].sort(), ['AuthorizationPolicy/selector', 'AuthorizationPolicy/targetRefs', 'EnvoyExtensionPolicy', 'EnvoyFilter', 'PeerAuthentication', 'SecurityPolicy']);
    assert.deepEqual([...reasons].sort(), ['MaskingNotWired', 'NoTargets', 'ReferenceGrantMissing', 'RequestBodyNotSent', 'TargetNotFound', 'TargetNotWired']);
  });
});

describe('translate invariants', () => {
  test('every generated Istio CUSTOM policy has exactly one empty rule: no request of the workload escapes the decision', () => {
    for (const { name, input, config } of goldenCases()) {
      for (const o of translate(input, config).objects.filter((x) => x.kind === 'AuthorizationPolicy')) {
        assert.equal(o.spec.action, 'CUSTOM', name);
        assert.deepEqual(o.spec.rules, [{}], `${name}: ${o.metadata.name} narrows its rules`);
      }
    }
  });

  test('a masking policy never yields Programmed=True unless ext_proc is wired on every mesh it is translated for', () => {
    for (const { name, input, config } of goldenCases()) {
      const out = translate(input, config);
      const masks = input.policy.spec.rules.some((r) => (r.mask?.length ?? 0) > 0) || (input.policy.spec.defaultMask?.length ?? 0) > 0;
      if (!masks || out.problems.length > 0) continue;
      const selectors = out.objects.filter((o) => o.kind === 'AuthorizationPolicy' && o.spec.selector).length;
      assert.equal(out.objects.filter((o) => o.kind === 'EnvoyFilter').length, selectors, `${name}: one EnvoyFilter per workload`);
      const sp = out.objects.filter((o) => o.kind === 'SecurityPolicy').length;
      assert.equal(out.objects.filter((o) => o.kind === 'EnvoyExtensionPolicy').length, sp, `${name}: an EnvoyExtensionPolicy beside each SecurityPolicy`);
      for (const eep of out.objects.filter((o) => o.kind === 'EnvoyExtensionPolicy')) {
        const mode = (eep.spec.extProc as { processingMode: Record<string, unknown> }[])[0]!.processingMode;
        assert.ok(mode.request, `${name}: request headers must reach ext_proc (the directive)`);
      }
    }
  });

  const durations: [string, string][] = [['500ms', '0.500s'], ['1s', '1.000s'], ['1m30s', '90.000s'], ['2s250ms', '2.250s']];
  for (const [d, want] of durations) test(`envoyDuration ${d}`, () => assert.equal(envoyDuration(d), want));

  test('childName stays within 63 characters and unique', () => {
    const long = 'x'.repeat(80);
    const a = childName(long);
    const b = childName(long + 'y');
    assert.ok(a.length <= 63 && b.length <= 63);
    assert.notEqual(a, b);
    assert.equal(childName('short'), 'portcullis-short');
  });

  test('Istio objects are the workload\'s: two policies on one Service yield the same objects, owned by neither; Envoy Gateway\'s are the policy\'s own', () => {
    const input = (name: string, uid: string): TranslateInput => ({
      policy: { apiVersion: 'portcullis.io/v1alpha1', kind: 'ApiPolicy', metadata: { name, namespace: 'n', uid }, spec: { hosts: [`${name}.example`], rules: [{ name: 'r', mask: [{ field: '$.x', action: 'redact' }] }], targetRefs: [{ kind: 'Service', name: 's' }, { kind: 'Service', name: 's' }, { kind: 'HTTPRoute', name: 'route' }] } },
      serviceSelectors: new Map([['s', { app: 's' }]]),
      presentRoutes: new Set(['HTTPRoute/route']),
      grantedKinds: new Set(['SecurityPolicy', 'EnvoyExtensionPolicy']),
      agencyReachable: true,
    });
    const cfg = { ...GOLDEN_CONFIG, istio: true, envoyGateway: true };
    const a = translate(input('a', 'u1'), cfg).objects;
    const b = translate(input('b', 'u2'), cfg).objects;
    const shared = (os: typeof a): typeof a => os.filter(isShared);
    assert.deepEqual(shared(a).map((o) => o.kind), ['AuthorizationPolicy', 'PeerAuthentication', 'EnvoyFilter'], 'a Service named twice is one workload');
    assert.deepEqual(shared(a), shared(b));
    for (const o of shared(a)) {
      assert.equal(o.metadata.name, workloadObjectName({ kind: 'Service', name: 's' }));
      assert.equal(o.metadata.ownerReferences, undefined);
      assert.equal(o.metadata.labels['portcullis.io/policy'], undefined);
    }
    const own = a.filter((o) => !isShared(o));
    assert.deepEqual(own.map((o) => o.kind), ['SecurityPolicy', 'EnvoyExtensionPolicy']);
    for (const o of own) assert.deepEqual([o.metadata.name, o.metadata.labels['portcullis.io/policy'], (o.metadata.ownerReferences?.[0] as { uid?: string }).uid], ['portcullis-a', 'a', 'u1']);
    assert.notEqual(workloadObjectName({ kind: 'Service', name: 'x' }), workloadObjectName({ kind: 'Gateway', name: 'x' }));
  });

  test('the translation is pure: same input, same output', () => {
    const input: TranslateInput = {
      policy: { apiVersion: 'portcullis.io/v1alpha1', kind: 'ApiPolicy', metadata: { name: 'p', namespace: 'n', uid: 'u' }, spec: { hosts: ['a.example'], rules: [{ name: 'r' }], targetRefs: [{ kind: 'Service', name: 's' }] } },
      serviceSelectors: new Map([['s', { app: 's' }]]),
      presentRoutes: new Set(),
      grantedKinds: new Set(),
      agencyReachable: false,
    };
    assert.deepEqual(translate(input, GOLDEN_CONFIG), translate(input, GOLDEN_CONFIG));
  });

  test('a shadow policy generates nothing (the mesh must not change), and is Programmed as Shadow', () => {
    for (const { name, input, config } of goldenCases()) {
      const shadow = { ...input, policy: { ...input.policy, spec: { ...input.policy.spec, mode: 'shadow' as const } } };
      const t = translate(shadow, config);
      assert.deepEqual([t.objects, t.problems, t.shadow], [[], [], true], name);
      const v = programmedVerdict({ problems: t.problems, objects: [], controller: [], shadow: true });
      assert.deepEqual([v.status, v.reason], ['True', 'Shadow'], name);
    }
  });
});

// Envoy Gateway's own SecurityPolicy schema (the tool cache, test/tools): every generated
// SecurityPolicy, bodyToExtAuth included, is valid against it. Skipped where the cache has no CRDs.
const EG_CRD = join(process.env.PORTCULLIS_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'portcullis'), 'crds');
const egDir = existsSync(EG_CRD) ? readdirSync(EG_CRD).find((d) => d.startsWith('envoy-gateway-')) : undefined;

describe("generated SecurityPolicies against Envoy Gateway's CRD", { skip: egDir ? false : 'no Envoy Gateway CRDs in the tool cache' }, () => {
  test('every golden SecurityPolicy spec validates (structural schema, bodyToExtAuth bounds)', () => {
    const crd = parse(readFileSync(join(EG_CRD, egDir!, 'gateway.envoyproxy.io_securitypolicies.yaml'), 'utf8')) as { spec: { versions: { name: string; schema: { openAPIV3Schema: { properties: { spec: Record<string, unknown> } } } }[] } };
    const schema = toJsonSchema(crd.spec.versions.find((v) => v.name === 'v1alpha1')!.schema.openAPIV3Schema.properties.spec);
    const validate = new Ajv({ strict: false, allErrors: true, validateFormats: false }).compile(schema as object);
    let bodies = 0;
    for (const { name, input, config } of goldenCases()) {
      for (const o of translate(input, config).objects.filter((x) => x.kind === 'SecurityPolicy')) {
        assert.ok(validate(o.spec), `${name}: ${JSON.stringify(validate.errors)}`);
        if ((o.spec.extAuth as { bodyToExtAuth?: unknown }).bodyToExtAuth) bodies++;
      }
    }
    assert.ok(bodies > 0, 'a golden case sends bodies');
    assert.equal(validate({ targetRefs: [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', name: 'r' }], extAuth: { grpc: { backendRefs: [{ name: 's', port: 1 }] }, bodyToExtAuth: { maxRequestBytes: 0 } } }), false, 'maxRequestBytes 0 is refused by the CRD');
  });
});
