/**
 * Test helper (worker thread): charges one quota `attempts` times on a MemoryBackend built on the
 * shared table buffer it is given (or on a table of its own), at a fixed time, and posts how many
 * charges were admitted. Used by shared-table.test.ts to prove exactness across threads.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { MemoryBackend } from './memory-backend.js';

const { buffer, attempts, limit, now, gate } = workerData as { buffer?: SharedArrayBuffer; attempts: number; limit: number; now: number; gate: SharedArrayBuffer };
const backend = new MemoryBackend({ clock: () => now, table: buffer ?? 1024 });
const item = { key: 'pq:{t.partner}:r.x:daily:-', cost: 1, algorithm: 'fixed-window' as const, limit, periodMs: 86_400_000, capacity: limit };
// Start together: say ready, then wait for the gate to open, so the threads contend.
const g = new Int32Array(gate);
parentPort!.postMessage('ready');
while (Atomics.load(g, 1) === 0) Atomics.wait(g, 1, 0, 50);
let admitted = 0;
for (let i = 0; i < attempts; i++) if (backend.chargeNow([item])[0]!.allowed) admitted++;
parentPort!.postMessage({ admitted });
