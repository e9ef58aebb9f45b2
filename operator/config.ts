/**
 * The operator's settings: flags, then PORTCULLIS_OPERATOR_* / POD_* variables, then defaults.
 * The operator's only environment reads are here.
 */
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { parseNamespaces } from '../kube/namespaces.js';
import { PortcullisError } from '../extauthz/errors.js';
import type { OutputConfig } from './translate.js';

export interface OperatorConfig {
  kubeconfig?: string;
  leaderElect: boolean;
  leaseNamespace: string;
  leaseName: string;
  identity: string;
  httpAddress: string;
  outputs: OutputConfig;
  logLevel: string;
  /** Concurrent ApiPolicy reconciles (distinct keys). */
  workers: number;
  /** Read the label-selected Secrets Tenants name and verify them (default on). */
  verifySecrets: boolean;
  /** List and watch those Secrets only in these namespaces; absent: every namespace. */
  secretNamespaces?: string[];
}

export const OPERATOR_HELP = `Usage: node dist/operator/main.js [options]

Reconciles ApiPolicy and Tenant resources into Istio and/or Envoy Gateway configuration and
reports status conditions (Accepted, Programmed, Ready).

Commands: (none) runs the operator; "cleanup" removes what it generated (cleanup --help).

Options (environment variable in brackets):
  --kubeconfig FILE           kubeconfig (default: in-cluster or ~/.kube/config) [KUBECONFIG]
  --outputs LIST              istio,envoy-gateway (default both) [PORTCULLIS_OPERATOR_OUTPUTS]
  --istio-provider NAME       meshConfig extension provider name, default portcullis [PORTCULLIS_ISTIO_PROVIDER]
  --service NAME.NS           the Portcullis decision Service, default portcullis-extauthz.portcullis-system
  --authz-port N              its ext_authz gRPC port, default 9001
  --ext-proc-port N           its ext_proc gRPC port, default 9002
  --timeout DURATION          ext_authz / ext_proc budget written into outputs, default 500ms
  --cluster-domain DOMAIN     the cluster's DNS domain (Istio's ext_proc cluster name), default cluster.local
  --istio-request-body-bytes N   includeRequestBodyInCheck.maxRequestBytes of the Istio provider,
                              default 0 (it sends no bodies) [PORTCULLIS_ISTIO_REQUEST_BODY_BYTES]
  --leader-elect / --no-leader-elect   use a Lease so only one replica writes (default on)
  --lease-namespace NS        default: the pod's namespace [POD_NAMESPACE], else portcullis-system
  --lease-name NAME           default portcullis-operator
  --identity ID               leader identity, default the pod name [POD_NAME] or host name
  --http-address H:P          /healthz, /readyz, /metrics, default 0.0.0.0:8081
  --workers N                 concurrent ApiPolicy reconciles, default 16 (Tenant reconciles and
                              namespace passes: up to 4 each) [PORTCULLIS_OPERATOR_WORKERS]
  --no-verify-secrets         do not read Secrets: a Tenant naming one (apiKeys, revocation.secretRef,
                              introspection.clientSecretRef) gets SecretsVerified=Unknown and
                              Ready=Unknown, never Ready=True (default: read the Secrets labelled
                              portcullis.io/api-keys, /revocation or /introspection=true and verify them)
  --secret-namespaces LIST    comma-separated: read those Secrets only in these namespaces (the Secret
                              grant is narrowed to them), default every namespace
  --log-level LEVEL           default info
  -h, --help`;

function validateAddress(name: string, v: string): string {
  const m = /^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(v);
  if (!m || Number(m[2]) > 65535) throw new PortcullisError('USAGE', `${name} must be host:port, got "${v}"`);
  return v;
}

const DURATION = /^([0-9]{1,5}(h|m|s|ms)){1,4}$/;

function port(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new PortcullisError('USAGE', `${name} must be a port number`);
  return n;
}

function count(name: string, v: string, max: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > max) throw new PortcullisError('USAGE', `${name} must be an integer from 1 to ${max}`);
  return n;
}

function bodyBytes(v: string): number {
  const n = Number(v);
  if (!/^[0-9]{1,10}$/.test(v) || n > 4294967295) throw new PortcullisError('USAGE', '--istio-request-body-bytes must be an integer from 0 to 4294967295');
  return n;
}

const OPTIONS = {
  kubeconfig: { type: 'string' }, outputs: { type: 'string' }, 'istio-provider': { type: 'string' }, service: { type: 'string' },
  'authz-port': { type: 'string' }, 'ext-proc-port': { type: 'string' }, timeout: { type: 'string' }, 'cluster-domain': { type: 'string' }, 'istio-request-body-bytes': { type: 'string' }, 'leader-elect': { type: 'boolean' },
  'no-leader-elect': { type: 'boolean' }, 'lease-namespace': { type: 'string' }, 'lease-name': { type: 'string' }, identity: { type: 'string' },
  'http-address': { type: 'string' }, 'log-level': { type: 'string' }, workers: { type: 'string' }, help: { type: 'boolean', short: 'h' },
  'no-verify-secrets': { type: 'boolean' }, 'secret-namespaces': { type: 'string' },
} as const;

type Values = Partial<Record<keyof typeof OPTIONS, string | boolean>>;

function str(values: Values, key: keyof typeof OPTIONS, fallback: string): string {
  const v = values[key];
  return typeof v === 'string' ? v : fallback;
}

function parseOutputs(list: string): { istio: boolean; envoyGateway: boolean } {
  const outputs = list.split(',').map((s) => s.trim()).filter(Boolean);
  for (const o of outputs) if (o !== 'istio' && o !== 'envoy-gateway') throw new PortcullisError('USAGE', `--outputs: unknown output "${o}"`);
  return { istio: outputs.includes('istio'), envoyGateway: outputs.includes('envoy-gateway') };
}

function parseOutputConfig(values: Values, env: NodeJS.ProcessEnv): OutputConfig {
  const [name, namespace] = str(values, 'service', 'portcullis-extauthz.portcullis-system').split('.');
  if (!name || !namespace) throw new PortcullisError('USAGE', '--service must be NAME.NAMESPACE');
  const timeout = str(values, 'timeout', '500ms');
  if (!DURATION.test(timeout)) throw new PortcullisError('USAGE', '--timeout must be a duration such as 500ms or 1s');
  const clusterDomain = str(values, 'cluster-domain', 'cluster.local');
  if (!/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/.test(clusterDomain)) throw new PortcullisError('USAGE', '--cluster-domain must be a DNS name such as cluster.local');
  return {
    ...parseOutputs(str(values, 'outputs', env.PORTCULLIS_OPERATOR_OUTPUTS ?? 'istio,envoy-gateway')),
    istioProvider: str(values, 'istio-provider', env.PORTCULLIS_ISTIO_PROVIDER ?? 'portcullis'),
    service: { name, namespace, authzPort: port('--authz-port', str(values, 'authz-port', '9001')), extProcPort: port('--ext-proc-port', str(values, 'ext-proc-port', '9002')) },
    timeout,
    clusterDomain,
    istioRequestBodyBytes: bodyBytes(str(values, 'istio-request-body-bytes', env.PORTCULLIS_ISTIO_REQUEST_BODY_BYTES ?? '0')),
  };
}

export function parseOperatorArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): OperatorConfig | 'help' {
  const { values } = parseArgs({ args: argv, strict: true, options: OPTIONS });
  if (values.help) return 'help';
  const kubeconfig = values.kubeconfig ?? env.KUBECONFIG;
  return {
    ...(kubeconfig ? { kubeconfig } : {}),
    leaderElect: !values['no-leader-elect'],
    leaseNamespace: str(values, 'lease-namespace', env.POD_NAMESPACE ?? 'portcullis-system'),
    leaseName: str(values, 'lease-name', 'portcullis-operator'),
    identity: str(values, 'identity', env.POD_NAME ?? `${hostname()}-${process.pid}`),
    httpAddress: validateAddress('--http-address', str(values, 'http-address', '0.0.0.0:8081')),
    logLevel: str(values, 'log-level', 'info'),
    workers: count('--workers', str(values, 'workers', env.PORTCULLIS_OPERATOR_WORKERS ?? '16'), 256),
    outputs: parseOutputConfig(values, env),
    verifySecrets: values['no-verify-secrets'] !== true,
    ...secretNamespaces(values),
  };
}

function secretNamespaces(values: Values): { secretNamespaces?: string[] } {
  const v = values['secret-namespaces'];
  const list = typeof v === 'string' ? parseNamespaces('--secret-namespaces', v) : [];
  return list.length > 0 ? { secretNamespaces: list } : {};
}

export const CLEANUP_HELP = `Usage: node dist/operator/main.js cleanup [options]

Uninstall path: stops the operator Deployment (scale to 0), deletes every mesh object the operator
generated (label app.kubernetes.io/managed-by=portcullis-operator, all namespaces) and marks every
ApiPolicy and Tenant Ready=False reason Uninstalled. Afterwards the protected workloads are no
longer decided by Portcullis: see docs/operator.md, "Uninstall".

Options:
  --kubeconfig FILE           kubeconfig (default: in-cluster or ~/.kube/config) [KUBECONFIG]
  --operator-deployment NS/NAME   the operator's Deployment to stop first (omit if already stopped)
  --timeout-seconds N         how long to wait for the operator's pods to go, default 60
  -h, --help`;

export interface CleanupConfig {
  kubeconfig?: string;
  deployment?: { namespace: string; name: string };
  timeoutMs: number;
}

function parseDeployment(d: string | undefined): { namespace: string; name: string } | undefined {
  if (d === undefined) return undefined;
  const [namespace, name, extra] = d.split('/');
  if (!namespace || !name || extra !== undefined) throw new PortcullisError('USAGE', '--operator-deployment must be NAMESPACE/NAME');
  return { namespace, name };
}

function parseSeconds(v: string | undefined): number {
  const seconds = Number(v ?? '60');
  if (!Number.isInteger(seconds) || seconds < 1 || seconds > 3600) throw new PortcullisError('USAGE', '--timeout-seconds must be an integer from 1 to 3600');
  return seconds;
}

export function parseCleanupArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): CleanupConfig | 'help' {
  const { values } = parseArgs({ args: argv, strict: true, options: { kubeconfig: { type: 'string' }, 'operator-deployment': { type: 'string' }, 'timeout-seconds': { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) return 'help';
  const kubeconfig = values.kubeconfig ?? env.KUBECONFIG;
  const deployment = parseDeployment(values['operator-deployment']);
  return { ...(kubeconfig ? { kubeconfig } : {}), ...(deployment ? { deployment } : {}), timeoutMs: parseSeconds(values['timeout-seconds']) * 1000 };
}
