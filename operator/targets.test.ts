import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { grantedKinds, presentRoutes } from './targets.js';

const grant = (from: unknown[], to: unknown[]): never => ({ metadata: { name: 'g', namespace: 'portcullis-system' }, spec: { from, to } }) as never;
const sp = { group: 'gateway.envoyproxy.io', kind: 'SecurityPolicy', namespace: 'c2g' };
const eep = { group: 'gateway.envoyproxy.io', kind: 'EnvoyExtensionPolicy', namespace: 'c2g' };
const svc = { group: '', kind: 'Service', name: 'portcullis-extauthz' };

describe('ReferenceGrants', () => {
  const cases: { name: string; grants: never[]; want: string[] }[] = [
    { name: 'none', grants: [], want: [] },
    { name: 'both kinds to the Service', grants: [grant([sp, eep], [svc])], want: ['EnvoyExtensionPolicy', 'SecurityPolicy'] },
    { name: 'to every Service of the namespace (no name)', grants: [grant([sp], [{ group: '', kind: 'Service' }])], want: ['SecurityPolicy'] },
    { name: 'another namespace', grants: [grant([{ ...sp, namespace: 'other' }], [svc])], want: [] },
    { name: 'another Service', grants: [grant([sp], [{ ...svc, name: 'other' }])], want: [] },
    { name: 'another group', grants: [grant([{ ...sp, group: 'gateway.networking.k8s.io', kind: 'HTTPRoute' }], [svc])], want: [] },
    { name: 'to Secrets only', grants: [grant([sp], [{ group: '', kind: 'Secret' }])], want: [] },
    { name: 'split over two grants', grants: [grant([sp], [svc]), grant([eep], [svc])], want: ['EnvoyExtensionPolicy', 'SecurityPolicy'] },
  ];
  for (const c of cases) test(c.name, () => assert.deepEqual([...grantedKinds(c.grants, 'c2g', 'portcullis-extauthz')].sort(), c.want));
});

test('present routes and gateways of one namespace', () => {
  const obj = (name: string, namespace: string): never => ({ metadata: { name, namespace } }) as never;
  const lister = (items: never[]) => ({ list: (ns?: string) => items.filter((o: { metadata: { namespace: string } }) => ns === undefined || o.metadata.namespace === ns) });
  const got = presentRoutes({ httpRoutes: lister([obj('r', 'c2g'), obj('x', 'other')]), gateways: lister([obj('edge', 'c2g')]), referenceGrants: lister([]) }, 'c2g');
  assert.deepEqual([...got].sort(), ['Gateway/edge', 'HTTPRoute/r']);
});
