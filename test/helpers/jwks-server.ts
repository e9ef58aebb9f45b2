/** A real JWKS endpoint on loopback (port 0) that counts its fetches, for key-rotation tests. */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { JWK } from 'jose';

export class JwksServer {
  fetches = 0;
  keys: JWK[];
  /** When set, requests are held unanswered (a stalled IdP) until release(). */
  hold = false;
  private held: ServerResponse[] = [];
  /** Called for every fetch, once it has arrived. */
  onFetch: (() => void) | undefined;
  private server: Server | undefined;
  private port = 0;

  constructor(keys: JWK[] = []) {
    this.keys = keys;
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}/.well-known/jwks.json`;
  }

  async start(): Promise<this> {
    this.server = createServer((req, res) => {
      if (req.url !== '/.well-known/jwks.json') {
        res.writeHead(404).end();
        return;
      }
      this.fetches++;
      this.onFetch?.();
      if (this.hold) {
        this.held.push(res);
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: this.keys }));
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
    return this;
  }

  /** Answers the held requests. */
  release(): void {
    this.hold = false;
    for (const res of this.held.splice(0)) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys: this.keys }));
    }
  }

  async close(): Promise<void> {
    const s = this.server;
    if (!s) return;
    s.closeAllConnections();
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
}
