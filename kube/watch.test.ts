import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { parseRetryAfter, retryAfterMs } from './errors.js';
import { RetryAfterWatch, WatchRefused } from './watch.js';

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  const cases: [string | undefined, number | undefined][] = [
    ['3', 3000],
    [' 0 ', 0],
    ['Thu, 01 Jan 2026 00:00:05 GMT', 5000],
    ['Wed, 31 Dec 2025 23:00:00 GMT', 0],
    ['soon', undefined],
    ['-1', undefined],
    [undefined, undefined],
  ];
  for (const [value, want] of cases) test(`${JSON.stringify(value)} → ${want}`, () => assert.equal(parseRetryAfter(value, now), want));
  test('read from an ApiException-shaped error, any header case', () => {
    assert.equal(retryAfterMs({ code: 429, headers: { 'retry-after': '2' } }), 2000);
    assert.equal(retryAfterMs({ code: 500, headers: {} }), undefined);
    assert.equal(retryAfterMs(new WatchRefused(503, 1500)), 1500);
  });
});

describe('RetryAfterWatch against an HTTP server', () => {
  let server: Server;
  let kc: KubeConfig;
  before(async () => {
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/cut') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"type":"ADDED","object":{}}\n', () => res.socket?.destroy());
        return;
      }
      if (url.pathname === '/busy') {
        res.writeHead(429, { 'retry-after': '4' });
        res.end('{}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write(JSON.stringify({ type: 'ADDED', object: { metadata: { name: 'a', resourceVersion: url.searchParams.get('resourceVersion') } } }) + '\n');
      res.end('not json\n');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    kc = new KubeConfig();
    kc.loadFromClusterAndUser({ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }, { name: 'u' });
  });
  after(() => server.close());

  test('a refused watch reports its status and Retry-After', async () => {
    const err = await new Promise<unknown>((resolve) => void new RetryAfterWatch(kc).watch('/busy', {}, () => undefined, resolve));
    assert.ok(err instanceof WatchRefused);
    assert.equal(err.statusCode, 429);
    assert.equal(err.retryAfterMs, 4000);
  });

  test('events are delivered with the query parameters, torn lines skipped, then done(null)', async () => {
    const events: unknown[] = [];
    const err = await new Promise<unknown>((resolve) => void new RetryAfterWatch(kc).watch('/things', { resourceVersion: '42' }, (phase, obj) => events.push([phase, obj]), resolve));
    assert.equal(err, null);
    assert.deepEqual(events, [['ADDED', { metadata: { name: 'a', resourceVersion: '42' } }]]);
  });

  test('a connection cut mid-stream ends the watch with its error (no uncaught exception)', async () => {
    const err = await new Promise<unknown>((resolve) => void new RetryAfterWatch(kc).watch('/cut', {}, () => undefined, resolve));
    assert.ok(err instanceof Error, `done(${String(err)})`);
  });

  test('aborting an open watch (ListWatch stopping it) ends it once', async () => {
    let calls = 0;
    const done = new Promise<void>((resolve) => {
      void new RetryAfterWatch(kc, 60_000).watch('/cut', {}, () => undefined, () => {
        calls++;
        resolve();
      }).then((c) => c.abort());
    });
    await done;
    await new Promise((r) => setImmediate(r));
    assert.equal(calls, 1);
  });
});
