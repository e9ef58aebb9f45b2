/**
 * The CEL environments. Policies are type-checked in the *policy* environment, where request,
 * principal and tenant are declared object types with their real fields (claims, headers,
 * attributes stay maps), so `principal.subjet` is a compile error; `params` is checked per rule
 * against the names its path templates capture. Programs evaluate in the *evaluation*
 * environment, where the same variables are plain maps (no per-request conversion) and which
 * alone knows the RE2 method the compiler rewrites matches() to — a policy can never name it.
 *
 * CEL_SCHEMA is the one declaration of what a condition sees: its types and its size bounds
 * (taken from the request parser's limits and the CRD), used by the checker and the cost estimate.
 */
import { Environment } from '@marcbachmann/cel-js';
import { LIMITS } from './input-limits.js';
import { dynOf, list, map, message, SCALAR, str, type Size } from './cel-cost.js';
import { CompiledPattern, re2Matches, RE2_METHOD, RE2_TYPE } from './cel-regex.js';

interface Field {
  type: string;
  size: Size;
}

/** Decoded JWT payload bound: a token travels in one header value, base64url (4 chars per 3 bytes). */
const CLAIMS_BYTES = Math.ceil((LIMITS.headerValueBytes * 3) / 4);
const DNS_NAME = 253;
const K8S_NAME = 63;

const REQUEST: Record<string, Field> = {
  method: { type: 'string', size: str(16) },
  path: { type: 'string', size: str(LIMITS.pathBytes) },
  host: { type: 'string', size: str(LIMITS.hostBytes) },
  headers: { type: 'map<string, string>', size: { ...map(LIMITS.headerCount, str(LIMITS.headersTotalBytes), str(LIMITS.headerValueBytes)), total: LIMITS.headersTotalBytes } },
  query: { type: 'map<string, string>', size: { ...map(LIMITS.pathBytes / 2, str(LIMITS.pathBytes), str(LIMITS.pathBytes)), total: LIMITS.pathBytes } },
  sourceIp: { type: 'string', size: str(64) },
  time: { type: 'google.protobuf.Timestamp', size: SCALAR },
};

const PRINCIPAL: Record<string, Field> = {
  type: { type: 'string', size: str(16) },
  tenant: { type: 'string', size: str(DNS_NAME) },
  subject: { type: 'string', size: str(LIMITS.headerValueBytes) },
  claims: { type: 'map<string, dyn>', size: dynOf(CLAIMS_BYTES) },
  spiffeId: { type: 'string', size: str(2048) },
  method: { type: 'string', size: str(16) },
  mfa: { type: 'bool', size: SCALAR },
};

// Bounds from crds/tenant.yaml: attributes ≤ 64 entries of ≤ 1024 characters, purposes ≤ 64 of ≤ 63.
const TENANT: Record<string, Field> = {
  name: { type: 'string', size: str(DNS_NAME) },
  namespace: { type: 'string', size: str(K8S_NAME) },
  type: { type: 'string', size: str(16) },
  attributes: { type: 'map<string, string>', size: map(64, str(DNS_NAME), str(1024)) },
  purposes: { type: 'list<string>', size: list(64, str(K8S_NAME)) },
};

/** Object-typed variables: CEL type name and fields. */
export const CEL_SCHEMA = {
  request: { typeName: 'portcullis.Request', fields: REQUEST },
  principal: { typeName: 'portcullis.Principal', fields: PRINCIPAL },
  tenant: { typeName: 'portcullis.Tenant', fields: TENANT },
} as const;

export type ObjectVariable = keyof typeof CEL_SCHEMA;

const PARAM_VALUE = str(LIMITS.pathBytes);

const LIMITS_OPTION = { maxAstNodes: 2000, maxDepth: 64, maxListElements: 1000, maxMapEntries: 1000, maxCallArguments: 16 };

function fieldTypes(fields: Record<string, Field>): Record<string, string> {
  return Object.fromEntries(Object.entries(fields).map(([k, f]) => [k, f.type]));
}

function policyEnvironment(): Environment {
  const env = new Environment({ limits: LIMITS_OPTION });
  for (const [name, v] of Object.entries(CEL_SCHEMA)) {
    env.registerType(v.typeName, { fields: fieldTypes(v.fields) });
    env.registerVariable(name, v.typeName);
  }
  env.registerVariable('params', 'map<string, string>');
  env.registerVariable('now', 'google.protobuf.Timestamp');
  return env;
}

function evaluationEnvironment(): Environment {
  const env = new Environment({ limits: LIMITS_OPTION });
  for (const name of Object.keys(CEL_SCHEMA)) env.registerVariable(name, 'map<string, dyn>');
  env.registerVariable('params', 'map<string, string>');
  env.registerVariable('now', 'google.protobuf.Timestamp');
  env.registerType(RE2_TYPE, CompiledPattern);
  env.registerFunction(`string.${RE2_METHOD}(${RE2_TYPE}): bool`, re2Matches);
  return env;
}

let envs: { policy: Environment; evaluation: Environment } | undefined;

export function environments(): { policy: Environment; evaluation: Environment } {
  envs ??= { policy: policyEnvironment(), evaluation: evaluationEnvironment() };
  return envs;
}

let fixedRoots: Map<string, Size> | undefined;

/** The size bounds of every variable, for the cost estimate; params by the rule's captured names. */
export function rootSizes(paramNames: readonly string[]): Map<string, Size> {
  fixedRoots ??= new Map<string, Size>([
    ...Object.entries(CEL_SCHEMA).map(([name, v]): [string, Size] => [name, message(Object.fromEntries(Object.entries(v.fields as Record<string, Field>).map(([k, f]) => [k, f.size])))]),
    ['now', SCALAR],
  ]);
  return new Map(fixedRoots).set('params', map(paramNames.length, str(64), PARAM_VALUE));
}

export const UNKNOWN_SIZE = dynOf(CLAIMS_BYTES);

export function objectVariableOfType(typeName: string | undefined): ObjectVariable | undefined {
  return (Object.keys(CEL_SCHEMA) as ObjectVariable[]).find((k) => CEL_SCHEMA[k].typeName === typeName);
}

export function fieldNames(v: ObjectVariable): string[] {
  return Object.keys(CEL_SCHEMA[v].fields);
}
