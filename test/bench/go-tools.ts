/** The benchmark's Go tools (ghz, the OPA stand-in) and gnuplot, built or found by build-tools.sh. */
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = join(dirname(fileURLToPath(import.meta.url)), '../../../test/bench');

/** NAME=PATH lines of build-tools.sh as a record; a tool that could not be built is absent. */
export function buildTools(): Record<string, string> {
  const r = spawnSync('bash', [join(SRC, 'build-tools.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const tools: Record<string, string> = {};
  for (const line of r.stdout.split('\n')) {
    const m = /^([\w-]+)=(.+)$/.exec(line.trim());
    if (m) tools[m[1]!] = m[2]!;
  }
  return tools;
}

