/**
 * Validates one object against its CRD schema the way the API server would: structural schema
 * (ajv, defaults applied) and then the x-kubernetes-validations CEL rules of the schema.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { Environment } from '@marcbachmann/cel-js';
import { crdSchema, toJsonSchema, type JsonSchema, type PolicyKind } from './crd-schema.js';

export interface SchemaProblem {
  path: string;
  message: string;
}

interface CelRule {
  /** Schema path segments; '*' stands for any array index or map key. */
  at: string[];
  rule: string;
  message: string;
}

export class SchemaValidator {
  private readonly ajv = new Ajv({ allErrors: true, useDefaults: true, strict: false, validateFormats: false });
  private readonly validators = new Map<PolicyKind, ValidateFunction>();
  private readonly celRules = new Map<PolicyKind, CelRule[]>();
  private readonly celEnv = new Environment({ unlistedVariablesAreDyn: true });

  constructor(crdDir?: string) {
    for (const kind of ['Tenant', 'ApiPolicy'] as const) {
      const schema = crdSchema(kind, crdDir);
      this.validators.set(kind, this.ajv.compile(toJsonSchema(schema) as JsonSchema));
      this.celRules.set(kind, collectCelRules(schema, []));
    }
  }

  /** Applies defaults in place and returns every problem found. */
  validate(kind: PolicyKind, obj: unknown): SchemaProblem[] {
    const validator = this.validators.get(kind);
    if (!validator) throw new Error(`no schema for ${kind}`);
    if (!validator(obj)) return (validator.errors ?? []).map(ajvProblem);
    const problems: SchemaProblem[] = [];
    for (const r of this.celRules.get(kind) ?? []) {
      for (const [path, self] of select(obj, r.at, '')) {
        if (!this.holds(r.rule, self)) problems.push({ path, message: r.message });
      }
    }
    return problems;
  }

  private holds(rule: string, self: unknown): boolean {
    try {
      return this.celEnv.evaluate(rule, { self: toCelValue(self) }) === true;
    } catch {
      return false;
    }
  }
}

function ajvProblem(e: ErrorObject): SchemaProblem {
  const extra =
    e.keyword === 'additionalProperties'
      ? ` (unknown field "${String((e.params as { additionalProperty?: string }).additionalProperty)}")`
      : e.keyword === 'enum'
        ? ` (one of ${(e.params as { allowedValues?: unknown[] }).allowedValues?.join(', ')})`
        : '';
  return { path: e.instancePath || '/', message: `${e.message ?? 'invalid'}${extra}` };
}

function collectCelRules(schema: JsonSchema, at: string[]): CelRule[] {
  const out: CelRule[] = [];
  const rules = schema['x-kubernetes-validations'] as { rule: string; message: string }[] | undefined;
  for (const r of rules ?? []) out.push({ at, rule: r.rule, message: r.message });
  const props = schema.properties as Record<string, JsonSchema> | undefined;
  for (const [k, v] of Object.entries(props ?? {})) out.push(...collectCelRules(v, [...at, k]));
  if (schema.items) out.push(...collectCelRules(schema.items as JsonSchema, [...at, '*']));
  return out;
}

function* select(value: unknown, at: string[], path: string): Generator<[string, unknown]> {
  if (value === undefined || value === null) return;
  if (at.length === 0) {
    yield [path || '/', value];
    return;
  }
  const [head, ...rest] = at as [string, ...string[]];
  if (head === '*' && Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) yield* select(value[i], rest, `${path}/${i}`);
  } else if (typeof value === 'object' && !Array.isArray(value)) {
    yield* select((value as Record<string, unknown>)[head], rest, `${path}/${head}`);
  }
}

// Kubernetes CEL sees integers as int; the CEL library wants bigint for that.
function toCelValue(v: unknown): unknown {
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  if (Array.isArray(v)) return v.map(toCelValue);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toCelValue(x)]));
  return v;
}
