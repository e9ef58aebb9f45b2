/**
 * Helpers for the chart tests: the helm binary built by test/tools (cached by version), run
 * with private config/cache/data directories so tests never touch the user's Helm setup.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { ensureTools, toolPath } from '../cluster/cluster.js';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** The repository root: the nearest ancestor of this file holding charts/portcullis. */
export function repoRoot(): string {
  let d = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(d, 'charts', 'portcullis', 'Chart.yaml'))) return d;
    const up = path.dirname(d);
    if (up === d) throw new Error('charts/portcullis/Chart.yaml not found above ' + fileURLToPath(import.meta.url));
    d = up;
  }
}

export const CHART = (): string => path.join(repoRoot(), 'charts', 'portcullis');

/** Value sets the tests run: the defaults plus every file in the chart's ci/ folder. */
export function valueSets(): { name: string; files: string[] }[] {
  const ci = path.join(CHART(), 'ci');
  const files = fs.readdirSync(ci).filter((f) => f.endsWith('-values.yaml')).sort();
  return [{ name: 'default', files: [] }, ...files.map((f) => ({ name: f.replace(/-values\.yaml$/, ''), files: [path.join(ci, f)] }))];
}

export const EVERYTHING = (): string => path.join(CHART(), 'ci', 'everything-values.yaml');

/**
 * Resolves the helm binary, building it with test/tools/build.sh when missing. Returns a reason
 * to skip only when it is absent and cannot be built (no Go toolchain); in CI that is an error.
 */
export async function helmOrSkip(): Promise<{ helm: string } | { skip: string }> {
  try {
    await ensureTools(['helm'], (l) => console.error(`[tools] ${l}`));
    return { helm: toolPath('helm') };
  } catch (err) {
    const reason = `helm is not cached and could not be built: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`;
    if (process.env['CI']) throw new Error(reason, { cause: err });
    return { skip: reason };
  }
}

let helmHome: string | undefined;

function helmEnv(): NodeJS.ProcessEnv {
  if (helmHome === undefined) {
    const created = fs.mkdtempSync(path.join(os.tmpdir(), 'portcullis-helm-'));
    process.once('exit', () => fs.rmSync(created, { recursive: true, force: true }));
    helmHome = created;
  }
  const home = helmHome;
  return {
    ...process.env,
    HELM_CONFIG_HOME: path.join(home, 'config'),
    HELM_CACHE_HOME: path.join(home, 'cache'),
    HELM_DATA_HOME: path.join(home, 'data'),
    KUBECONFIG: path.join(home, 'no-cluster.kubeconfig'),
  };
}

/** Runs helm; never throws on a non-zero exit. */
export function runHelm(helm: string, args: string[], kubeconfig?: string): Promise<RunResult> {
  const env = helmEnv();
  if (kubeconfig) env['KUBECONFIG'] = kubeconfig;
  return new Promise((resolve, reject) => {
    // From the repository root, so relative chart paths work as the README writes them.
    const child = spawn(helm, args, { env, cwd: repoRoot(), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (c: string) => (stdout += c));
    child.stderr.setEncoding('utf8').on('data', (c: string) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

/** stderr without Helm's notice that the CRDs are symbolic links to the repository's crds/. */
export function meaningfulStderr(stderr: string): string {
  return stderr
    .split('\n')
    .filter((l) => l.trim() !== '' && !/found symbolic link in path: .*crds\/.*Contents of linked file included and used/.test(l))
    .join('\n');
}

export function valuesArgs(files: string[], sets: string[] = []): string[] {
  return [...files.flatMap((f) => ['-f', f]), ...sets.flatMap((s) => ['--set', s])];
}

/** Renders the chart and parses every document. */
export async function render(helm: string, args: string[]): Promise<K8sObject[]> {
  const r = await runHelm(helm, ['template', 'portcullis', CHART(), '--namespace', 'portcullis-system', ...args]);
  if (r.code !== 0) throw new Error(`helm template failed (exit ${r.code}): ${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}
