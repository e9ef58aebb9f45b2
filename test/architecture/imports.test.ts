/**
 * The module graph as the design wants it: no import cycles among the product's modules (type-only
 * imports included: a type cycle is a design cycle), and the operator reaching into extauthz/
 * only for the policy engine — never its servers, Kubernetes source, CLI, logger or settings. The
 * imports are read with TypeScript's own preprocessor from the sources.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const PRODUCT = ['extauthz', 'kube', 'operator', 'proto'];

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...sources(p));
    else if (p.endsWith('.ts') && !p.endsWith('.d.ts') && !p.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

/** file (relative to the root) → the product files it imports. */
function graph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const file of PRODUCT.flatMap((d) => sources(join(ROOT, d)))) {
    const imports = ts.preProcessFile(readFileSync(file, 'utf8'), true, true).importedFiles.map((i) => i.fileName).filter((s) => s.startsWith('.'));
    g.set(relative(ROOT, file), imports.map((s) => relative(ROOT, resolve(dirname(file), s.replace(/\.js$/, '.ts')))));
  }
  return g;
}

/** Strongly connected components with more than one file (Tarjan), plus self-imports. */
export function cycles(g: ReadonlyMap<string, readonly string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const scc: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1 || (g.get(v) ?? []).includes(v)) found.push(scc.sort());
  };
  for (const v of g.keys()) if (!index.has(v)) visit(v);
  return found;
}

function reachable(g: ReadonlyMap<string, readonly string[]>, from: readonly string[]): Set<string> {
  const seen = new Set<string>();
  const todo = [...from];
  while (todo.length > 0) {
    const v = todo.pop()!;
    if (seen.has(v)) continue;
    seen.add(v);
    todo.push(...(g.get(v) ?? []));
  }
  return seen;
}

/**
 * extauthz/ modules that are the service, not the policy engine. The identity pattern grammars
 * (pipeline/identify/dn.ts, dns-name.ts, spiffe.ts) import nothing else and are compiled by the
 * engine's tenants.ts, so they count as engine.
 */
const ENGINE_GRAMMARS = /^extauthz\/pipeline\/identify\/(dn|dns-name|spiffe)\.ts$/;
const NOT_ENGINE = [/^extauthz\/(server|kube|cli|pipeline|audit|extproc)\//, /^extauthz\/(logger|config)\.ts$/];

describe('module graph', () => {
  const g = graph();

  test('the cycle finder finds cycles (self-check)', () => {
    const sample = new Map([['a', ['b']], ['b', ['c']], ['c', ['a']], ['d', ['d']], ['e', ['a']]]);
    assert.deepEqual(cycles(sample), [['a', 'b', 'c'], ['d']]);
  });

  test('the sources were read', () => {
    assert.ok(g.size > 50, `${g.size} files`);
    assert.ok(g.get('operator/manager.ts')?.includes('kube/informer.ts'));
  });

  test('no import cycles among extauthz, kube, operator and proto modules', () => {
    assert.deepEqual(cycles(g), []);
  });

  for (const [name, roots] of [['operator', [...g.keys()].filter((f) => f.startsWith('operator/'))], ['kube (shared by both)', [...g.keys()].filter((f) => f.startsWith('kube/'))]] as const) {
    test(`${name} reaches extauthz/ only for the policy engine`, () => {
      const bad = [...reachable(g, roots)].filter((f) => !ENGINE_GRAMMARS.test(f) && NOT_ENGINE.some((re) => re.test(f)));
      assert.deepEqual(bad, []);
    });
  }
});
