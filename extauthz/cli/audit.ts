/** `portcullis audit verify|show`: check an audit trail's integrity, or summarise it. */
import { parseArgs } from 'node:util';
import { accessReport, reportJson, reportTable } from '../audit/access-report.js';
import { readSubjectKey } from '../audit/keys.js';
import { Pseudonymizer } from '../audit/pseudonym.js';
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

const ACCESS_REPORT_HELP = `Usage: portcullis audit access-report --subject ID --subject-key-file K [--subject-key-file K2]
         --jwks FILE|URL [--format table|json] [--allow-open] FILE...

The citizen's access report: every decision about the data subject ID's records (audit records
whose resource is ID's keyed pseudonym, written by rules with subjectParam) made for someone
other than ID: time, tenant, purpose, legal basis, decision, masks applied, API version and
policy, rule. ID is only hashed with the subject key (--audit-subject-key-file of the service;
give each key in use since a rotation); it is never printed.

Give every audit file of every replica: rotated files are put in order per log (PATH.000001,
…, PATH), and the chains of several replicas may come in any order. Every chain is verified
first (hash chain, checkpoint signatures against --jwks, the links between a replica's chains);
a chain that does not verify (an edited, inserted, deleted or reordered record, a missing
chain-start or predecessor file, a cut tail, a bad signature or unknown key, another subject
key) is named with the reason and its records are marked UNVERIFIED. A chain without its final
checkpoint (a replica still running, or a file cut after a checkpoint) counts as unverified
unless --allow-open is given.

Exit status: 0 complete (every chain verified), 1 incomplete (some chain unverified: the
report says which and why), 2 usage error.`;

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

async function trustedKeys(source: string | undefined): Promise<Awaited<ReturnType<typeof loadJwks>>> {
  if (!source) throw usageError('audit access-report needs --jwks FILE|URL: the public keys you trust');
  try {
    return await loadJwks(source);
  } catch (err) {
    throw usageError(`cannot load --jwks ${source}: ${(err as Error).message}`);
  }
}

async function accessReportCommand(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    options: { subject: { type: 'string' }, 'subject-key-file': { type: 'string', multiple: true }, jwks: { type: 'string' }, format: { type: 'string' }, 'allow-open': { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
    allowPositionals: true,
  });
  if (values.help) {
    io.out(ACCESS_REPORT_HELP);
    return EXIT.OK;
  }
  const format = values.format ?? 'table';
  if (format !== 'table' && format !== 'json') throw usageError('--format must be table or json');
  if (values.subject === undefined || values.subject === '') throw usageError('audit access-report needs --subject ID');
  const keyFiles = values['subject-key-file'] ?? [];
  if (keyFiles.length === 0) throw usageError('audit access-report needs --subject-key-file K (the audit subject key)');
  if (positionals.length === 0) throw usageError('audit access-report needs at least one FILE');
  const pseudonymizers = keyFiles.map((f) => new Pseudonymizer(readSubjectKey(f)));
  const keys = await trustedKeys(values.jwks);
  const report = await accessReport(positionals, { subject: values.subject, pseudonymizers, keys, allowOpen: values['allow-open'] === true }).catch((err: unknown) => {
    throw usageError(`cannot read audit files: ${(err as Error).message}`);
  });
  io.out(format === 'json' ? reportJson(report) : reportTable(report));
  return report.complete ? EXIT.OK : EXIT.TAMPERED;
}

const SUBCOMMANDS: Record<string, (args: string[], io: Io) => Promise<number>> = { verify, show, 'access-report': accessReportCommand };

export const AUDIT: Command = {
  summary: "verify an audit trail (hash chain, signed checkpoints), summarise it, or report a data subject's accesses",
  help: `Usage: portcullis audit verify FILE... --jwks FILE|URL [--require-sealed]
       portcullis audit show FILE...
       portcullis audit access-report --subject ID --subject-key-file K --jwks FILE|URL [--format table|json] FILE...

Run portcullis audit verify --help, portcullis audit show --help or
portcullis audit access-report --help for details.`,
  async run(args, io) {
    const [sub, ...rest] = args;
    if (sub === undefined || sub === '--help' || sub === '-h') {
      io.out(AUDIT.help);
      return sub === undefined ? EXIT.USAGE : EXIT.OK;
    }
    const run = SUBCOMMANDS[sub];
    if (!run) throw usageError(`unknown audit subcommand "${sub}" (verify, show, access-report)`);
    return run(rest, io);
  },
};
