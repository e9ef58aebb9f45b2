/**
 * Binding the gRPC listeners. One process binds with grpc-js; worker threads share one port with
 * SO_REUSEPORT (Node ≥ 23.1 `reusePort`), each accepting its own connections and handing them to
 * its grpc-js server through the connection injector, so the kernel spreads connections across
 * workers without a dispatcher thread.
 */
import * as grpc from '@grpc/grpc-js';
import type { Server as HttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server as NetServer } from 'node:net';

export interface GrpcListener {
  port: number;
  /** Stops accepting new connections (a draining worker must not be handed more). */
  stopAccepting(): void;
}

/** "host:port" or "[v6]:port" → parts; the address was validated when the config was resolved. */
export function splitHostPort(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(address.slice(i + 1)) };
}

export function bindGrpc(server: grpc.Server, address: string, reusePort = false): Promise<GrpcListener> {
  if (!reusePort) {
    return new Promise((resolve, reject) => {
      server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve({ port, stopAccepting: () => undefined })));
    });
  }
  const injector = server.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const { host, port } = splitHostPort(address);
  const listener: NetServer = createServer({ noDelay: true }, (socket) => injector.injectConnection(socket));
  return new Promise((resolve, reject) => {
    listener.once('error', reject);
    listener.listen({ host, port, reusePort: true }, () => {
      listener.off('error', reject);
      resolve({ port: (listener.address() as AddressInfo).port, stopAccepting: () => void listener.close() });
    });
  });
}

/** Lets in-flight calls finish, then stops the server; past `seconds`, it is shut down regardless. */
export function drain(server: grpc.Server, seconds: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const force = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, seconds * 1000);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}

/** Binds the HTTP side port (health, readiness, metrics); resolves to the port it got. */
export function listenHttp(server: HttpServer, address: string): Promise<number> {
  const { host, port } = splitHostPort(address);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve((server.address() as AddressInfo).port));
  });
}
