/**
 * The entry point of one worker thread of `serve --workers` (workers.ts starts it): a complete
 * Check and ext_proc server on the shared port, fed policies by the primary, answering the
 * primary's metrics scrapes and drain request.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from '../logger.js';
import { ForwardedPolicySource } from './forwarded-source.js';
import { startServer } from './serve.js';
import type { FromWorker, ToWorker, WorkerInit } from './worker-protocol.js';

async function main(): Promise<void> {
  const port = parentPort;
  if (!port) throw new Error('worker-main runs only as a worker thread of serve --workers');
  const init = workerData as WorkerInit;
  const log = createLogger(init.config.logLevel).child({ worker: init.index });
  const send = (m: FromWorker): void => port.postMessage(m);
  const source = new ForwardedPolicySource(init.initial, init.fingerprint, (err) => log.error({ err: String(err) }, 'worker could not compile the forwarded policies; serving its last snapshot'));
  const server = await startServer(init.config, log, {
    source,
    shared: {
      quotaTable: init.quotaTable,
      // Buffers arrive as plain Uint8Arrays.
      maskKeys: { signing: Buffer.from(init.maskKeys.signing), hash: Buffer.from(init.maskKeys.hash) },
      ...(init.subjectKey ? { subjectKey: Buffer.from(init.subjectKey) } : {}),
    },
  });
  port.on('message', (m: ToWorker) => {
    if (m.type === 'policies') void source.push(m.input);
    else if (m.type === 'metrics') void server.metrics.registry.getMetricsAsJSON().then((metrics) => send({ type: 'metrics', id: m.id, metrics }));
    else if (m.type === 'close') void server.close().then(() => port.close());
  });
  send({ type: 'started', grpcPort: server.grpcPort, extProcPort: server.extProcPort, ready: server.pipeline !== undefined && source.snapshot !== undefined, ...(server.auditJwks ? { jwks: server.auditJwks } : {}) });
  source.subscribe(() => send({ type: 'ready' }));
}

main().catch((err: unknown) => {
  // The primary sees the failure as this thread's 'error' event and refuses to start (or restarts it).
  throw err instanceof Error ? err : new Error(String(err));
});
