import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { repairPatch } from './drift.js';
import type { GeneratedObject } from './translate.js';

const meta = { name: 'portcullis-p', namespace: 'c2g', labels: {}, ownerReferences: [] };
const pa: GeneratedObject = { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: meta, spec: { selector: { matchLabels: { app: 'a' } }, mtls: { mode: 'STRICT' } } };
const ap: GeneratedObject = { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: meta, spec: { selector: { matchLabels: { app: 'a' } }, action: 'CUSTOM', provider: { name: 'portcullis' }, rules: [{}] } };
const sp: GeneratedObject = { apiVersion: 'gateway.envoyproxy.io/v1alpha1', kind: 'SecurityPolicy', metadata: meta, spec: { targetRefs: [], extAuth: {} } };

describe('drift repair', () => {
  const cases: { name: string; desired: GeneratedObject; live: Record<string, unknown> | undefined; removed: string[] | undefined; patch?: unknown }[] = [
    { name: 'nothing live yet', desired: ap, live: undefined, removed: undefined },
    { name: 'as generated', desired: ap, live: { metadata: { annotations: { other: 'x' } }, spec: ap.spec }, removed: undefined },
    { name: 'dry-run annotation on an AuthorizationPolicy', desired: ap, live: { metadata: { annotations: { 'istio.io/dry-run': 'true' } }, spec: ap.spec }, removed: ['metadata.annotations.istio.io/dry-run'], patch: { metadata: { annotations: { 'istio.io/dry-run': null } } } },
    { name: 'a port-level mTLS exception', desired: pa, live: { metadata: {}, spec: { ...pa.spec, portLevelMtls: { 8080: { mode: 'DISABLE' } } } }, removed: ['spec.portLevelMtls'], patch: { spec: { portLevelMtls: null } } },
    { name: 'targetRefs added beside the selector', desired: ap, live: { metadata: {}, spec: { ...ap.spec, targetRefs: [{ kind: 'Gateway', name: 'g' }] } }, removed: ['spec.targetRefs'] },
    { name: 'both at once', desired: pa, live: { metadata: { annotations: { 'istio.io/dry-run': 'true' } }, spec: { ...pa.spec, portLevelMtls: {} } }, removed: ['metadata.annotations.istio.io/dry-run', 'spec.portLevelMtls'] },
    // Envoy Gateway's controller may default spec fields: only the annotation is repaired there.
    { name: 'Envoy Gateway defaults are left alone', desired: sp, live: { metadata: {}, spec: { ...sp.spec, extra: {} } }, removed: undefined },
    { name: 'dry-run on an Envoy Gateway policy', desired: sp, live: { metadata: { annotations: { 'istio.io/dry-run': 'true' } }, spec: sp.spec }, removed: ['metadata.annotations.istio.io/dry-run'] },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const got = repairPatch(c.desired, c.live as never);
      assert.deepEqual(got?.removed, c.removed);
      if (c.patch) assert.deepEqual(got?.patch, c.patch);
    });
  }
});
