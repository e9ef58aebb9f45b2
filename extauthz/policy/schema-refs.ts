/**
 * Body schemas held in ConfigMaps (a rule's `request.body.configMapRef`), resolved into the
 * policy before it compiles: the compiler sees one shape (`inline`), the schema goes through the
 * same bounds as an inline one, and the referenced values join the policy's fingerprint, so a
 * ConfigMap edit recompiles exactly the policies that name it. A missing ConfigMap, key, or a
 * value that is not JSON refuses the policy (its last good version keeps serving): never a rule
 * that silently validates nothing.
 */
import { PolicyError } from '../errors.js';
import { objectKey, type ApiPolicyObject, type ConfigMapObject } from './model.js';
import { BODY_SCHEMA_LIMITS } from './body-schema.js';

type Rule = ApiPolicyObject['spec']['rules'][number];
type Ref = { name: string; key: string };

function refOf(rule: Rule): Ref | undefined {
  return (rule.request?.body as { configMapRef?: Ref } | undefined)?.configMapRef;
}

/** "namespace/name\u0000key\u0000value" of every referenced schema (absent ones too): '' without refs. */
export function schemaRefsFingerprint(obj: ApiPolicyObject, configMaps: ReadonlyMap<string, ConfigMapObject> | undefined): string {
  let fp = '';
  for (const rule of obj.spec.rules) {
    const ref = refOf(rule);
    if (!ref) continue;
    const cm = configMaps?.get(`${obj.metadata.namespace}/${ref.name}`);
    fp += `\u0001${ref.name}\u0000${ref.key}\u0000${cm?.values[ref.key] ?? '\u0002absent'}`;
  }
  return fp;
}

function resolveOne(obj: ApiPolicyObject, ref: Ref, configMaps: ReadonlyMap<string, ConfigMapObject> | undefined): unknown {
  const ns = obj.metadata.namespace;
  const cm = configMaps?.get(`${ns}/${ref.name}`);
  if (!cm) throw new Error(`ConfigMap ${ns}/${ref.name} not found (in a cluster it needs the label portcullis.io/schema=true; in a folder, a v1 ConfigMap document)`);
  const text = cm.values[ref.key];
  if (text === undefined) throw new Error(`ConfigMap ${ns}/${ref.name} has no key ${ref.key}`);
  if (Buffer.byteLength(text) > BODY_SCHEMA_LIMITS.bytes) throw new Error(`the schema in ConfigMap ${ns}/${ref.name} key ${ref.key} is larger than ${BODY_SCHEMA_LIMITS.bytes} bytes`);
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // The parser's message can quote the text; the location is enough.
    throw new Error(`ConfigMap ${ns}/${ref.name} key ${ref.key} is not JSON`);
  }
}

/** The policy with every configMapRef replaced by its schema inline, or the problems that refuse it. */
export function resolveSchemaRefs(obj: ApiPolicyObject, configMaps: ReadonlyMap<string, ConfigMapObject> | undefined): { obj: ApiPolicyObject; problems: PolicyError[] } {
  if (!obj.spec.rules.some((r) => refOf(r))) return { obj, problems: [] };
  const problems: PolicyError[] = [];
  // Copy on write: the input objects are the source's cache (informers, file cache).
  const rules = obj.spec.rules.map((rule, i) => {
    const ref = refOf(rule);
    if (!ref) return rule;
    try {
      const inline = resolveOne(obj, ref, configMaps);
      return { ...rule, request: { ...rule.request, body: { inline } } } as Rule;
    } catch (err) {
      problems.push(new PolicyError('POLICY_REQUEST', `request.body: ${(err as Error).message}`, { ...obj.origin, object: `ApiPolicy ${objectKey(obj)}`, path: `/spec/rules/${i}/request/body/configMapRef`, rule: rule.name }));
      return rule;
    }
  });
  return { obj: { ...obj, spec: { ...obj.spec, rules } }, problems };
}
