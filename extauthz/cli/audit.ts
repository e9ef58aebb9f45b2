/** `portcullis audit verify|show`: check an audit trail's integrity, or summarise it. */
import { parseArgs } from 'node:util';
import { formatSummary, summarize } from '../audit/show.js';
import { loadJwks, verifyFiles } from '../audit/verify-files.js';
import type { VerifyReport } from '../audit/verify.js';
import { EXIT, usageError, type Command, type Io } from './usage.js';

const VERIFY_HELP = `Usage: portcullis audit verify FILE... --jwks FILE|URL [--require-sealed] [--json]

Replays the hash chain of every record and checks every checkpoint signature against the
JWKS (a file, or the service's http://HOST:PORT/.well-known/audit-jwks.json). Give rotated
files oldest first: audit.log.* audit.log.

Reports the first bad entry as FILE:LINE and a kind: edited, inserted, deleted, reordered,
truncated, bad-signature, unknown-key. Records after a chain's last checkpoint cannot be
proven: they are reported as an unverified tail (a warning; with --require-sealed, a failure,
as is a chain without its final checkpoint, for logs of processes that stopped cleanly).

Exit status: 0 intact, 1 tampered (or unverified with --require-sealed), 2 usage error.`;

const SHOW_HELP = `Usage: portcullis audit show FILE... [--json]

Prints counts of decision records by decision, error code, tenant, rule and hour, masking
outcomes, and (when shadow policies or rules ran) the would-be denials by policy and rule, by
tenant and by code, with how many of them the enforcing decision allowed. It does not verify:
run audit verify for that.`;

function formatReport(r: VerifyReport): string {
  const lines = r.chains.map((c) => `chain ${c.chain}: ${c.records} records, verified through seq ${c.verifiedThrough} of ${c.head}${c.sealed ? ', sealed' : ''}`);
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  lines.push(r.problem ? `TAMPERED ${r.problem.file}:${r.problem.line}: ${r.problem.kind}: ${r.problem.message}` : 'OK: intact');
  return lines.join('\n');
}

async function verify(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { jwks: { type: 'string' }, 'require-sealed': { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: true });
  if (values.help) {
    io.out(VERIFY_HELP);
    return EXIT.OK;
  }
  if (positionals.length === 0) throw usageError('audit verify needs at least one FILE');
  if (!values.jwks) throw usageError('audit verify needs --jwks FILE|URL: the public keys you trust');
  let keys;
  try {
    keys = await loadJwks(values.jwks);
  } catch (err) {
    throw usageError(`cannot load --jwks ${values.jwks}: ${(err as Error).message}`);
  }
  let report: VerifyReport;
  try {
    report = await verifyFiles(positionals, { keys, requireSealed: values['require-sealed'] === true });
  } catch (err) {
    throw usageError(`cannot read audit files: ${(err as Error).message}`);
  }
  io.out(values.json ? JSON.stringify(report, null, 2) : formatReport(report));
  return report.intact ? EXIT.OK : EXIT.TAMPERED;
}

async function show(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({ args, options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, strict: true, allowPositionals: true });
  if (values.help) {
    io.out(SHOW_HELP);
    return EXIT.OK;
  }
  if (positionals.length === 0) throw usageError('audit show needs at least one FILE');
  const s = await summarize(positionals).catch((err: unknown) => {
    throw usageError(`cannot read audit files: ${(err as Error).message}`);
  });
  io.out(values.json ? JSON.stringify(s, null, 2) : formatSummary(s));
  return EXIT.OK;
}

const SUBCOMMANDS: Record<string, (args: string[], io: Io) => Promise<number>> = { verify, show };

export const AUDIT: Command = {
  summary: 'verify an audit trail (hash chain, signed checkpoints) or summarise it',
  help: `Usage: portcullis audit verify FILE... --jwks FILE|URL [--require-sealed]
       portcullis audit show FILE...

Run portcullis audit verify --help or portcullis audit show --help for details.`,
  async run(args, io) {
    const [sub, ...rest] = args;
    if (sub === undefined || sub === '--help' || sub === '-h') {
      io.out(AUDIT.help);
      return sub === undefined ? EXIT.USAGE : EXIT.OK;
    }
    const run = SUBCOMMANDS[sub];
    if (!run) throw usageError(`unknown audit subcommand "${sub}" (verify, show)`);
    return run(rest, io);
  },
};
