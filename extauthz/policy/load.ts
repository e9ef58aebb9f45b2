/**
 * Standalone policy source: a folder of multi-document YAML files holding the same objects a user
 * would `kubectl apply` (Tenant, ApiPolicy, v1 Secrets with API-key hashes or revocation lists, and
 * v1 ConfigMaps with revocation lists). Every problem is
 * collected with its file, document, field path and line, so one run reports them all.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Lexer, LineCounter, parseAllDocuments, type Document } from 'yaml';
import { PolicyError } from '../errors.js';
import { API_VERSION, type ApiPolicyObject, type ConfigMapObject, type ObjectMeta, type PolicySources, type SecretObject, type TenantObject } from './model.js';
import { SchemaValidator } from './validate-schema.js';

export interface LoadResult {
  sources: PolicySources;
  problems: PolicyError[];
  /** Documents that are not Portcullis objects (Namespaces, Services…), skipped. */
  skipped: string[];
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/**
 * Policy authors are semi-trusted: a file may be hostile. Every bound is checked before the
 * expensive step it protects (the yaml library's parser is roughly linear but slow, ~1 MB/s, and
 * its nesting and aliases can multiply work), and every violation is a POLICY_YAML problem naming
 * the file and document, never an exception out of the loader.
 */
export const YAML_LIMITS = {
  /** A Kubernetes object is at most ~1.5 MiB in etcd; a policy file is a few KiB. */
  fileBytes: 1024 * 1024,
  documentBytes: 512 * 1024,
  documentsPerFile: 500,
  /** Aliases resolved per document (the yaml library's maxAliasCount): billion laughs. */
  aliases: 100,
  /** Collection nesting; a policy needs about 10. */
  depth: 64,
  folderFiles: 1000,
  folderBytes: 16 * 1024 * 1024,
} as const;

/** Policy test suites (portcullis test): never read as policies. */
const TEST_SUITE = /\.test\.ya?ml$/;

/**
 * The YAML files of a folder (recursively), in a stable order; test suites (*.test.yaml) only when
 * asked for. The listing stops one file past the folder limit: that is enough to refuse the
 * folder, and a folder of millions of files costs no more memory than one at the limit.
 */
export function policyFiles(dir: string, opts: { suites?: boolean } = {}, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (out.length > YAML_LIMITS.folderFiles) break;
    if (entry.name.startsWith('.')) continue;
    const full = join(dir, entry.name);
    if (entry.isDirectory()) policyFiles(full, opts, out);
    else if (/\.ya?ml$/.test(entry.name) && (opts.suites === true || !TEST_SUITE.test(entry.name))) out.push(full);
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
  const over = folderLimitProblem(dir, files);
  if (over) {
    result.problems.push(over);
    return result;
  }
  for (const file of files) loadFile(file, relative(process.cwd(), file) || file, validator, result);
  return result;
}

/**
 * The folder-level limits (file count, total bytes), checked on the listing and the files' sizes
 * before any file is read: validate, check, serve's first load and every watched reload share
 * this one check. Undefined: within the limits.
 */
export function folderLimitProblem(dir: string, files: readonly string[]): PolicyError | undefined {
  if (files.length > YAML_LIMITS.folderFiles) {
    return new PolicyError('POLICY_YAML', `the policy folder holds more than the limit of ${YAML_LIMITS.folderFiles} YAML files`, { file: dir });
  }
  let bytes = 0;
  for (const file of files) bytes += sizeOf(file);
  if (bytes <= YAML_LIMITS.folderBytes) return undefined;
  return new PolicyError('POLICY_YAML', `the policy folder holds ${bytes} bytes of YAML, more than the limit of ${YAML_LIMITS.folderBytes}`, { file: dir });
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0; // unreadable: loadFile reports it
  }
}

/** Reads, parses and validates one policy file into `result` (the folder source reloads changed files only). */
export function loadFile(path: string, display: string, validator: SchemaValidator, result: LoadResult): void {
  let text: string;
  try {
    const size = statSync(path).size;
    if (size > YAML_LIMITS.fileBytes) throw new Error(`larger than ${YAML_LIMITS.fileBytes} bytes`);
    text = readFileSync(path, 'utf8');
  } catch (err) {
    result.problems.push(new PolicyError('POLICY_YAML', `cannot read file: ${(err as Error).message}`, { file: display }));
    return;
  }
  loadText(text, display, validator, result);
}

/** Parses and validates the documents of one YAML text into `result`; never throws for its content. */
export function loadText(text: string, file: string, validator: SchemaValidator, result: LoadResult): void {
  const tooBig = Buffer.byteLength(text, 'utf8') > YAML_LIMITS.fileBytes ? `larger than ${YAML_LIMITS.fileBytes} bytes` : undefined;
  const shape = tooBig ? { message: tooBig, document: 1 } : preScan(text);
  if (shape) {
    result.problems.push(new PolicyError('POLICY_YAML', shape.message, { file, document: shape.document }));
    return;
  }
  const lines = new LineCounter();
  let docs: Document[];
  try {
    const parsed = parseAllDocuments(text, { lineCounter: lines, uniqueKeys: true });
    docs = Array.isArray(parsed) ? parsed : [parsed as unknown as Document];
  } catch (err) {
    result.problems.push(new PolicyError('POLICY_YAML', `YAML cannot be parsed: ${(err as Error).message}`, { file }, { cause: err }));
    return;
  }
  docs.forEach((doc, i) => loadDocument(doc, { doc, lines, file, document: i + 1 }, validator, result));
}

function loadDocument(doc: Document, ctx: DocContext, validator: SchemaValidator, result: LoadResult): void {
  const at = docAt(ctx);
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = ctx.lines.linePos(e.pos[0]);
    result.problems.push(new PolicyError('POLICY_YAML', e.message.split('\n')[0] ?? 'invalid YAML', { ...at, line: pos.line, column: pos.col }));
    return;
  }
  const range = doc.range;
  if (range && range[2] - range[0] > YAML_LIMITS.documentBytes) {
    result.problems.push(new PolicyError('POLICY_YAML', `document larger than ${YAML_LIMITS.documentBytes} bytes`, at));
    return;
  }
  const value = documentValue(doc, at, result);
  if (value === null || value === undefined) return;
  loadObject(value, ctx, validator, result);
}

/** The document as plain data, or undefined with a POLICY_YAML problem (aliases, nesting). */
function documentValue(doc: Document, at: { file: string; document: number }, result: LoadResult): unknown {
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: YAML_LIMITS.aliases });
  } catch (err) {
    // The yaml library throws a ReferenceError for excessive aliasing (billion laughs).
    const message = /alias/i.test((err as Error).message) ? `more aliases than the limit of ${YAML_LIMITS.aliases} (resource exhaustion)` : `YAML cannot be read: ${(err as Error).message}`;
    result.problems.push(new PolicyError('POLICY_YAML', message, at, { cause: err }));
    return undefined;
  }
  if (depthOf(value) > YAML_LIMITS.depth) {
    result.problems.push(new PolicyError('POLICY_YAML', `nesting deeper than ${YAML_LIMITS.depth} levels`, at));
    return undefined;
  }
  return value;
}

/** Nesting depth of plain data, iteratively (a hostile document must not exhaust the stack). */
function depthOf(root: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[root, 0]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d + 1 > max) max = d + 1;
    if (max > YAML_LIMITS.depth) return max;
    for (const child of Object.values(v as Record<string, unknown>)) stack.push([child, d + 1]);
  }
  return max;
}

/**
 * Cheap bounds before the parser runs, on the yaml library's own lexer (no hand-written YAML
 * scanning): flow nesting (`[[[[…`, which the parser handles slowly) and the document count,
 * stopping at the first violation.
 */
function preScan(text: string): { message: string; document: number } | undefined {
  const scan = { depth: 0, document: 1, content: false };
  for (const token of new Lexer().lex(text)) {
    const problem = scanToken(token, scan);
    if (problem) return { message: problem, document: scan.document };
  }
  return undefined;
}

// Lexer tokens: flow indicators, document markers, and control characters that start scalars.
function scanToken(token: string, scan: { depth: number; document: number; content: boolean }): string | undefined {
  if (token === '[' || token === '{') return ++scan.depth > YAML_LIMITS.depth ? `flow nesting deeper than ${YAML_LIMITS.depth} levels` : undefined;
  if (token === ']' || token === '}') scan.depth = Math.max(0, scan.depth - 1);
  else if (token === '---' || token === '...') {
    if (scan.content) scan.document++;
    scan.content = false;
    if (scan.document > YAML_LIMITS.documentsPerFile) return `more than ${YAML_LIMITS.documentsPerFile} documents`;
  } else if (isContent(token)) scan.content = true;
  return undefined;
}

function isContent(token: string): boolean {
  return token.trim() !== '' && !token.startsWith('#') && !/^[\u0000-\u001f]$/.test(token);
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
  else if (apiVersion === 'v1' && kind === 'ConfigMap') (result.sources.configMaps ??= []).push(parseConfigMap(obj, meta, at));
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

/** A ConfigMap's string data (revocation lists); binaryData is not read. */
export function configMapValues(data: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries((data as Record<string, unknown> | undefined) ?? {})) if (typeof v === 'string') out[k] = v;
  return out;
}

function parseConfigMap(obj: Record<string, unknown>, meta: ObjectMeta, at: { file: string; document: number }): ConfigMapObject {
  return { kind: 'ConfigMap', metadata: meta, values: configMapValues(obj.data), origin: at };
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
