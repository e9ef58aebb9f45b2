#!/usr/bin/env node
/** Entry point of the Portcullis operator. */
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { pino } from 'pino';
import { PortcullisError } from '../extauthz/errors.js';
import { loadKubeConfig } from '../kube/config.js';
import { cleanup } from './cleanup.js';
import { CLEANUP_HELP, OPERATOR_HELP, parseCleanupArgs, parseOperatorArgs } from './config.js';
import { runOperator } from './manager.js';

async function runCleanup(argv: string[]): Promise<number> {
  let cfg;
  try {
    cfg = parseCleanupArgs(argv);
  } catch (err) {
    process.stderr.write(`portcullis-operator cleanup: ${(err as Error).message}\n\n${CLEANUP_HELP}\n`);
    return 2;
  }
  if (cfg === 'help') {
    process.stdout.write(CLEANUP_HELP + '\n');
    return 0;
  }
  try {
    await cleanup(loadKubeConfig(cfg.kubeconfig), { ...(cfg.deployment ? { deployment: cfg.deployment } : {}), timeoutMs: cfg.timeoutMs, log: (l) => process.stdout.write(`cleanup: ${l}\n`) });
    return 0;
  } catch (err) {
    const code = err instanceof PortcullisError ? `${err.code}: ` : '';
    process.stderr.write(`portcullis-operator cleanup: ${code}${(err as Error).message}\n`);
    return 1;
  }
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'cleanup') return runCleanup(argv.slice(1));
  let cfg;
  try {
    cfg = parseOperatorArgs(argv);
  } catch (err) {
    process.stderr.write(`portcullis-operator: ${(err as Error).message}\n\n${OPERATOR_HELP}\n`);
    return 2;
  }
  if (cfg === 'help') {
    process.stdout.write(OPERATOR_HELP + '\n');
    return 0;
  }
  const log = pino({ level: cfg.logLevel, base: { service: 'portcullis-operator' } }, pino.destination({ fd: 2, sync: false }));
  let kc;
  try {
    kc = loadKubeConfig(cfg.kubeconfig);
  } catch (err) {
    const code = err instanceof PortcullisError ? `${err.code}: ` : '';
    process.stderr.write(`portcullis-operator: ${code}${(err as Error).message}\n`);
    return 1;
  }
  const running = await runOperator(cfg, kc, log, () => {
    // Exit so the replica restarts as a follower with fresh state.
    process.exit(1);
  });
  await new Promise<void>((resolve) => {
    const stop = (): void => void running.stop().then(resolve);
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  return 0;
}

function isEntryPoint(): boolean {
  try {
    return realpathSync(process.argv[1] ?? '') === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) process.exitCode = await main(process.argv.slice(2));
