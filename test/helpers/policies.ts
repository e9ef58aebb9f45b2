/** Policy sources from YAML strings: compiled in memory, or written to a temporary folder. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { compileSources, type CompileResult } from '../../extauthz/policy/store.js';
import { loadText, type LoadResult } from '../../extauthz/policy/load.js';
import type { PolicyError } from '../../extauthz/errors.js';
import { JwksCache } from '../../extauthz/policy/tenants.js';
import { SchemaValidator } from '../../extauthz/policy/validate-schema.js';

let validator: SchemaValidator | undefined;

/** One validator for all tests of a process: compiling the CRD schemas is the slow part. */
export function sharedValidator(): SchemaValidator {
  validator ??= new SchemaValidator();
  return validator;
}

export function loadYaml(files: Record<string, string>): LoadResult {
  const result: LoadResult = { sources: { tenants: [], policies: [], secrets: [] }, problems: [], skipped: [] };
  for (const [file, text] of Object.entries(files)) loadText(text, file, sharedValidator(), result);
  return result;
}

export type Compiled = CompileResult & { loadProblems: PolicyError[] };

/** Loads and compiles YAML texts (file name → text) as a policy folder would be. */
export function compileYaml(files: Record<string, string> | string, jwks: JwksCache = new JwksCache()): Compiled {
  const loaded = loadYaml(typeof files === 'string' ? { 'policy.yaml': files } : files);
  const result = compileSources(loaded.sources, { jwks });
  return { ...result, problems: [...loaded.problems, ...result.problems], loadProblems: loaded.problems };
}

/** Like compileYaml, and fails with every problem listed when anything is wrong. */
export function compileValid(files: Record<string, string> | string, jwks?: JwksCache): Compiled {
  const c = compileYaml(files, jwks);
  if (c.problems.length > 0) throw new Error(`unexpected policy problems:\n${c.problems.map((p) => p.format()).join('\n')}`);
  return c;
}

export interface TempDir {
  dir: string;
  write(name: string, text: string): void;
  remove(): void;
}

export function tempPolicyDir(files: Record<string, string> = {}): TempDir {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-test-'));
  const t: TempDir = {
    dir,
    write: (name, text) => {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), text);
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
  for (const [name, text] of Object.entries(files)) t.write(name, text);
  return t;
}
