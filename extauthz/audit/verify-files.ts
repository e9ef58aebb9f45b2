/** Feeds files to the Verifier as a stream of lines, so a log of any size verifies in bounded memory. */
import { createReadStream } from 'node:fs';
import { createLocalJWKSet, createRemoteJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { readFile } from 'node:fs/promises';
import { Verifier, type VerifyOptions, type VerifyReport } from './verify.js';

/** Calls `each(line, lineNo, complete)`; the last line is incomplete when the file does not end in a newline. */
export async function forEachLine(file: string, each: (text: string, line: number, complete: boolean) => Promise<void> | void): Promise<void> {
  let rest = '';
  let n = 0;
  for await (const chunk of createReadStream(file, { encoding: 'utf8', highWaterMark: 1 << 16 })) {
    const parts = (rest + (chunk as string)).split('\n');
    rest = parts.pop() ?? '';
    for (const p of parts) await each(p, ++n, true);
  }
  if (rest !== '') await each(rest, ++n, false);
}

export async function verifyFiles(files: string[], opts: VerifyOptions): Promise<VerifyReport> {
  const v = new Verifier(opts);
  for (const file of files) await forEachLine(file, (text, line, complete) => v.line(file, line, text, complete));
  return v.report();
}

/** The trusted keys: a JWKS file, or the service's /.well-known/audit-jwks.json URL. */
export async function loadJwks(source: string): Promise<JWTVerifyGetKey> {
  if (/^https?:\/\//.test(source)) return createRemoteJWKSet(new URL(source));
  const jwks = JSON.parse(await readFile(source, 'utf8')) as JSONWebKeySet;
  if (!Array.isArray(jwks.keys)) throw new Error(`${source} is not a JWKS (no "keys" array)`);
  return createLocalJWKSet(jwks);
}
