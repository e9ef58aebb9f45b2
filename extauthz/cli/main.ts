#!/usr/bin/env node
/** The `portcullis` command line. */
import { fileURLToPath } from 'node:url';
import { realpathSync } from 'node:fs';
import { PortcullisError } from '../errors.js';
import { AUDIT } from './audit.js';
import { CHECK, EXPLAIN } from './check.js';
import { SERVE } from './serve.js';
import { EXIT, STDIO, type Command, type Io } from './usage.js';
import { VALIDATE } from './validate.js';
import { TEST } from './test.js';

export const COMMANDS: Record<string, Command> = {
  serve: SERVE,
  check: CHECK,
  explain: EXPLAIN,
  validate: VALIDATE,
  test: TEST,
  audit: AUDIT,
};

export function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `Usage: portcullis COMMAND [options]\n\nCommands:\n${lines.join('\n')}\n\nRun portcullis COMMAND --help for the options of a command.`;
}

export async function main(argv: string[], io: Io = STDIO): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.out(mainHelp());
    return name === undefined ? EXIT.USAGE : EXIT.OK;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.err(`portcullis: unknown command "${name}"\n\n${mainHelp()}`);
    return EXIT.USAGE;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    const code = err instanceof PortcullisError ? err.code : 'USAGE';
    const message = err instanceof Error ? err.message : String(err);
    io.err(`portcullis ${name}: ${code}: ${message}`);
    return EXIT.USAGE;
  }
}

function isEntryPoint(): boolean {
  try {
    return realpathSync(process.argv[1] ?? '') === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  process.exitCode = await main(process.argv.slice(2));
}
