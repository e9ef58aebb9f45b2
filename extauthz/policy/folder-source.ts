/**
 * Watches a policy folder: a change recompiles and swaps the snapshot atomically; a broken change
 * keeps the last good snapshot and reports why. Standalone mode is all-or-nothing per reload, so
 * a half-edited folder never serves a partial policy set.
 */
import { watch, type FSWatcher } from 'node:fs';
import type { PolicyError } from '../errors.js';
import { compileSources, type CompileResult } from './compile.js';
import { loadPolicyDir } from './load.js';
import type { PolicySnapshot } from './snapshot.js';
import { JwksCache } from './tenants.js';
import { SchemaValidator } from './validate-schema.js';

export interface SourceEvents {
  onSnapshot?: (snapshot: PolicySnapshot) => void;
  onRejected?: (problems: readonly PolicyError[]) => void;
}

/** Loads and compiles a folder once; `problems` empty means the snapshot is complete. */
export function compileFolder(dir: string, jwks: JwksCache = new JwksCache(), validator: SchemaValidator = new SchemaValidator()): CompileResult & { loadProblems: PolicyError[] } {
  const loaded = loadPolicyDir(dir, validator);
  const result = compileSources(loaded.sources, { jwks });
  return { ...result, problems: [...loaded.problems, ...result.problems], loadProblems: loaded.problems };
}

export class FolderPolicySource {
  private current: PolicySnapshot | undefined;
  private watcher: FSWatcher | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly jwks = new JwksCache();
  private readonly validator = new SchemaValidator();

  constructor(
    readonly dir: string,
    private readonly events: SourceEvents = {},
    private readonly debounceMs = 200,
  ) {}

  get snapshot(): PolicySnapshot | undefined {
    return this.current;
  }

  /** Loads now; returns the problems (empty when the new snapshot is active). */
  reload(): readonly PolicyError[] {
    const result = compileFolder(this.dir, this.jwks, this.validator);
    if (result.problems.length > 0) {
      this.events.onRejected?.(result.problems);
      return result.problems;
    }
    this.current = result.snapshot;
    this.events.onSnapshot?.(result.snapshot);
    return [];
  }

  watch(): void {
    this.watcher = watch(this.dir, { recursive: true }, () => {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.reload(), this.debounceMs);
    });
  }

  close(): void {
    clearTimeout(this.timer);
    this.watcher?.close();
  }
}
