/**
 * A real HTTPS server on a loopback port, with a fresh self-signed P-256 certificate for
 * 127.0.0.1 made by OpenSSL: for tests of the Kubernetes client plumbing (kube/) that must cross
 * real TLS without an API server.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { RequestListener } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface LoopbackHttps {
  url: string;
  /** The server's certificate (PEM), the CA a client must trust. */
  ca: string;
  server: Server;
  close(): Promise<void>;
}

export async function startLoopbackHttps(handler: RequestListener): Promise<LoopbackHttps> {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-https-'));
  try {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'pipe' });
    const ca = readFileSync(join(dir, 'cert.pem'), 'utf8');
    const server = createServer({ key: readFileSync(join(dir, 'key.pem')), cert: ca }, handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return {
      url: `https://127.0.0.1:${(server.address() as { port: number }).port}`,
      ca,
      server,
      close: async () => {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
