/**
 * JSON Schemas held in ConfigMaps (a rule's `request.body.configMapRef` and
 * `responseSchema.configMapRef`), resolved into the policy before it compiles: the compiler sees
 * one shape (`inline`), the schema goes through the same bounds as an inline one, and the
 * referenced values join the policy's fingerprint, so a ConfigMap edit recompiles exactly the
 * policies that name it. A missing ConfigMap, key, or a value that is not JSON refuses the policy
 * (its last good version keeps serving): never a rule that silently validates or checks nothing.
 */
import { PolicyError } from '../errors.js';
import { objectKey, type ApiPolicyObject, type ConfigMapObject } from './model.js';
import { BODY_SCHEMA_LIMITS } from './body-schema.js';

type Rule = ApiPolicyObject['spec']['rules'][number];
type Ref = { name: string; key: string };
type ConfigMaps = ReadonlyMap<string, ConfigMapObject> | undefined;

/** Where a rule can name a schema held in a ConfigMap: its JSON pointer, and how to read and replace it. */
interface Site {
  pointer: string;
  ref(rule: Rule): Ref | undefined;
  inline(rule: Rule, schema: unknown): Rule;
}

const SITES: readonly Site[] = [
  {
    pointer: 'request/body',
    ref: (rule) => (rule.request?.body as { configMapRef?: Ref } | undefined)?.configMapRef,
    inline: (rule, schema) => ({ ...rule, request: { ...rule.request, body: { inline: schema } } }) as Rule,
  },
  {
    pointer: 'responseSchema',
    ref: (rule) => (rule.responseSchema as { configMapRef?: Ref } | undefined)?.configMapRef,
    inline: (rule, schema) => ({ ...rule, responseSchema: { inline: schema } }) as Rule,
  },
];

const hasRef = (rule: Rule): boolean => SITES.some((s) => s.ref(rule));

/** What every referenced schema holds (absent ones too): '' without refs. */
export function schemaRefsFingerprint(obj: ApiPolicyObject, configMaps: ConfigMaps): string {
  let fp = '';
  for (const rule of obj.spec.rules) {
    for (const site of SITES) {
      const ref = site.ref(rule);
      if (!ref) continue;
      const cm = configMaps?.get(`${obj.metadata.namespace}/${ref.name}`);
      fp += `\u0001${site.pointer}\u0000${ref.name}\u0000${ref.key}\u0000${cm?.values[ref.key] ?? '\u0002absent'}`;
    }
  }
  return fp;
}

function resolveOne(obj: ApiPolicyObject, ref: Ref, configMaps: ConfigMaps): unknown {
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
export function resolveSchemaRefs(obj: ApiPolicyObject, configMaps: ConfigMaps): { obj: ApiPolicyObject; problems: PolicyError[] } {
  if (!obj.spec.rules.some(hasRef)) return { obj, problems: [] };
  const problems: PolicyError[] = [];
  // Copy on write: the input objects are the source's cache (informers, file cache).
  const rules = obj.spec.rules.map((rule, i) => {
    let out = rule;
    for (const site of SITES) {
      const ref = site.ref(rule);
      if (!ref) continue;
      try {
        out = site.inline(out, resolveOne(obj, ref, configMaps));
      } catch (err) {
        // The codes of the inline schemas' own problems: request validation, and masking (responseSchema).
        const [code, what] = site.pointer === 'responseSchema' ? (['POLICY_INVALID', 'responseSchema'] as const) : (['POLICY_REQUEST', 'request.body'] as const);
        problems.push(new PolicyError(code, `${what}: ${(err as Error).message}`, { ...obj.origin, object: `ApiPolicy ${objectKey(obj)}`, path: `/spec/rules/${i}/${site.pointer}/configMapRef`, rule: rule.name }));
      }
    }
    return out;
  });
  return { obj: { ...obj, spec: { ...obj.spec, rules } }, problems };
}
