/**
 * Standalone policy source: a folder of multi-document YAML files holding the same objects a user
 * would `kubectl apply` (Tenant, ApiPolicy, and v1 Secrets with API-key hashes). Every problem is
 * collected with its file, document, field path and line, so one run reports them all.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { LineCounter, parseAllDocuments, type Document } from 'yaml';
import { PolicyError } from '../errors.js';
import { API_VERSION, type ApiPolicyObject, type ObjectMeta, type PolicySources, type SecretObject, type TenantObject } from './model.js';
import { SchemaValidator } from './validate-schema.js';

export interface LoadResult {
  sources: PolicySources;
  problems: PolicyError[];
  /** Documents that are not Portcullis objects (Namespaces, Services…), skipped. */
  skipped: string[];
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const MAX_FILE_BYTES = 4 * 1024 * 1024;

/** The YAML files of a folder (recursively), in a stable order. */
export function policyFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith('.')) continue;
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...policyFiles(full));
    else if (/\.ya?ml$/.test(entry.name)) out.push(full);
  }
  return out;
}

export function loadPolicyDir(dir: string, validator: SchemaValidator = new SchemaValidator()): LoadResult {
  const result: LoadResult = { sources: { tenants: [], policies: [], secrets: [] }, problems: [], skipped: [] };
  let files: string[];
  try {
    if (!statSync(dir).isDirectory()) throw new Error('not a directory');
    files = policyFiles(dir);
  } catch (err) {
    result.problems.push(new PolicyError('POLICY_INVALID', `cannot read policy folder: ${(err as Error).message}`, { file: dir }));
    return result;
  }
  for (const file of files) loadFile(file, relative(process.cwd(), file) || file, validator, result);
  return result;
}

/** Reads, parses and validates one policy file into `result` (the folder source reloads changed files only). */
export function loadFile(path: string, display: string, validator: SchemaValidator, result: LoadResult): void {
  let text: string;
  try {
    if (statSync(path).size > MAX_FILE_BYTES) throw new Error(`larger than ${MAX_FILE_BYTES} bytes`);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    result.problems.push(new PolicyError('POLICY_YAML', `cannot read file: ${(err as Error).message}`, { file: display }));
    return;
  }
  loadText(text, display, validator, result);
}

/** Parses and validates the documents of one YAML text into `result`. */
export function loadText(text: string, file: string, validator: SchemaValidator, result: LoadResult): void {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, uniqueKeys: true });
  const list = Array.isArray(docs) ? docs : [docs];
  list.forEach((doc, i) => {
    const at = { file, document: i + 1 };
    if (doc.errors.length > 0) {
      const e = doc.errors[0]!;
      const pos = lines.linePos(e.pos[0]);
      result.problems.push(new PolicyError('POLICY_YAML', e.message.split('\n')[0] ?? 'invalid YAML', { ...at, line: pos.line, column: pos.col }));
      return;
    }
    const value: unknown = doc.toJS({ maxAliasCount: 100 });
    if (value === null || value === undefined) return;
    loadObject(value, { doc, lines, ...at }, validator, result);
  });
}

interface DocContext {
  doc: Document;
  lines: LineCounter;
  file: string;
  document: number;
}

/** One document that parsed as an object with valid metadata. */
interface Candidate {
  obj: Record<string, unknown>;
  meta: ObjectMeta;
  ctx: DocContext;
  /** "Kind namespace/name", for problem locations. */
  object: string;
}

function docAt(ctx: DocContext): { file: string; document: number } {
  return { file: ctx.file, document: ctx.document };
}

function isPortcullisKind(apiVersion: unknown, kind: unknown): kind is 'Tenant' | 'ApiPolicy' {
  return apiVersion === API_VERSION && (kind === 'Tenant' || kind === 'ApiPolicy');
}

/** Not ours: an unknown portcullis.io kind or version is a problem; anything else is skipped. */
function foreignObject(c: Candidate, result: LoadResult): void {
  const { apiVersion, kind } = c.obj;
  if (typeof apiVersion === 'string' && apiVersion.startsWith('portcullis.io/')) {
    result.problems.push(new PolicyError('POLICY_SCHEMA', `unknown kind or version ${String(apiVersion)} ${String(kind)}`, { ...docAt(c.ctx), object: c.object }));
  } else result.skipped.push(`${c.ctx.file}#${c.ctx.document} ${String(apiVersion)} ${String(kind)}`);
}

/** A Tenant or ApiPolicy: schema problems are reported with their line; a valid one is kept. */
function addResource(c: Candidate, kind: 'Tenant' | 'ApiPolicy', validator: SchemaValidator, result: LoadResult): void {
  const at = docAt(c.ctx);
  const problems = validator.validate(kind, c.obj);
  for (const p of problems) {
    const pos = positionOf(c.ctx, p.path);
    result.problems.push(new PolicyError('POLICY_SCHEMA', p.message, { ...at, object: c.object, path: p.path, ...pos }));
  }
  if (problems.length > 0) return;
  const spec = c.obj.spec as never;
  if (kind === 'Tenant') result.sources.tenants.push({ kind, metadata: c.meta, spec, origin: at } satisfies TenantObject);
  else result.sources.policies.push({ kind, metadata: c.meta, spec, origin: at } satisfies ApiPolicyObject);
}

function loadObject(value: unknown, ctx: DocContext, validator: SchemaValidator, result: LoadResult): void {
  const at = docAt(ctx);
  if (typeof value !== 'object' || Array.isArray(value)) {
    result.problems.push(new PolicyError('POLICY_SCHEMA', 'a document must be a Kubernetes object (a mapping)', at));
    return;
  }
  const obj = value as Record<string, unknown>;
  const { apiVersion, kind } = obj;
  const meta = parseMeta(obj.metadata);
  if (typeof meta === 'string') {
    result.problems.push(new PolicyError('POLICY_SCHEMA', meta, { ...at, path: '/metadata' }));
    return;
  }
  const c: Candidate = { obj, meta, ctx, object: `${String(kind)} ${meta.namespace}/${meta.name}` };
  if (apiVersion === 'v1' && kind === 'Secret') result.sources.secrets.push(parseSecret(obj, meta, at));
  else if (isPortcullisKind(apiVersion, kind)) addResource(c, kind, validator, result);
  else foreignObject(c, result);
}

function validName(name: unknown): name is string {
  return typeof name === 'string' && DNS_SUBDOMAIN.test(name) && name.length <= 253;
}

function validNamespace(namespace: unknown): namespace is string | undefined {
  return namespace === undefined || (typeof namespace === 'string' && DNS_SUBDOMAIN.test(namespace));
}

/** The optional metadata fields, each kept only when it has the right type. */
function optionalMeta(m: Record<string, unknown>): Omit<ObjectMeta, 'name' | 'namespace'> {
  const { generation, creationTimestamp, labels, uid, resourceVersion } = m;
  return {
    ...(typeof generation === 'number' ? { generation } : {}),
    ...(typeof creationTimestamp === 'string' ? { creationTimestamp } : {}),
    ...(typeof uid === 'string' ? { uid } : {}),
    ...(typeof resourceVersion === 'string' ? { resourceVersion } : {}),
    ...(labels && typeof labels === 'object' ? { labels: labels as Record<string, string> } : {}),
  };
}

function parseMeta(m: unknown): ObjectMeta | string {
  if (!m || typeof m !== 'object') return 'metadata is required';
  const fields = m as Record<string, unknown>;
  const { name, namespace } = fields;
  if (!validName(name)) return 'metadata.name must be a DNS subdomain name';
  if (!validNamespace(namespace)) return 'metadata.namespace must be a DNS label';
  return { name, namespace: namespace ?? 'default', ...optionalMeta(fields) };
}

/** data (base64) and stringData, merged as the API server does (stringData wins). */
export function secretValues(data: unknown, stringData: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((data as Record<string, unknown> | undefined) ?? {})) {
    if (typeof v === 'string') out[k] = Buffer.from(v, 'base64').toString('utf8');
  }
  for (const [k, v] of Object.entries((stringData as Record<string, unknown> | undefined) ?? {})) {
    if (typeof v === 'string') out[k] = v;
  }
  return out;
}

function parseSecret(obj: Record<string, unknown>, meta: ObjectMeta, at: { file: string; document: number }): SecretObject {
  return { kind: 'Secret', metadata: meta, values: secretValues(obj.data, obj.stringData), origin: at };
}

function positionOf(ctx: DocContext, path: string): { line?: number; column?: number } {
  const segs = path.split('/').filter(Boolean).map((s) => (/^\d+$/.test(s) ? Number(s) : s));
  for (let n = segs.length; n >= 0; n--) {
    const node = ctx.doc.getIn(segs.slice(0, n), true) as { range?: [number, number, number] } | undefined;
    if (node?.range) {
      const pos = ctx.lines.linePos(node.range[0]);
      return { line: pos.line, column: pos.col };
    }
  }
  return {};
}
