/**
 * Watches a policy folder. A change re-reads only the files whose stat changed, hands the full
 * object set to the policy store (store.ts), which recompiles only the objects that changed, and
 * swaps the snapshot atomically. A broken object keeps its last good version serving while the
 * problems name it — the same model as the Kubernetes source. A file that no longer parses keeps
 * every object it held before (they cannot be told from deletions), each reported with the
 * file's problem.
 */
import { readFileSync, realpathSync, statSync, watch, type FSWatcher } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { PolicyError } from '../errors.js';
import { folderLimitProblem, loadFile, loadPolicyDir, policyFiles, type LoadResult } from './load.js';
import { objectKey, type TenantObject } from './model.js';
import { REVOCATION_LIMITS } from './revocation.js';
import type { PolicySnapshot } from './snapshot.js';
import { compileSources, PolicyStore, type ApplyResult, type CompileResult, type StoreInput } from './store.js';
import { JwksCache, type RevocationFile } from './tenants.js';
import { SchemaValidator } from './validate-schema.js';

export interface SourceEvents {
  onSnapshot?: (snapshot: PolicySnapshot) => void;
  /** Problems after a reload (objects refused; those with a last good version keep serving it). */
  onRejected?: (problems: readonly PolicyError[]) => void;
  onWarnings?: (warnings: readonly PolicyError[]) => void;
  /** The object set each load hands the store (serve --workers forwards it to every worker). */
  onInput?: (input: StoreInput) => void;
}

/**
 * One revocation file (tenant spec.revocation.file), read with its bounds: a relative path that
 * stays inside the policy folder (no .., no absolute path, no symlink out of it), at most
 * REVOCATION_LIMITS.bytes. Problems are messages without the file's content.
 */
export function readRevocationFile(dir: string, path: string): RevocationFile {
  if (path.startsWith('/') || path.split('/').some((s) => s === '..' || s === '')) return { error: 'must be a relative path inside the policy folder, without ..' };
  try {
    const root = realpathSync(dir);
    const full = realpathSync(join(dir, path));
    if (!full.startsWith(root + sep)) return { error: 'resolves outside the policy folder' };
    const size = statSync(full).size;
    if (size > REVOCATION_LIMITS.bytes) return { error: `larger than ${REVOCATION_LIMITS.bytes} bytes` };
    return { text: readFileSync(full, 'utf8') };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { error: code === 'ENOENT' ? 'file not found' : `cannot be read (${code ?? 'error'})` };
  }
}

/** The revocation files the tenants name, read now (a watched change re-reads them all; each is bounded). */
export function revocationFiles(dir: string, tenants: readonly TenantObject[]): Map<string, RevocationFile> {
  const files = new Map<string, RevocationFile>();
  for (const t of tenants) {
    const path = t.spec.revocation?.file;
    if (path !== undefined && !files.has(path)) files.set(path, readRevocationFile(dir, path));
  }
  return files;
}

/** Loads and compiles a folder once (validate, check): nothing to fall back to. */
export function compileFolder(dir: string, jwks: JwksCache = new JwksCache(), validator: SchemaValidator = new SchemaValidator()): CompileResult & { loadProblems: PolicyError[] } {
  const loaded = loadPolicyDir(dir, validator);
  const result = compileSources({ ...loaded.sources, files: revocationFiles(dir, loaded.sources.tenants) }, { jwks });
  return { ...result, problems: [...loaded.problems, ...result.problems], loadProblems: loaded.problems };
}

interface FileState {
  stamp: string;
  result: LoadResult;
  /** "Kind namespace/name" of the objects the file held when it last loaded without a file-level problem. */
  lastGoodObjects: string[];
}

type Input = StoreInput & { broken: Map<string, PolicyError[]>; fileProblems: PolicyError[] };

function stampOf(path: string): string {
  const s = statSync(path, { bigint: true });
  return `${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
}

function idsOf(r: LoadResult): string[] {
  return [...r.sources.tenants.map((t) => `Tenant ${objectKey(t)}`), ...r.sources.policies.map((p) => `ApiPolicy ${objectKey(p)}`)];
}

export class FolderPolicySource {
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly store = new PolicyStore({ jwks: new JwksCache() });
  private readonly validator = new SchemaValidator();
  private readonly files = new Map<string, FileState>();

  constructor(
    readonly dir: string,
    private readonly events: SourceEvents = {},
    private readonly debounceMs = 200,
  ) {}

  get snapshot(): PolicySnapshot | undefined {
    return this.store.snapshot;
  }

  /** Loads now, synchronously (startup: no Check is in flight yet); returns the errors. */
  reload(): readonly PolicyError[] {
    const { input, fileProblems, unreadable } = this.read();
    // No folder at all before anything loaded: stay NOT_SERVING rather than serve an empty set.
    if (unreadable && !this.store.snapshot) return this.reportOnly(fileProblems);
    this.events.onInput?.(input);
    return this.report(this.store.apply(input), fileProblems);
  }

  private reportOnly(problems: PolicyError[]): readonly PolicyError[] {
    this.events.onRejected?.(problems);
    return problems;
  }

  /** Loads in slices that yield to the event loop (watched changes while Checks are served). */
  async reloadAsync(): Promise<readonly PolicyError[]> {
    const { input, fileProblems, unreadable } = this.read();
    if (unreadable && !this.store.snapshot) return this.reportOnly(fileProblems);
    this.events.onInput?.(input);
    return this.report(await this.store.applyAsync(input), fileProblems);
  }

  private report(r: ApplyResult, fileProblems: readonly PolicyError[]): readonly PolicyError[] {
    const problems = [...fileProblems, ...r.problems];
    if (r.changed) this.events.onSnapshot?.(r.snapshot);
    if (problems.length > 0) this.events.onRejected?.(problems);
    if (r.warnings.length > 0) this.events.onWarnings?.(r.warnings);
    return problems;
  }

  /** The folder as store input: unchanged files from cache, broken objects marked for their last good version. */
  private read(): { input: Input; fileProblems: PolicyError[]; unreadable: boolean } {
    const input: Input = { tenants: [], policies: [], secrets: [], configMaps: [], broken: new Map(), fileProblems: [] };
    let paths: string[];
    let problem: PolicyError | undefined;
    try {
      paths = policyFiles(this.dir);
      // Over a folder-level limit nothing is read: the same refusal validate gives, and the
      // objects loaded before keep serving at their last good version.
      problem = folderLimitProblem(this.dir, paths);
    } catch (err) {
      paths = [];
      problem = new PolicyError('POLICY_INVALID', `cannot read policy folder: ${(err as Error).message}`, { file: this.dir });
    }
    if (problem) {
      // The folder itself is gone, unreadable or over its limits: keep everything, report why.
      input.fileProblems.push(problem);
      for (const f of this.files.values()) for (const id of idsOf(f.result)) input.broken.set(id, [problem]);
      return { input, fileProblems: input.fileProblems, unreadable: true };
    }
    const listed = new Set(paths);
    for (const path of paths) this.readFile(path, input);
    for (const path of [...this.files.keys()]) if (!listed.has(path)) this.files.delete(path);
    input.files = revocationFiles(this.dir, input.tenants);
    return { input, fileProblems: input.fileProblems, unreadable: false };
  }

  private readFile(path: string, input: Input): void {
    let stamp: string;
    try {
      stamp = stampOf(path);
    } catch {
      return; // removed between listing and stat: a deletion
    }
    const prev = this.files.get(path);
    let state = prev;
    if (!prev || prev.stamp !== stamp) {
      const result: LoadResult = { sources: { tenants: [], policies: [], secrets: [] }, problems: [], skipped: [] };
      loadFile(path, relative(process.cwd(), path) || path, this.validator, result);
      const fileLevel = result.problems.some((p) => p.location.object === undefined);
      state = { stamp, result, lastGoodObjects: fileLevel ? (prev?.lastGoodObjects ?? []) : idsOf(result) };
      this.files.set(path, state);
    }
    this.add(state!, input);
  }

  private add(f: FileState, input: Input): void {
    const { sources, problems } = f.result;
    input.tenants.push(...sources.tenants);
    input.policies.push(...sources.policies);
    input.secrets.push(...sources.secrets);
    if (sources.configMaps) input.configMaps!.push(...sources.configMaps);
    const fileLevel = problems.filter((p) => p.location.object === undefined);
    input.fileProblems.push(...fileLevel);
    for (const p of problems) {
      if (p.location.object !== undefined) input.broken.set(p.location.object, [...(input.broken.get(p.location.object) ?? []), p]);
    }
    if (fileLevel.length === 0) return;
    // Objects the file held before it stopped parsing: kept at their last good version.
    const present = new Set(idsOf(f.result));
    for (const id of f.lastGoodObjects) if (!present.has(id) && !input.broken.has(id)) input.broken.set(id, fileLevel);
  }

  watch(): void {
    this.watcher = watch(this.dir, { recursive: true }, () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => void this.reloadAsync(), this.debounceMs);
    });
  }

  close(): void {
    clearTimeout(this.timer);
    this.watcher?.close();
  }
}
