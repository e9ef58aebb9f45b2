/**
 * Policy test suites (`portcullis test`): YAML files named *.test.yaml anywhere under the policy
 * folder (by convention DIR/tests/). The policy loader skips those names, so suites never load
 * as policies. A suite is validated against a strict JSON Schema (unknown fields are errors, so
 * a misspelt expectation cannot pass silently) and is bounded like policy YAML: suite authors
 * are semi-trusted, and a suite holds no secrets (credentials are described, never given).
 */
import { readFileSync, statSync } from 'node:fs';
import { relative } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { parseAllDocuments } from 'yaml';
import { YAML_LIMITS } from '../policy/load.js';

export const SUITE_PATTERN = /\.test\.ya?ml$/;
export const SUITE_LIMITS = { casesPerSuite: 1000, repeat: 10_000, bodyBytes: 1024 * 1024 } as const;

export interface JwtPrincipal {
  /** The Tenant (of the policy's namespace) whose issuer and audience the token is minted for. */
  tenant: string;
  /** Claims; sub is required unless the tenant reads the subject from another claim. iss, aud, iat and exp default from the tenant and the time. */
  claims?: Record<string, unknown>;
  /** Seconds from the case's time to exp (default 300); negative mints an expired token. */
  expiresIn?: number;
}

export interface ApiKeyPrincipal {
  tenant: string;
  /** The key id (what the Secret names it, and the principal's subject); default "test-key". */
  id?: string;
}

export interface PrincipalSpec {
  jwt?: JwtPrincipal;
  apiKey?: ApiKeyPrincipal;
  /** The mTLS peer's SPIFFE ID, as Envoy passes a validated peer certificate (attributes.source.principal). */
  spiffe?: string;
}

export interface CaseRequest {
  method?: string;
  host: string;
  path: string;
  headers?: Record<string, string>;
  /** The body Envoy forwards (with_request_body): a string, or JSON for anything else. */
  body?: unknown;
  sourceIp?: string;
  principal?: PrincipalSpec;
  contextExtensions?: Record<string, string>;
}

export interface Expectation {
  decision?: 'allow' | 'deny';
  status?: number;
  code?: string | null;
  rule?: string | null;
  policy?: string | null;
  /** The masks applied, as audited ("$.field action"), in order. */
  masks?: string[];
  /** Headers the client gets back: allow — the quota headers added to the response; deny — the denied response's headers. Only the listed ones are compared (a null value: must be absent). */
  headers?: Record<string, string | null>;
  /** Upstream request headers on allow (x-portcullis-*). Only the listed ones are compared. */
  upstreamHeaders?: Record<string, string | null>;
  /** Shadow mode: null (no would-be denial), or the fields expected of it. */
  wouldDeny?: null | { policy?: string; rule?: string | null; code?: string; status?: number };
}

export interface TestCase {
  name: string;
  request: CaseRequest;
  expect: Expectation;
  /** Decide the request this many times (quotas charge each time); the expectation is for the last. */
  repeat?: number;
  /** RFC 3339 time of the decision (token times, CEL now, quota windows); default the suite's. */
  now?: string;
}

export interface Suite {
  /** Where it was read from, relative to the working directory. */
  file: string;
  name: string;
  now?: string;
  cases: TestCase[];
}

export class SuiteError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = 'SuiteError';
  }
}

const RFC3339 = '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$';
const name = { type: 'string', minLength: 1, maxLength: 253 } as const;
const stringMap = (maxProperties: number, nullable = false): object => ({
  type: 'object',
  maxProperties,
  propertyNames: { maxLength: 256 },
  additionalProperties: nullable ? { type: ['string', 'null'], maxLength: 8192 } : { type: 'string', maxLength: 8192 },
});

const SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['cases'],
  properties: {
    suite: name,
    now: { type: 'string', pattern: RFC3339 },
    cases: {
      type: 'array',
      minItems: 1,
      maxItems: SUITE_LIMITS.casesPerSuite,
      items: {
        type: 'object',
        additionalProperties: false,
        required: ['name', 'request', 'expect'],
        properties: {
          name: { type: 'string', minLength: 1, maxLength: 512 },
          now: { type: 'string', pattern: RFC3339 },
          repeat: { type: 'integer', minimum: 1, maximum: SUITE_LIMITS.repeat },
          request: {
            type: 'object',
            additionalProperties: false,
            required: ['host', 'path'],
            properties: {
              method: { type: 'string', pattern: '^[A-Z]{1,16}$' },
              host: { type: 'string', minLength: 1, maxLength: 253 },
              path: { type: 'string', pattern: '^/', maxLength: 8192 },
              headers: stringMap(256),
              body: {},
              sourceIp: { type: 'string', maxLength: 64 },
              contextExtensions: stringMap(32),
              principal: {
                type: 'object',
                additionalProperties: false,
                minProperties: 1,
                maxProperties: 1,
                properties: {
                  jwt: {
                    type: 'object',
                    additionalProperties: false,
                    required: ['tenant'],
                    properties: { tenant: name, claims: { type: 'object', maxProperties: 64 }, expiresIn: { type: 'integer', minimum: -31_536_000, maximum: 31_536_000 } },
                  },
                  apiKey: { type: 'object', additionalProperties: false, required: ['tenant'], properties: { tenant: name, id: { type: 'string', pattern: '^[A-Za-z0-9._-]{1,253}$' } } },
                  spiffe: { type: 'string', pattern: '^spiffe://', maxLength: 2048 },
                },
              },
            },
          },
          expect: {
            type: 'object',
            additionalProperties: false,
            minProperties: 1,
            properties: {
              decision: { enum: ['allow', 'deny'] },
              status: { type: 'integer', minimum: 100, maximum: 599 },
              code: { type: ['string', 'null'], maxLength: 64 },
              rule: { type: ['string', 'null'], maxLength: 253 },
              policy: { type: ['string', 'null'], maxLength: 512 },
              masks: { type: 'array', maxItems: 256, items: { type: 'string', maxLength: 1024 } },
              headers: stringMap(64, true),
              upstreamHeaders: stringMap(64, true),
              wouldDeny: {
                oneOf: [
                  { type: 'null' },
                  {
                    type: 'object',
                    additionalProperties: false,
                    minProperties: 1,
                    properties: { policy: { type: 'string', maxLength: 512 }, rule: { type: ['string', 'null'], maxLength: 253 }, code: { type: 'string', maxLength: 64 }, status: { type: 'integer' } },
                  },
                ],
              },
            },
          },
        },
      },
    },
  },
} as const;

let validator: ReturnType<Ajv['compile']> | undefined;

function validate(doc: unknown): ErrorObject[] {
  validator ??= new Ajv({ allErrors: false, strict: true }).compile(SCHEMA);
  return validator(doc) ? [] : (validator.errors ?? []);
}

function problem(e: ErrorObject): string {
  const at = e.instancePath || '/';
  if (e.keyword === 'additionalProperties') return `${at}: unknown field "${String((e.params as { additionalProperty: string }).additionalProperty)}"`;
  return `${at}: ${e.message ?? 'invalid'}`;
}

function readSuite(path: string, file: string): unknown {
  let text: string;
  try {
    if (statSync(path).size > YAML_LIMITS.fileBytes) throw new Error(`larger than ${YAML_LIMITS.fileBytes} bytes`);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new SuiteError(file, `cannot read: ${(err as Error).message}`);
  }
  const docs = parseAllDocuments(text, { uniqueKeys: true });
  if (!Array.isArray(docs) || docs.length !== 1) throw new SuiteError(file, 'a suite is exactly one YAML document');
  const doc = docs[0]!;
  if (doc.errors.length > 0) throw new SuiteError(file, `YAML: ${doc.errors[0]!.message.split('\n')[0] ?? 'invalid'}`);
  try {
    return doc.toJS({ maxAliasCount: YAML_LIMITS.aliases });
  } catch (err) {
    throw new SuiteError(file, `YAML cannot be read: ${(err as Error).message}`);
  }
}

/** What the schema cannot say: body size, unique case names. */
function checkCases(cases: readonly TestCase[], file: string): void {
  const names = new Set<string>();
  for (const c of cases) {
    const body = c.request.body;
    if (body !== undefined && Buffer.byteLength(typeof body === 'string' ? body : JSON.stringify(body)) > SUITE_LIMITS.bodyBytes) throw new SuiteError(file, `case "${c.name}": body larger than ${SUITE_LIMITS.bodyBytes} bytes`);
    if (names.has(c.name)) throw new SuiteError(file, `two cases are named "${c.name}"`);
    names.add(c.name);
  }
}

/** Reads and validates one suite file; throws SuiteError naming the file and the first problem. */
export function loadSuite(path: string): Suite {
  const file = relative(process.cwd(), path) || path;
  const value = readSuite(path, file);
  const problems = validate(value);
  if (problems.length > 0) throw new SuiteError(file, problems.map(problem).join('; '));
  const v = value as Omit<Suite, 'file' | 'name'> & { suite?: string };
  checkCases(v.cases, file);
  return { file, name: v.suite ?? file.replace(/^.*\//, '').replace(SUITE_PATTERN, ''), ...(v.now ? { now: v.now } : {}), cases: v.cases };
}
