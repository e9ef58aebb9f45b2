import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { startLoopbackHttps, type LoopbackHttps } from '../test/helpers/https-server.js';
import { reuseConnections } from './connections.js';

/** A real HTTPS server answering every GET with an empty NamespaceList; counts TLS handshakes. */
describe('reuseConnections: API calls share TLS connections', () => {
  let https: LoopbackHttps;
  let handshakes = 0;
  let url = '';
  let ca = '';
  before(async () => {
    https = await startLoopbackHttps((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ kind: 'NamespaceList', apiVersion: 'v1', metadata: {}, items: [] }));
    });
    https.server.on('secureConnection', () => handshakes++);
    ({ url, ca } = https);
  });
  after(() => https.close());

  const config = (certificate: string): KubeConfig => {
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: url, caData: Buffer.from(certificate).toString('base64'), skipTLSVerify: false }],
      users: [{ name: 'u', token: 'not-a-secret' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    return kc;
  };
  const calls = async (kc: KubeConfig, n: number): Promise<number> => {
    const before = handshakes;
    const api = kc.makeApiClient(CoreV1Api);
    for (let i = 0; i < n; i++) assert.equal((await api.listNamespace()).kind, 'NamespaceList');
    return handshakes - before;
  };

  test('without it, client-node 2.x opens a new TLS connection per call (why this module exists)', async () => {
    assert.equal(await calls(config(ca), 10), 10);
  });

  // undici may open a second connection while the previous response body is still being read;
  // the point is that the count no longer grows with the calls.
  test('with it, ten sequential calls share at most two connections', async () => {
    assert.ok((await calls(reuseConnections(config(ca)), 10)) <= 2);
  });

  test('different TLS material (a rotated CA) gets its own pool', async () => {
    const kc = reuseConnections(config(ca));
    const first = await calls(kc, 6);
    assert.ok(first >= 1 && first <= 2);
    assert.equal(await calls(kc, 6), 0, 'same material: the open pool is reused');
    // Same CA with a trailing newline: different bytes, so a new pool and new connections.
    kc.clusters[0] = { ...kc.clusters[0]!, caData: Buffer.from(`${ca}\n`).toString('base64') };
    assert.ok((await calls(kc, 6)) >= 1);
  });
});
