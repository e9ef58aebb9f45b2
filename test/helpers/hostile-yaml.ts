/** Hostile policy files: what a semi-trusted policy author could drop into a watched folder. */

/** The YAML "billion laughs": nine levels of nine aliases each (9^9 strings once expanded). */
export function billionLaughs(): string {
  const lines = ['apiVersion: portcullis.io/v1alpha1', 'kind: ApiPolicy', 'metadata: { name: lol, namespace: t }', 'lol:', '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
  let prev = 'a';
  for (const n of 'bcdefghi') {
    lines.push(`  ${n}: &${n} [${Array.from({ length: 9 }, () => `*${prev}`).join(',')}]`);
    prev = n;
  }
  return lines.join('\n') + '\n';
}

export function deepFlow(depth: number): string {
  return `apiVersion: v1\nkind: ConfigMap\ndata: ${'['.repeat(depth)}${']'.repeat(depth)}\n`;
}

export function deepBlock(depth: number): string {
  return Array.from({ length: depth }, (_, i) => `${' '.repeat(i)}k:`).join('\n') + `\n${' '.repeat(depth)}v\n`;
}
