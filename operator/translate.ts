/**
 * ApiPolicy → mesh configuration, as a pure function (golden-file tested). The outputs route
 * every request of the targeted workloads through Portcullis:
 * - Istio: per targeted workload (a Service's selector, or a Gateway), an AuthorizationPolicy
 *   with action CUSTOM, the single Portcullis provider and one empty rule, a STRICT
 *   PeerAuthentication where agency principals (mTLS) can reach the workload, and, where a policy
 *   masks, an EnvoyFilter inserting ext_proc after ext_authz on the workload's inbound listener.
 *   These objects describe the workload, not the policy: every policy targeting it yields the
 *   same ones, so they are shared (named for the workload, no ownerReferences) and written once
 *   however many policies target it. shared-objects.ts prunes them when no policy needs them;
 * - Envoy Gateway: a SecurityPolicy with extAuth (gRPC, fail closed, a real timeout, the policy
 *   named in contextExtensions) and, for policies that mask, an EnvoyExtensionPolicy whose
 *   ext_proc sees the request headers (the signed directive) and the buffered response body.
 *
 * Istio sends a CUSTOM provider only the requests its rules match and allows the rest, so the
 * rules are never narrowed (not to hosts, paths or methods): a request by the Service's cluster
 * name, its IP or any other Host still reaches Portcullis, which denies hosts it does not know.
 *
 * Request bodies: Envoy sends one to ext_authz only when asked. A policy whose rules validate
 * bodies (request.body or request.maxBodyBytes) gets extAuth.bodyToExtAuth on its Envoy Gateway
 * SecurityPolicy, sized to the largest limit it needs; Istio asks for bodies only mesh-wide, in
 * the extension provider (includeRequestBodyInCheck), so the operator is told that provider's
 * limit and refuses Programmed when a policy needs more.
 *
 * What cannot be wired (a target no enabled output handles, masks on an Istio Gateway, a missing
 * target, a backend reference without a ReferenceGrant, bodies Istio's provider does not send) is
 * reported as a problem with a reason: the policy is then Programmed=False, never Ready with
 * parts unenforced.
 */
import { createHash } from 'node:crypto';
import type { ApiPolicySpec } from '../extauthz/policy/model.js';
import { POLICY_CONTEXT_KEY } from '../extauthz/policy/snapshot.js';
import { DEFAULT_MAX_BODY_BYTES } from '../extauthz/policy/request-checks.js';

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
  /** The cluster's DNS domain: Istio names the sidecar's cluster for the ext_proc Service by it. */
  clusterDomain: string;
  /**
   * includeRequestBodyInCheck.maxRequestBytes of the Istio extension provider (0: the provider
   * sends no body). Policies whose rules need more cannot be enforced on Istio targets.
   */
  istioRequestBodyBytes: number;
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
  /** HTTPRoutes and Gateways of the policy's namespace that exist, as "Kind/name". */
  presentRoutes: ReadonlySet<string>;
  /** Envoy Gateway policy kinds of this namespace a ReferenceGrant lets reference the Portcullis Service. */
  grantedKinds: ReadonlySet<string>;
  /** Some rule can admit agency principals (mTLS), so the workload needs STRICT mTLS. */
  agencyReachable: boolean;
}

export interface GeneratedObject {
  apiVersion: string;
  kind: string;
  /** ownerReferences only on a policy's own objects (shared ones have none, see sharedMeta). */
  metadata: { name: string; namespace: string; labels: Record<string, string>; ownerReferences?: unknown[] };
  spec: Record<string, unknown>;
}

/** Why (part of) a policy is not programmed; the first problem's reason becomes Programmed's. */
export type ProblemReason = 'NoTargets' | 'TargetNotFound' | 'TargetNotWired' | 'MaskingNotWired' | 'ReferenceGrantMissing' | 'RequestBodyNotSent';

export interface TranslationProblem {
  reason: ProblemReason;
  message: string;
}

export interface Translation {
  objects: GeneratedObject[];
  /** What could not be wired or resolved; the policy is then not Programmed. */
  problems: TranslationProblem[];
  /** A shadow policy: nothing is generated (see translate). */
  shadow?: true;
}

/** The kinds the operator may write, for pruning and RBAC. */
export const OUTPUT_KINDS = [
  { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', plural: 'authorizationpolicies', output: 'istio' },
  { apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', plural: 'peerauthentications', output: 'istio' },
  { apiVersion: 'networking.istio.io/v1alpha3', kind: 'EnvoyFilter', plural: 'envoyfilters', output: 'istio' },
  { apiVersion: 'gateway.envoyproxy.io/v1alpha1', kind: 'SecurityPolicy', plural: 'securitypolicies', output: 'envoyGateway' },
  { apiVersion: 'gateway.envoyproxy.io/v1alpha1', kind: 'EnvoyExtensionPolicy', plural: 'envoyextensionpolicies', output: 'envoyGateway' },
] as const;

const GATEWAY_GROUP = 'gateway.networking.k8s.io';
/** The name Istio gives the CUSTOM provider's filter in a sidecar's HTTP filter chain. */
export const ISTIO_EXT_AUTHZ_FILTER = 'envoy.filters.http.ext_authz';
export const EXT_PROC_FILTER = 'envoy.filters.http.ext_proc';

/** Kubernetes names are at most 253 characters; long ones keep a hash suffix to stay unique. */
export function childName(policyName: string): string {
  const name = `portcullis-${policyName}`;
  if (name.length <= 63) return name;
  const hash = createHash('sha256').update(policyName).digest('hex').slice(0, 8);
  return `${name.slice(0, 54)}-${hash}`;
}

/** An object of one policy: labelled with it and owned by it (the garbage collector follows the policy). */
function meta(input: TranslateInput, name: string): GeneratedObject['metadata'] {
  const p = input.policy;
  return {
    name,
    namespace: p.metadata.namespace,
    labels: { [LABEL_MANAGED_BY]: FIELD_MANAGER, [LABEL_POLICY]: p.metadata.name },
    ownerReferences: [{ apiVersion: p.apiVersion, kind: p.kind, name: p.metadata.name, uid: p.metadata.uid, controller: true, blockOwnerDeletion: true }],
  };
}

/**
 * An object of a workload, shared by every policy that targets it: no policy label and no
 * ownerReferences (deleting one policy must not remove what the others still need). At 10,000
 * policies on one workload per namespace this is one write per workload instead of one per policy.
 */
function sharedMeta(input: TranslateInput, name: string): GeneratedObject['metadata'] {
  return { name, namespace: input.policy.metadata.namespace, labels: { [LABEL_MANAGED_BY]: FIELD_MANAGER } };
}

/** The shared objects' name: the workload's, so two policies on one Service write one object. */
export function workloadObjectName(target: { kind: 'Service' | 'Gateway'; name: string }): string {
  return childName(`${target.kind.toLowerCase()}-${target.name}`);
}

/** Istio's objects are per workload and shared; Envoy Gateway's name their policy and are owned by it. */
export function isShared(o: { apiVersion?: string }): boolean {
  return OUTPUT_KINDS.some((k) => k.output === 'istio' && k.apiVersion === o.apiVersion);
}

/** A rule with masks or allowFields, or a defaultMask: responses must pass through ext_proc. */
export function policyMasks(spec: ApiPolicySpec): boolean {
  return spec.rules.some((r) => (r.mask?.length ?? 0) > 0 || (r.allowFields?.length ?? 0) > 0) || (spec.defaultMask?.length ?? 0) > 0;
}

/**
 * The request body bytes the policy's rules need the proxy to send: the largest maxBodyBytes of
 * an allow rule with request.body or request.maxBodyBytes (a body schema alone: the default
 * limit); undefined when no rule reads the body.
 */
export function policyBodyBytes(spec: ApiPolicySpec): number | undefined {
  let max: number | undefined;
  for (const r of spec.rules) {
    if ((r.effect ?? 'allow') !== 'allow' || !r.request) continue;
    const need = r.request.maxBodyBytes ?? (r.request.body ? DEFAULT_MAX_BODY_BYTES : undefined);
    if (need !== undefined && need > (max ?? -1)) max = need;
  }
  return max;
}

/** The one Istio rule: empty, so it matches every request of the selected workload or gateway. */
const MATCH_EVERY_REQUEST: Record<string, unknown>[] = [{}];

/**
 * The ext_proc filter as Envoy's HttpFilter: the same processing mode as docs/envoy's fragment
 * (request headers carry the signed directive; the whole response body in one message).
 */
export function extProcHttpFilter(cfg: OutputConfig, clusterName: string): Record<string, unknown> {
  return {
    name: EXT_PROC_FILTER,
    typed_config: {
      '@type': 'type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor',
      grpc_service: { envoy_grpc: { cluster_name: clusterName } },
      failure_mode_allow: false,
      message_timeout: envoyDuration(cfg.timeout),
      processing_mode: {
        request_header_mode: 'SEND',
        request_body_mode: 'NONE',
        request_trailer_mode: 'SKIP',
        response_header_mode: 'SEND',
        response_body_mode: 'BUFFERED',
        response_trailer_mode: 'SKIP',
      },
      metadata_options: { forwarding_namespaces: { untyped: [ISTIO_EXT_AUTHZ_FILTER] } },
    },
  };
}

/** "500ms" / "1s" / "1m30s" → protobuf JSON duration ("0.500s"). */
export function envoyDuration(d: string): string {
  const unit: Record<string, number> = { h: 3600_000, m: 60_000, s: 1000, ms: 1 };
  let ms = 0;
  for (const m of d.matchAll(/([0-9]+)(ms|h|m|s)/g)) ms += Number(m[1]) * unit[m[2]!]!;
  return `${(ms / 1000).toFixed(3)}s`;
}

/** Istio's name for the sidecar's outbound cluster of a Service port. */
function istioCluster(cfg: OutputConfig, port: number): string {
  return `outbound|${port}||${cfg.service.name}.${cfg.service.namespace}.svc.${cfg.clusterDomain}`;
}

function envoyFilter(input: TranslateInput, cfg: OutputConfig, name: string, labels: Record<string, string>): GeneratedObject {
  return {
    apiVersion: 'networking.istio.io/v1alpha3',
    kind: 'EnvoyFilter',
    metadata: sharedMeta(input, name),
    spec: {
      workloadSelector: { labels },
      configPatches: [
        {
          applyTo: 'HTTP_FILTER',
          match: {
            context: 'SIDECAR_INBOUND',
            listener: { filterChain: { filter: { name: 'envoy.filters.network.http_connection_manager', subFilter: { name: ISTIO_EXT_AUTHZ_FILTER } } } },
          },
          patch: { operation: 'INSERT_AFTER', value: extProcHttpFilter(cfg, istioCluster(cfg, cfg.service.extProcPort)) },
        },
      ],
    },
  };
}

/** The Services the policy targets that exist with a selector (each one workload), by name. */
function serviceTargets(input: TranslateInput, problems: TranslationProblem[]): { name: string; matchLabels: Record<string, string> }[] {
  const out: { name: string; matchLabels: Record<string, string> }[] = [];
  const seen = new Set<string>();
  for (const ref of input.policy.spec.targetRefs ?? []) {
    if (ref.kind !== 'Service' || seen.has(ref.name)) continue;
    seen.add(ref.name);
    const selector = input.serviceSelectors.get(ref.name);
    if (!selector) problems.push({ reason: 'TargetNotFound', message: `Service ${ref.name} not found or has no selector` });
    else out.push({ name: ref.name, matchLabels: { ...selector } });
  }
  return out;
}

function customPolicy(input: TranslateInput, cfg: OutputConfig, name: string, target: Record<string, unknown>): GeneratedObject {
  return { apiVersion: 'security.istio.io/v1', kind: 'AuthorizationPolicy', metadata: sharedMeta(input, name), spec: { ...target, action: 'CUSTOM', provider: { name: cfg.istioProvider }, rules: MATCH_EVERY_REQUEST } };
}

function istioObjects(input: TranslateInput, cfg: OutputConfig, problems: TranslationProblem[]): GeneratedObject[] {
  const spec = input.policy.spec;
  const services = serviceTargets(input, problems);
  const gateways = [...new Set((spec.targetRefs ?? []).filter((r) => r.kind === 'Gateway').map((r) => r.name))];
  const masks = policyMasks(spec);
  const out: GeneratedObject[] = [];
  // An Istio policy has at most one selector: one object per workload.
  for (const { name: service, matchLabels } of services) {
    const name = workloadObjectName({ kind: 'Service', name: service });
    out.push(customPolicy(input, cfg, name, { selector: { matchLabels } }));
    if (input.agencyReachable) {
      out.push({ apiVersion: 'security.istio.io/v1', kind: 'PeerAuthentication', metadata: sharedMeta(input, name), spec: { selector: { matchLabels }, mtls: { mode: 'STRICT' } } });
    }
    if (masks) out.push(envoyFilter(input, cfg, name, matchLabels));
  }
  const body = policyBodyBytes(spec);
  if (body !== undefined && out.length + gateways.length > 0 && body > cfg.istioRequestBodyBytes) {
    const has = cfg.istioRequestBodyBytes === 0 ? 'sends no request bodies' : `sends at most ${cfg.istioRequestBodyBytes} body bytes`;
    problems.push({ reason: 'RequestBodyNotSent', message: `Istio: rules validate request bodies up to ${body} bytes, but the extension provider ${cfg.istioProvider} ${has}; set includeRequestBodyInCheck.maxRequestBytes to at least ${body} in meshConfig and the chart value istio.requestBodyMaxBytes (docs/controls.md)` });
  }
  for (const gateway of gateways) out.push(customPolicy(input, cfg, workloadObjectName({ kind: 'Gateway', name: gateway }), { targetRefs: [{ group: GATEWAY_GROUP, kind: 'Gateway', name: gateway }] }));
  if (gateways.length > 0 && masks) {
    problems.push({ reason: 'MaskingNotWired', message: `Istio: ext_proc is wired only into the sidecars of Service targets; masks would not be enforced on Gateway ${gateways.join(', ')}` });
  }
  return out;
}

function envoyGatewayObjects(input: TranslateInput, cfg: OutputConfig): GeneratedObject[] {
  const spec = input.policy.spec;
  const targetRefs = (spec.targetRefs ?? []).filter((r) => r.kind === 'HTTPRoute' || r.kind === 'Gateway').map((r) => ({ group: GATEWAY_GROUP, kind: r.kind, name: r.name }));
  if (targetRefs.length === 0) return [];
  const name = childName(input.policy.metadata.name);
  const body = policyBodyBytes(spec);
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
          // Only where a rule validates bodies, sized to the largest limit (Envoy answers 413 above it).
          ...(body !== undefined ? { bodyToExtAuth: { maxRequestBytes: body } } : {}),
        },
      },
    },
  ];
  if (policyMasks(spec)) {
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
            // request: the signed directive travels in a request header; without it every masked
            // response fails closed. response.body Buffered: the whole JSON body in one message.
            processingMode: { request: {}, response: { body: 'Buffered' } },
            metadata: { accessibleNamespaces: [ISTIO_EXT_AUTHZ_FILTER] },
          },
        ],
      },
    });
  }
  return out;
}

/** Every target must be wired by an enabled output and, for routes and gateways, exist. */
function targetProblems(input: TranslateInput, cfg: OutputConfig): TranslationProblem[] {
  const out: TranslationProblem[] = [];
  for (const ref of input.policy.spec.targetRefs ?? []) {
    const wired = ref.kind === 'Service' ? cfg.istio : ref.kind === 'HTTPRoute' ? cfg.envoyGateway : cfg.istio || cfg.envoyGateway;
    if (!wired) out.push({ reason: 'TargetNotWired', message: `${ref.kind} ${ref.name}: no enabled output wires this kind (${ref.kind === 'Service' ? 'istio' : 'envoy-gateway'} is off)` });
    else if (ref.kind !== 'Service' && !input.presentRoutes.has(`${ref.kind}/${ref.name}`)) out.push({ reason: 'TargetNotFound', message: `${ref.kind} ${ref.name} not found in namespace ${input.policy.metadata.namespace}` });
  }
  return out;
}

/** Envoy Gateway policies outside the Portcullis namespace need a ReferenceGrant to use its Service. */
function grantProblems(input: TranslateInput, cfg: OutputConfig, objects: readonly GeneratedObject[]): TranslationProblem[] {
  if (input.policy.metadata.namespace === cfg.service.namespace) return [];
  const kinds = [...new Set(objects.filter((o) => o.apiVersion.startsWith('gateway.envoyproxy.io/')).map((o) => o.kind))];
  const missing = kinds.filter((k) => !input.grantedKinds.has(k));
  if (missing.length === 0) return [];
  return [{ reason: 'ReferenceGrantMissing', message: `no ReferenceGrant in namespace ${cfg.service.namespace} lets ${missing.join(' and ')} from namespace ${input.policy.metadata.namespace} reference Service ${cfg.service.name}` }];
}

export function translate(input: TranslateInput, cfg: OutputConfig): Translation {
  // A shadow policy must change nothing on the data plane: its own CUSTOM AuthorizationPolicy
  // would send a workload nobody enforces to ext_authz (NO_POLICY for everyone), and its own
  // SecurityPolicy would name it as a route's decider. It is evaluated on the requests the
  // enforcing policies of its hosts already send.
  if (input.policy.spec.mode === 'shadow') return { objects: [], problems: [], shadow: true };
  const problems: TranslationProblem[] = [];
  if ((input.policy.spec.targetRefs ?? []).length === 0) problems.push({ reason: 'NoTargets', message: 'spec.targetRefs is empty: no mesh configuration generated' });
  problems.push(...targetProblems(input, cfg));
  const objects = [...(cfg.istio ? istioObjects(input, cfg, problems) : []), ...(cfg.envoyGateway ? envoyGatewayObjects(input, cfg) : [])];
  problems.push(...grantProblems(input, cfg, objects));
  return { objects, problems };
}
