import { PortcullisError } from '../errors.js';

/** Exit codes shared by every command. */
export const EXIT = { OK: 0, DENY: 1, TAMPERED: 1, USAGE: 2 } as const;

export function usageError(message: string): PortcullisError {
  return new PortcullisError('USAGE', message);
}

export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

export const STDIO: Io = {
  out: (s) => process.stdout.write(s.endsWith('\n') ? s : s + '\n'),
  err: (s) => process.stderr.write(s.endsWith('\n') ? s : s + '\n'),
};

export interface Command {
  summary: string;
  help: string;
  run(args: string[], io: Io): Promise<number>;
}
