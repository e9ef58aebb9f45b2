/**
 * ApiPolicy → mesh configuration, as a pure function (golden-file tested). The outputs route
 * requests of the targeted workloads through Portcullis:
 * - Istio: an AuthorizationPolicy with action CUSTOM and the single Portcullis provider, and a
 *   STRICT PeerAuthentication where agency principals (mTLS) can reach the workload;
 * - Envoy Gateway: a SecurityPolicy with extAuth (gRPC, fail closed, a real timeout, the policy
 *   named in contextExtensions) and, for rules with masks, an EnvoyExtensionPolicy with extProc.
 *
 * With defaultAction deny the CUSTOM rules match every path and method of the policy's hosts:
 * narrowing them to the rules' paths would let unmatched requests bypass the decision (fail
 * open). Only a defaultAction allow policy narrows them to its rules' paths and methods.
 */
import { createHash } from 'node:crypto';
import type { ApiPolicySpec } from '../extauthz/policy/model.js';
import { POLICY_CONTEXT_KEY } from '../extauthz/policy/snapshot.js';

export const FIELD_MANAGER = 'portcullis-operator';
export const LABEL_MANAGED_BY = 'app.kubernetes.io/managed-by';
export const LABEL_POLICY = 'portcullis.io/policy';

export interface OutputConfig {
  istio: boolean;
  envoyGateway: boolean;
  /** Name of the Istio meshConfig extension provider that points at Portcullis. */
  istioProvider: string;
  /** The Portcullis decision Service. */
  service: { name: string; namespace: string; authzPort: number; extProcPort: number };
  /** Budget for ext_authz and ext_proc calls (never the 600 s Istio default). */
  timeout: string;
}

export interface PolicyRef {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; uid: string; generation?: number };
  spec: ApiPolicySpec;
}

export interface TranslateInput {
  policy: PolicyRef;
  /** Selectors of Services in the policy's namespace (undefined: the Service does not exist). */
  serviceSelectors: ReadonlyMap<string, Readonly<Record<string, string>> | undefined>;
  /** Some rule can admit agency principals (mTLS), so the workload needs STRICT mTLS. */
  agencyReachable: boolean;
}

export interface GeneratedObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace: string; labels: Record<string, string>; ownerReferences: unknown[] };
  spec: Record<string, unknown>;
}

export interface Translation {
  objects: GeneratedObject[];
  /** Targets that could not be resolved; the policy is then not (fully) Programmed. */
  problems: string[];
}

/** The kinds the operator may write, for pruning and RBAC. */
export const OUTPUT_KINDS = [
  { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', plural: 'authorizationpolicies', output: 'istio' },
  { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', plural: 'peerauthentications', output: 'istio' },
  { apiVersion: 'gateway.envoyproxy.io/v1alpha1', kind: 'SecurityPolicy', plural: 'securitypolicies', output: 'envoyGateway' },
  { apiVersion: 'gateway.envoyproxy.io/v1alpha1', kind: 'EnvoyExtensionPolicy', plural: 'envoyextensionpolicies', output: 'envoyGateway' },
] as const;

const GATEWAY_GROUP = 'gateway.networking.k8s.io';

/** Kubernetes names are at most 253 characters; long ones keep a hash suffix to stay unique. */
export function childName(policyName: string): string {
  const name = `portcullis-${policyName}`;
  if (name.length <= 63) return name;
  const hash = createHash('sha256').update(policyName).digest('hex').slice(0, 8);
  return `${name.slice(0, 54)}-${hash}`;
}

function meta(input: TranslateInput, name: string): GeneratedObject['metadata'] {
  const p = input.policy;
  return {
    name,
    namespace: p.metadata.namespace,
    labels: { [LABEL_MANAGED_BY]: FIELD_MANAGER, [LABEL_POLICY]: p.metadata.name },
    ownerReferences: [{ apiVersion: p.apiVersion, kind: p.kind, name: p.metadata.name, uid: p.metadata.uid, controller: true, blockOwnerDeletion: true }],
  };
}

/** Path template → Istio path template ({*} one segment, {**} the rest). */
export function istioPath(template: string): string {
  return template
    .split('/')
    .map((s) => (s === '**' ? '{**}' : s === '*' || /^\{[^}]+\}$/.test(s) ? '{*}' : s))
    .join('/');
}

function istioHosts(hosts: readonly string[]): string[] {
  return hosts.flatMap((h) => [h, `${h}:*`]);
}

function istioRules(spec: ApiPolicySpec): Record<string, unknown>[] {
  const hosts = istioHosts(spec.hosts);
  if ((spec.defaultAction ?? 'deny') === 'deny' || spec.rules.some((r) => !r.paths?.length)) return [{ to: [{ operation: { hosts } }] }];
  return spec.rules.map((r) => ({
    to: [{ operation: { hosts, paths: (r.paths ?? []).map(istioPath), ...(r.methods?.length ? { methods: r.methods } : {}) } }],
  }));
}

function serviceTargets(input: TranslateInput, problems: string[]): Record<string, string>[] {
  const out: Record<string, string>[] = [];
  for (const ref of input.policy.spec.targetRefs ?? []) {
    if (ref.kind !== 'Service') continue;
    const selector = input.serviceSelectors.get(ref.name);
    if (!selector) problems.push(`Service ${ref.name} not found or has no selector`);
    else out.push({ ...selector });
  }
  return out;
}

function istioObjects(input: TranslateInput, cfg: OutputConfig, problems: string[]): GeneratedObject[] {
  const spec = input.policy.spec;
  const selectors = serviceTargets(input, problems);
  const gateways = (spec.targetRefs ?? []).filter((r) => r.kind === 'Gateway').map((r) => ({ group: GATEWAY_GROUP, kind: 'Gateway', name: r.name }));
  const out: GeneratedObject[] = [];
  const base = childName(input.policy.metadata.name);
  const rules = istioRules(spec);
  // One AuthorizationPolicy per workload selector (an Istio policy has at most one selector).
  selectors.forEach((matchLabels, i) => {
    const name = selectors.length > 1 ? `${base}-${i}` : base;
    out.push({ apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: meta(input, name), spec: { selector: { matchLabels }, action: 'CUSTOM', provider: { name: cfg.istioProvider }, rules } });
    if (input.agencyReachable) {
      out.push({ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: meta(input, name), spec: { selector: { matchLabels }, mtls: { mode: 'STRICT' } } });
    }
  });
  if (gateways.length > 0) {
    out.push({ apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: meta(input, `${base}-gateway`), spec: { targetRefs: gateways, action: 'CUSTOM', provider: { name: cfg.istioProvider }, rules } });
  }
  return out;
}

function envoyGatewayObjects(input: TranslateInput, cfg: OutputConfig): GeneratedObject[] {
  const spec = input.policy.spec;
  const targetRefs = (spec.targetRefs ?? []).filter((r) => r.kind === 'HTTPRoute' || r.kind === 'Gateway').map((r) => ({ group: GATEWAY_GROUP, kind: r.kind, name: r.name }));
  if (targetRefs.length === 0) return [];
  const name = childName(input.policy.metadata.name);
  const backend = (port: number): Record<string, unknown> => ({ group: '', kind: 'Service', name: cfg.service.name, namespace: cfg.service.namespace, port });
  const out: GeneratedObject[] = [
    {
      apiVersion: 'gateway.envoyproxy.io/v1alpha1',
      kind: 'SecurityPolicy',
      metadata: meta(input, name),
      spec: {
        targetRefs,
        extAuth: {
          grpc: { backendRefs: [backend(cfg.service.authzPort)] },
          failOpen: false,
          timeout: cfg.timeout,
          contextExtensions: [{ name: POLICY_CONTEXT_KEY, type: 'Value', value: `${input.policy.metadata.namespace}/${input.policy.metadata.name}` }],
        },
      },
    },
  ];
  const masks = spec.rules.some((r) => (r.mask?.length ?? 0) > 0 || (r.allowFields?.length ?? 0) > 0) || (spec.defaultMask?.length ?? 0) > 0;
  if (masks) {
    out.push({
      apiVersion: 'gateway.envoyproxy.io/v1alpha1',
      kind: 'EnvoyExtensionPolicy',
      metadata: meta(input, name),
      spec: {
        targetRefs,
        extProc: [
          {
            backendRefs: [backend(cfg.service.extProcPort)],
            failOpen: false,
            messageTimeout: cfg.timeout,
            processingMode: { response: { body: 'Buffered' } },
            metadata: { accessibleNamespaces: ['envoy.filters.http.ext_authz'] },
          },
        ],
      },
    });
  }
  return out;
}

export function translate(input: TranslateInput, cfg: OutputConfig): Translation {
  const problems: string[] = [];
  const objects = [...(cfg.istio ? istioObjects(input, cfg, problems) : []), ...(cfg.envoyGateway ? envoyGatewayObjects(input, cfg) : [])];
  if ((input.policy.spec.targetRefs ?? []).length === 0) problems.push('spec.targetRefs is empty: no mesh configuration generated');
  return { objects, problems };
}
