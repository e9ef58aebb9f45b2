/** A benchmark result table: printed aligned on the terminal and as Markdown for docs/. */

export interface Table {
  title: string;
  headers: string[];
  rows: string[][];
  /** Lines printed under the table (machine state, caveats). */
  notes?: string[];
}

export function formatText(t: Table): string {
  const widths = t.headers.map((h, i) => Math.max(h.length, ...t.rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  const out = [`== ${t.title}`, line(t.headers), widths.map((w) => '-'.repeat(w)).join('  '), ...t.rows.map(line)];
  for (const n of t.notes ?? []) out.push(`   ${n}`);
  return out.join('\n');
}

export function formatMarkdown(t: Table): string {
  const esc = (c: string): string => c.replace(/\|/g, '\\|');
  const out = [`### ${t.title}`, '', `| ${t.headers.map(esc).join(' | ')} |`, `| ${t.headers.map(() => '---').join(' | ')} |`];
  for (const r of t.rows) out.push(`| ${r.map(esc).join(' | ')} |`);
  for (const n of t.notes ?? []) out.push('', n);
  return out.join('\n');
}

/** Fixed-precision number for tables; '–' when absent. */
export function fmt(n: number | undefined, digits = 1): string {
  if (n === undefined || !Number.isFinite(n)) return '–';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** Percentile of an ascending-sorted array (nearest rank). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] ?? NaN;
}
