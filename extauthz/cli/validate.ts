/** `portcullis validate DIR`: every problem in a policy folder, one per line. */
import { parseArgs } from 'node:util';
import { compileFolder } from '../policy/folder-source.js';
import { EXIT, usageError, type Command } from './usage.js';

export const VALIDATE: Command = {
  summary: 'validate a policy folder against the CRD schemas and the compiler',
  help: `Usage: portcullis validate DIR

Reads every .yaml/.yml file under DIR (multi-document), validates Tenants, ApiPolicies and
API-key Secrets against the CRD schemas (including their CEL validations) and compiles them
(CEL conditions type-checked, path templates, tenant references, host conflicts).
Each problem is printed as: file#document object path (rule) line column: CODE: message

Exit status: 0 valid, 2 invalid or usage error.`,
  async run(args, io) {
    const { values, positionals } = parseArgs({ args, options: { help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
    if (values.help) {
      io.out(VALIDATE.help);
      return EXIT.OK;
    }
    if (positionals.length !== 1) throw usageError('validate takes exactly one folder');
    const result = compileFolder(positionals[0]!);
    const problems = [...result.problems, ...result.snapshot.conflicts];
    for (const p of problems) io.err(p.format());
    if (problems.length > 0) {
      io.err(`${problems.length} problem(s)`);
      return EXIT.USAGE;
    }
    const tenants = [...result.snapshot.tenants.values()].reduce((n, d) => n + d.byName.size, 0);
    io.out(`valid: ${result.snapshot.size} ApiPolicies, ${tenants} Tenants`);
    return EXIT.OK;
  },
};
