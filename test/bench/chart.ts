/**
 * docs/benchmarks.png: RPS and p99 latency per concurrency level for each server, drawn by
 * gnuplot (Debian gnuplot-nox, installed by build-tools.sh) from a data file written here.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LoadResult } from './load.js';

export function gnuplotScript(results: LoadResult[], dataDir: string, out: string): string {
  const servers = [...new Set(results.map((r) => r.server))];
  const files = servers.map((s, i) => {
    const f = join(dataDir, `s${i}.dat`);
    writeFileSync(f, results.filter((r) => r.server === s && !r.error).map((r) => `${r.concurrency} ${r.rps} ${r.p99ms}`).join('\n') + '\n');
    return { s, f };
  });
  const plot = (col: number): string => files.map(({ s, f }) => `'${f}' using 1:${col} with linespoints lw 2 pt 7 title '${s}'`).join(', ');
  return [
    `set terminal pngcairo size 1100,450 font 'sans,10' noenhanced`,
    `set output '${out}'`,
    `set multiplot layout 1,2 title 'Envoy ext_authz Check over loopback (ghz), same machine'`,
    `set logscale x 2`, `set grid`, `set key top left`, `set xlabel 'concurrency'`,
    `set ylabel 'requests / s'`, `set title 'Throughput'`, `plot ${plot(2)}`,
    `set ylabel 'p99 latency (ms)'`, `set title 'p99 latency'`, `set logscale y`, `plot ${plot(3)}`,
    `unset multiplot`,
  ].join('\n');
}

/** Writes the PNG; returns a line saying what happened. */
export function writeChart(results: LoadResult[], out: string, gnuplot = 'gnuplot'): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-chart-'));
  try {
    const script = join(dir, 'chart.gp');
    writeFileSync(script, gnuplotScript(results, dir, out));
    const r = spawnSync(gnuplot, [script], { encoding: 'utf8' });
    return r.status === 0 ? `chart written: ${out}` : `chart skipped: gnuplot failed (${(r.stderr || String(r.error)).split('\n')[0]})`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
