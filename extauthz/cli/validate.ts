/** `portcullis validate DIR`: every problem in a policy folder, one per line. */
import { parseArgs } from 'node:util';
import { compileFolder } from '../policy/folder-source.js';
import { EXIT, usageError, type Command } from './usage.js';

export const VALIDATE: Command = {
  summary: 'validate a policy folder against the CRD schemas, the compiler and the cross-object checks',
  help: `Usage: portcullis validate [--strict] DIR

Reads every .yaml/.yml file under DIR (multi-document), validates Tenants, ApiPolicies and
API-key Secrets against the CRD schemas (including their CEL validations), compiles them
(CEL conditions type-checked, path templates, masks) and checks them against each other:
  errors    tenants whose identities overlap (same JWT issuer and audience, overlapping
            SPIFFE ID or subject patterns, one API key), a host and path claimed by two
            policies, a quota no tenant of the rule defines, an unknown tenant;
  warnings  rules that can never allow (covered by an earlier rule or by a deny rule),
            a quota some tenants of the rule lack.
Errors refuse the object they name (serve keeps its last good version); warnings are printed
and refuse nothing. Each is printed as:
  [warning: ]file#document object path (rule) line column: CODE: message

--strict   treat warnings as errors (exit 2 when there is any).

Exit status: 0 valid, 2 invalid (or warnings with --strict) or usage error.`,
  async run(args, io) {
    const { values, positionals } = parseArgs({ args, options: { help: { type: 'boolean', short: 'h' }, strict: { type: 'boolean' } }, allowPositionals: true, strict: true });
    if (values.help) {
      io.out(VALIDATE.help);
      return EXIT.OK;
    }
    if (positionals.length !== 1) throw usageError('validate takes exactly one folder');
    const result = compileFolder(positionals[0]!);
    for (const p of result.problems) io.err(p.format());
    for (const w of result.warnings) io.err(`warning: ${w.format()}`);
    const failing = result.problems.length + (values.strict ? result.warnings.length : 0);
    if (failing > 0) {
      io.err(`${result.problems.length} error(s), ${result.warnings.length} warning(s)${values.strict && result.warnings.length > 0 ? ' (--strict: warnings fail)' : ''}`);
      return EXIT.USAGE;
    }
    const tenants = [...result.snapshot.tenants.values()].reduce((n, d) => n + d.byName.size, 0);
    io.out(`valid: ${result.snapshot.size} ApiPolicies, ${tenants} Tenants${result.warnings.length > 0 ? `, ${result.warnings.length} warning(s)` : ''}`);
    return EXIT.OK;
  },
};
