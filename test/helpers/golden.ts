/**
 * The translation golden cases (operator/testdata/translate/<case>/input.yaml), shared by the
 * golden-file test and the end-to-end test that applies every golden output to a real API server.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { OutputConfig, TranslateInput } from '../../operator/translate.js';

export const GOLDEN_DIR = fileURLToPath(new URL('../../../operator/testdata/translate/', import.meta.url));

export const GOLDEN_CONFIG: OutputConfig = {
  istio: true,
  envoyGateway: true,
  istioProvider: 'portcullis',
  service: { name: 'portcullis-extauthz', namespace: 'portcullis-system', authzPort: 9001, extProcPort: 9002 },
  timeout: '500ms',
  clusterDomain: 'cluster.local',
  istioRequestBodyBytes: 0,
};

interface GoldenInput {
  policy: TranslateInput['policy'];
  services: Record<string, Record<string, string> | null>;
  /** HTTPRoutes and Gateways that exist, as "Kind/name". */
  routes?: string[];
  /** Envoy Gateway kinds a ReferenceGrant admits from the policy's namespace. */
  granted?: string[];
  agencyReachable: boolean;
  outputs?: Partial<OutputConfig>;
}

export function goldenCases(): { name: string; input: TranslateInput; config: OutputConfig }[] {
  return readdirSync(GOLDEN_DIR).sort().map((name) => {
    const g = parse(readFileSync(`${GOLDEN_DIR}${name}/input.yaml`, 'utf8')) as GoldenInput;
    const input: TranslateInput = {
      policy: g.policy,
      serviceSelectors: new Map(Object.entries(g.services).map(([k, v]) => [k, v ?? undefined])),
      presentRoutes: new Set(g.routes ?? []),
      grantedKinds: new Set(g.granted ?? []),
      agencyReachable: g.agencyReachable,
    };
    return { name, input, config: { ...GOLDEN_CONFIG, ...(g.outputs ?? {}) } };
  });
}

