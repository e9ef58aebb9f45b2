/**
 * The inputs beside tenants, policies and Secrets that the policy store compiles — revocation
 * lists in ConfigMaps or folder files, body schemas in ConfigMaps — as a policy set, and the
 * Checks that show whether a server enforces them: the same set decided by `serve --workers 1`
 * and `--workers N` must give the same codes (test/integration/workers-inputs.test.ts, folder;
 * test/cluster/kube-workers.test.ts, a real API server).
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { sha256Hex } from './fixtures.js';
import { eventually } from './server.js';
import { orderSchema, orderSchemaConfigMap, ordersPolicy } from './order-schema.js';
import type { CheckClient } from './serve-process.js';

export const NS = 'wk';
const OPEN = 'open.workers.example';
const ORDERS = 'orders.workers.example';
const KEYS = { acme1: 'acme-key-1-for-tests-only', acme2: 'acme-key-2-for-tests-only', beta1: 'beta-key-1-for-tests-only', beta2: 'beta-key-2-for-tests-only' } as const;
const LABELS = '{ portcullis.io/api-keys: "true" }';

/** A partner tenant with two API keys (`<id>-1`, `<id>-2`) in a labelled Secret, and its revocation list. */
function partnerYaml(id: 'acme' | 'beta', revocation: string, keys: readonly [string, string]): string {
  return `apiVersion: portcullis.io/v1alpha1
kind: Tenant
metadata: { name: partner-${id}, namespace: ${NS} }
spec:
  type: partner
  identity:
    apiKeys: { secretRef: { name: partner-${id}-keys } }
  revocation: ${revocation}
---
apiVersion: v1
kind: Secret
metadata: { name: partner-${id}-keys, namespace: ${NS}, labels: ${LABELS} }
stringData: { ${id}-1: ${sha256Hex(keys[0])}, ${id}-2: ${sha256Hex(keys[1])} }
`;
}

/**
 * Two partners: acme's revocation list is `acmeRevocation` (a folder file, or a labelled Secret
 * in a cluster, where files are refused), beta's is the ConfigMap betaRevoked() writes.
 */
export function tenantsYaml(acmeRevocation: string): string {
  return `${partnerYaml('acme', acmeRevocation, [KEYS.acme1, KEYS.acme2])}---
${partnerYaml('beta', '{ configMapRef: { name: partner-beta-revoked, key: revoked.json } }', [KEYS.beta1, KEYS.beta2])}`;
}

/** A revocation list revoking these API key ids. */
export const revokedKeys = (ids: string[]): string => JSON.stringify({ apiKeys: ids });

export function betaRevoked(ids: string[]): string {
  return `apiVersion: v1
kind: ConfigMap
metadata: { name: partner-beta-revoked, namespace: ${NS}, labels: { portcullis.io/revocation: "true" } }
data: { revoked.json: '${revokedKeys(ids)}' }
`;
}

export const openPolicy = `apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: open, namespace: ${NS} }
spec:
  hosts: [${OPEN}]
  rules:
    - name: partner-read
      methods: [GET]
      paths: ["/v1/datasets/**"]
      principals: { types: [partner] }
`;

/** The orders policy, whose body schema (quantity ≤ max) is in a labelled ConfigMap. */
export const ordersYaml = ordersPolicy({ namespace: NS, host: ORDERS });
export const schemaYaml = (max: number): string => orderSchemaConfigMap({ namespace: NS, data: { 'schema.json': orderSchema(max) } });

const partner = (key: string): unknown => ({ attributes: { request: { http: { method: 'GET', host: OPEN, path: '/v1/datasets/population', headers: { 'x-api-key': key } } } } });
const order = (quantity: number): unknown => {
  const body = JSON.stringify({ quantity });
  return { attributes: { request: { http: { method: 'POST', host: ORDERS, path: '/v1/orders', headers: { 'content-type': 'application/json', 'content-length': String(body.length) }, body } } } };
};

const CASES: { name: string; request: unknown }[] = [
  { name: 'acme-1', request: partner(KEYS.acme1) },
  { name: 'acme-2', request: partner(KEYS.acme2) },
  { name: 'beta-1', request: partner(KEYS.beta1) },
  { name: 'beta-2', request: partner(KEYS.beta2) },
  { name: 'order 5', request: order(5) },
  { name: 'order 50', request: order(50) },
];

/** Startup: acme-2 revoked (file or Secret), beta-2 revoked (ConfigMap), quantity ≤ 10 (ConfigMap schema). */
export const AT_START = { 'acme-1': 'OK', 'acme-2': 'REVOKED', 'beta-1': 'OK', 'beta-2': 'REVOKED', 'order 5': 'OK', 'order 50': 'BODY_INVALID' };
/** After both lists revoke every key and the schema allows quantity ≤ 100. */
export const AFTER_EDITS = { 'acme-1': 'REVOKED', 'acme-2': 'REVOKED', 'beta-1': 'REVOKED', 'beta-2': 'REVOKED', 'order 5': 'OK', 'order 50': 'OK' };

/** The decision's code: OK, or the denial's error code. */
function checkCode(c: CheckClient, request: unknown): Promise<string> {
  return new Promise((resolve, reject) =>
    c.Check(request, (err, res) => {
      if (err) return reject(err);
      if (res.status?.code === 0) return resolve('OK');
      resolve((JSON.parse(res.deniedResponse?.body ?? '{}') as { error?: { code?: string } }).error?.code ?? `status ${res.status?.code}`);
    }),
  );
}

/**
 * Every case over every connection: case name → the distinct codes seen, joined (one code when
 * every connection, so every worker behind them, decided the same).
 */
export async function decide(cs: CheckClient[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const { name, request } of CASES) out[name] = [...new Set(await Promise.all(cs.map((c) => checkCode(c, request))))].sort().join(' | ');
  return out;
}

/** acme's revocation list as a labelled Secret (a cluster refuses revocation.file). */
export const ACME_SECRET_REF = '{ secretRef: { name: partner-acme-revoked, key: revoked.json } }';
export function acmeRevokedSecret(ids: string[]): string {
  return `apiVersion: v1
kind: Secret
metadata: { name: partner-acme-revoked, namespace: ${NS}, labels: { portcullis.io/revocation: "true" } }
stringData: { revoked.json: '${revokedKeys(ids)}' }
`;
}

/**
 * Waits until one process and `serve --workers 2` both decide AFTER_EDITS; on timeout the
 * failure is the pool's difference from one process.
 */
export async function untilBothApplyEdits(one: CheckClient[], many: CheckClient[]): Promise<void> {
  let last: Record<string, string>[] = [];
  await eventually(async () => {
    last = [await decide(one), await decide(many)];
    return last.every((d) => JSON.stringify(d) === JSON.stringify(AFTER_EDITS));
  }, 'both servers to apply the edits').catch((err: unknown) => {
    assert.deepEqual(last[1], last[0], 'serve --workers 2 against one process');
    throw err;
  });
}

/**
 * Decisions each worker of a pool recorded in its audit chain (`<base>-w<i>.jsonl` for
 * `--audit-file <base>.jsonl`): a pool test proves something of every worker only if each one
 * answered some of the Checks.
 */
export function decisionsPerWorker(auditFile: string, workers: number): number[] {
  const base = auditFile.replace(/\.jsonl$/, '');
  return Array.from({ length: workers }, (_, i) => {
    const file = `${base}-w${i}.jsonl`;
    return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter((l) => l.includes('"type":"decision"')).length : 0;
  });
}
