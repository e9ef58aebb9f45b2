/**
 * Builds the Go conformance client (test/conformance, its own Go module) once per content: the
 * binary lands in ${PORTCULLIS_CACHE:-${XDG_CACHE_HOME:-~/.cache}/portcullis}/bin/conformance-<hash>,
 * where the hash covers go.mod, go.sum, every *.go file and the Go version, so reruns reuse it
 * and any change rebuilds. Concurrent builders each write a temporary file and rename it.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** test/conformance in the source tree (this file runs from dist/test/conformance). */
export const SOURCE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/conformance');
export const REPO_ROOT = path.resolve(SOURCE_DIR, '../..');

function cacheDir(): string {
  const explicit = process.env['PORTCULLIS_CACHE'];
  if (explicit) return explicit;
  return path.join(process.env['XDG_CACHE_HOME'] || path.join(os.homedir(), '.cache'), 'portcullis');
}

function executable(p: string): boolean {
  try {
    accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** The go command: from PATH, else the usual /usr/local/go install (as test/tools/build.sh does). */
export function findGo(): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (dir && executable(path.join(dir, 'go'))) return path.join(dir, 'go');
  }
  return executable('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : undefined;
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, out }));
  });
}

function contentHash(goVersion: string, dir: string): string {
  const h = createHash('sha256').update(goVersion);
  const files = readdirSync(dir)
    .filter((f) => f === 'go.mod' || f === 'go.sum' || f.endsWith('.go'))
    .sort();
  for (const f of files) h.update(`\0${f}\0`).update(readFileSync(path.join(dir, f)));
  return h.digest('hex').slice(0, 16);
}

export interface BuiltBinary {
  path: string;
  /** Build wall time in seconds; 0 when the cached binary was reused. */
  buildSeconds: number;
}

export async function ensureConformanceBinary(go: string): Promise<BuiltBinary> {
  return ensureGoBinary(go, SOURCE_DIR, 'conformance');
}

/** The same content-hashed build and cache for another Go module of the tests (bin/<name>-<hash>). */
export async function ensureGoBinary(go: string, sourceDir: string, name: string): Promise<BuiltBinary> {
  const env = { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=readonly' };
  const version = await run(go, ['env', 'GOVERSION'], sourceDir, env);
  if (version.code !== 0) throw new Error(`go env GOVERSION failed: ${version.out}`);
  const bin = path.join(cacheDir(), 'bin', `${name}-${contentHash(version.out.trim(), sourceDir)}`);
  if (existsSync(bin)) return { path: bin, buildSeconds: 0 };
  mkdirSync(path.dirname(bin), { recursive: true });
  const tmp = `${bin}.tmp.${process.pid}`;
  const started = process.hrtime.bigint();
  const built = await run(go, ['build', '-trimpath', '-ldflags=-s -w', '-o', tmp, '.'], sourceDir, env);
  if (built.code !== 0) {
    rmSync(tmp, { force: true });
    throw new Error(`go build of ${path.relative(REPO_ROOT, sourceDir)} failed:\n${built.out}`);
  }
  renameSync(tmp, bin);
  return { path: bin, buildSeconds: Number(process.hrtime.bigint() - started) / 1e9 };
}
