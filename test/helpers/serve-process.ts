/** `portcullis serve`, the real CLI in a child process on free loopback ports, and gRPC clients that each hold their own connection. */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { authorizationService } from '../../proto/envoy.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
export const MAIN = join(ROOT, 'dist', 'extauthz', 'cli', 'main.js');

export interface Serve {
  child: ChildProcess;
  grpcPort: number;
  httpPort: number;
  exited: Promise<number | null>;
}

/** Resolves once serve logs its ports ('portcullis serving'); rejects if it exits first. */
export function startServe(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Serve> {
  const child = spawn(process.execPath, [MAIN, 'serve', '--grpc-address', '127.0.0.1:0', '--http-address', '127.0.0.1:0', '--ext-proc-address', '127.0.0.1:0', '--no-audit-stdout', '--drain-seconds', '2', ...args], { stdio: ['ignore', 'ignore', 'pipe'], env });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stderr!.on('data', (c: Buffer) => {
      buf += c.toString('utf8');
      const m = /"grpc":"[^"]*:(\d+)","http":(\d+)/.exec(buf);
      if (m) resolve({ child, grpcPort: Number(m[1]), httpPort: Number(m[2]), exited });
    });
    void exited.then((code) => reject(new Error(`serve exited with ${code}: ${buf}`)));
  });
}

export interface CheckResult {
  status?: { code?: number };
  deniedResponse?: { body?: string };
}
export type CheckFn = (req: unknown, cb: (err: grpc.ServiceError | null, res: CheckResult) => void) => void;
export interface CheckClient {
  Check: CheckFn;
  close: () => void;
}

/** One client per connection: grpc-js shares subchannels between clients unless told not to. */
export function clients(port: number, n: number): CheckClient[] {
  const Ctor = grpc.makeGenericClientConstructor(authorizationService(), 'Authorization');
  return Array.from({ length: n }, () => new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 }) as unknown as CheckClient);
}
