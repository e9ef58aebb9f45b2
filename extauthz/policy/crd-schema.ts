/**
 * The CRDs in crds/ are the contract. This module reads their OpenAPI v3 schemas so the loader
 * validates standalone YAML exactly as the API server would (structure, enums, bounds), and so
 * the TypeScript types can be generated from the same source.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export type JsonSchema = { [key: string]: unknown };

export const CRD_DIR = fileURLToPath(new URL('../../../crds/', import.meta.url));
export const CRD_FILES = { Tenant: 'tenant.yaml', ApiPolicy: 'apipolicy.yaml' } as const;
export type PolicyKind = keyof typeof CRD_FILES;

interface CrdDocument {
  spec: { group: string; versions: { name: string; schema: { openAPIV3Schema: JsonSchema } }[] };
}

/** The openAPIV3Schema of the v1alpha1 version of a kind's CRD. */
export function crdSchema(kind: PolicyKind, dir: string = CRD_DIR): JsonSchema {
  const doc = parse(readFileSync(dir + CRD_FILES[kind], 'utf8')) as CrdDocument;
  const version = doc.spec.versions.find((v) => v.name === 'v1alpha1');
  if (!version) throw new Error(`crds/${CRD_FILES[kind]} has no v1alpha1 version`);
  return version.schema.openAPIV3Schema;
}

type Rewrite = (src: JsonSchema, out: JsonSchema) => void;

function intOrString(src: JsonSchema, out: JsonSchema): void {
  if (src['x-kubernetes-int-or-string'] !== true) return;
  delete out.type;
  out.anyOf = [{ type: 'integer' }, { type: 'string' }];
}

function closeObjects(src: JsonSchema, out: JsonSchema): void {
  if (src.type !== 'object' || src.additionalProperties !== undefined) return;
  if (src['x-kubernetes-preserve-unknown-fields'] === true) out.additionalProperties = true;
  else if (src.properties !== undefined) out.additionalProperties = false;
}

// OpenAPI 3.0's boolean exclusiveMinimum becomes the JSON Schema draft-07 number form.
function exclusiveMinimum(src: JsonSchema, out: JsonSchema): void {
  if (src.exclusiveMinimum !== true || typeof src.minimum !== 'number') return;
  out.exclusiveMinimum = src.minimum;
  delete out.minimum;
}

/** Applied in order to every schema object, after its own keys are copied. */
const REWRITES: readonly Rewrite[] = [intOrString, closeObjects, exclusiveMinimum];

/**
 * Kubernetes structural-schema extensions rewritten into plain JSON Schema: int-or-string as
 * anyOf, preserve-unknown-fields as open objects, every other object closed (the API server
 * prunes unknown fields; standalone mode rejects them so typos are not silently ignored).
 */
export function toJsonSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toJsonSchema);
  if (node === null || typeof node !== 'object') return node;
  const src = node as JsonSchema;
  const out: JsonSchema = {};
  for (const [k, v] of Object.entries(src)) {
    if (k.startsWith('x-kubernetes-')) continue;
    out[k] = k === 'properties' ? mapValues(v as JsonSchema) : toJsonSchema(v);
  }
  for (const rewrite of REWRITES) rewrite(src, out);
  return out;
}

function mapValues(props: JsonSchema): JsonSchema {
  return Object.fromEntries(Object.entries(props).map(([k, v]) => [k, toJsonSchema(v)]));
}
