/**
 * What `check` and `explain` accept as a request: canonical proto3 JSON of
 * envoy.service.auth.v3.CheckRequest and nothing else. protobufjs' fromObject ignores members it
 * does not know, so a misspelt `heders` would silently become a request without headers and get
 * a decision; here every member is looked up in the message descriptor first, and the first one
 * that is not a field (or has the wrong JSON kind) is a usage error naming its path.
 */
import protobuf from 'protobufjs';
import { protoRoot } from '../../proto/envoy.js';

/** Well-known types whose proto3 JSON form is not an object of their fields. */
const OPAQUE = new Set(['google.protobuf.Timestamp', 'google.protobuf.Duration', 'google.protobuf.Struct', 'google.protobuf.Value', 'google.protobuf.ListValue', 'google.protobuf.Any']);
const MAX_DEPTH = 32;

export class RequestShapeError extends Error {
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
    this.name = 'RequestShapeError';
  }
}

function fieldOf(type: protobuf.Type, name: string): protobuf.Field | undefined {
  // proto3 JSON accepts the lowerCamelCase json name and the original field name.
  return type.fields[name] ?? type.fieldsArray.find((f) => f.name === name || f.options?.json_name === name || snake(f.name) === name);
}

function snake(camel: string): string {
  return camel.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

function closest(type: protobuf.Type, name: string): string | undefined {
  const lower = name.toLowerCase();
  let best: { name: string; d: number } | undefined;
  for (const f of type.fieldsArray) {
    const d = distance(lower, f.name.toLowerCase());
    if (d <= 2 && (!best || d < best.d)) best = { name: f.name, d };
  }
  return best?.name;
}

/** Levenshtein distance of two short names (field names are a few dozen characters at most). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row.push(Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1)));
    prev = row;
  }
  return prev[b.length]!;
}

function kindOf(v: unknown): string {
  if (v === null) return 'null';
  return Array.isArray(v) ? 'array' : typeof v;
}

const SCALAR_KINDS: Record<string, readonly string[]> = {
  string: ['string'],
  bytes: ['string'],
  bool: ['boolean'],
  double: ['number', 'string'],
  float: ['number', 'string'],
};

function checkScalar(field: protobuf.Field, v: unknown, path: string): void {
  if (field.resolvedType instanceof protobuf.Enum) {
    if (typeof v === 'string' && !(v in field.resolvedType.values)) throw new RequestShapeError(path, `"${v}" is not a value of ${field.resolvedType.name}`);
    if (typeof v !== 'string' && typeof v !== 'number') throw new RequestShapeError(path, `expected an enum name, got ${kindOf(v)}`);
    return;
  }
  const allowed = SCALAR_KINDS[field.type] ?? ['number', 'string']; // integer types: numbers or decimal strings
  if (!allowed.includes(typeof v)) throw new RequestShapeError(path, `expected ${field.type}, got ${kindOf(v)}`);
}

function checkValue(field: protobuf.Field, v: unknown, path: string, depth: number): void {
  if (v === null) return; // proto3 JSON: null means the default value
  if (field.resolvedType instanceof protobuf.Type) checkMessage(field.resolvedType, v, path, depth + 1);
  else checkScalar(field, v, path);
}

function checkField(field: protobuf.Field, v: unknown, path: string, depth: number): void {
  if (field instanceof protobuf.MapField) {
    if (kindOf(v) !== 'object') throw new RequestShapeError(path, `expected an object (map), got ${kindOf(v)}`);
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) checkValue(field, x, `${path}[${JSON.stringify(k)}]`, depth);
    return;
  }
  if (field.repeated) {
    if (!Array.isArray(v)) throw new RequestShapeError(path, `expected an array, got ${kindOf(v)}`);
    v.forEach((x, i) => checkValue(field, x, `${path}[${i}]`, depth));
    return;
  }
  checkValue(field, v, path, depth);
}

function checkMessage(type: protobuf.Type, v: unknown, path: string, depth: number): void {
  if (OPAQUE.has(type.fullName.replace(/^\./, ''))) return;
  if (depth > MAX_DEPTH) throw new RequestShapeError(path, `nested deeper than ${MAX_DEPTH} messages`);
  if (kindOf(v) !== 'object') throw new RequestShapeError(path, `expected an object (${type.name}), got ${kindOf(v)}`);
  for (const [name, x] of Object.entries(v as Record<string, unknown>)) {
    const at = path ? `${path}.${name}` : name;
    const field = fieldOf(type, name);
    if (!field) {
      const hint = closest(type, name);
      throw new RequestShapeError(at, `unknown field "${name}" in ${type.name}${hint ? ` (did you mean "${hint}"?)` : ''}`);
    }
    field.resolve();
    checkField(field, x, at, depth);
  }
}

/** Throws RequestShapeError for the first member of `json` that the message type does not define. */
export function assertProtoJsonShape(typeName: string, json: unknown): void {
  const type = protoRoot().lookupType(typeName);
  checkMessage(type, json, '', 0);
}
