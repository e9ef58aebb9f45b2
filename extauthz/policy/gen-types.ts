/**
 * Generates extauthz/policy/crd-types.ts from the CRD schemas (one source of truth).
 * Run `npm run gen:types` after editing crds/; a test fails while the file is stale.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { compile } from 'json-schema-to-typescript';
import { crdSchema, toJsonSchema, type JsonSchema, type PolicyKind } from './crd-schema.js';

export const TYPES_FILE = fileURLToPath(new URL('../../../extauthz/policy/crd-types.ts', import.meta.url));

// Item schemas that get a named type of their own instead of an inline literal.
const TITLES: Record<string, string> = {
  'spec.identity.jwt': 'JwtIdentity',
  'spec.identity.mtls': 'MtlsIdentity',
  'spec.identity.apiKeys': 'ApiKeyIdentity',
  'spec.identity.jwt.jwks.keys[]': 'Jwk',
  'spec.quotas[]': 'TenantQuota',
  'spec.targetRefs[]': 'TargetRef',
  'spec.defaultMask[]': 'MaskDirective',
  'spec.rules[]': 'ApiPolicyRule',
  'spec.rules[].principals': 'PrincipalSelector',
  'spec.rules[].quotas[]': 'RuleQuota',
  'spec.rules[].mask[]': 'MaskDirective',
  'spec.rules[].request': 'RequestValidation',
  'spec.rules[].request.query.parameters[]': 'QueryParameter',
  'spec.rules[].deprecation': 'Deprecation',
  'spec.deprecation': 'Deprecation',
  'status.conditions[]': 'Condition',
};

// Nodes the CRD cannot type (x-kubernetes-preserve-unknown-fields without a type): the compiler
// checks them, and their TypeScript type says what it accepts.
const TS_TYPES: Record<string, string> = {
  'spec.purposes[]': '(string | { name: string; legalBasis?: string; description?: string })',
};

function addTitles(node: JsonSchema, path: string, seen: Map<string, JsonSchema>): JsonSchema {
  const title = TITLES[path];
  // The same title must be the same object, or the generator numbers the copies.
  const known = title ? seen.get(title) : undefined;
  if (known) return known;
  const out: JsonSchema = { ...node };
  if (title) {
    out.title = title;
    seen.set(title, out);
  }
  const tsType = TS_TYPES[path];
  if (tsType) out.tsType = tsType;
  if (out.properties) {
    const props = out.properties as Record<string, JsonSchema>;
    out.properties = Object.fromEntries(Object.entries(props).map(([k, v]) => [k, addTitles(v, path ? `${path}.${k}` : k, seen)]));
  }
  if (out.items) out.items = addTitles(out.items as JsonSchema, `${path}[]`, seen);
  return out;
}

function kindSchemas(kind: PolicyKind, seen: Map<string, JsonSchema>): [string, JsonSchema][] {
  const props = (toJsonSchema(crdSchema(kind)) as JsonSchema).properties as Record<string, JsonSchema>;
  const spec = addTitles({ ...props.spec, title: `${kind}Spec` }, 'spec', seen);
  const status = addTitles({ ...props.status, title: `${kind}Status` }, 'status', seen);
  return [[`${kind}Spec`, spec], [`${kind}Status`, status]];
}

export async function generateTypes(): Promise<string> {
  const seen = new Map<string, JsonSchema>();
  const root = {
    title: 'PortcullisResources',
    type: 'object',
    additionalProperties: false,
    properties: Object.fromEntries([...kindSchemas('Tenant', seen), ...kindSchemas('ApiPolicy', seen)]),
  };
  const opts = { bannerComment: '', additionalProperties: false, format: true, ignoreMinAndMaxItems: true, strictIndexSignatures: true };
  const body = await compile(root as never, 'PortcullisResources', opts);
  return ['// Generated from crds/*.yaml by `npm run gen:types`. Do not edit.', '/* eslint-disable */', body].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(TYPES_FILE, await generateTypes());
  console.log(`wrote ${TYPES_FILE}`);
}
