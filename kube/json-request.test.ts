import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApiException, KubeConfig } from '@kubernetes/client-node';
import { startLoopbackHttps, type LoopbackHttps } from '../test/helpers/https-server.js';
import { reuseConnections } from './connections.js';
import { httpCode, retryAfterMs } from './errors.js';
import { putJson } from './json-request.js';

/** A real HTTPS server: records each request, answers with the status its path names. */
describe('putJson: the lean JSON PUT with client-node authentication', () => {
  let https: LoopbackHttps;
  let url = '';
  const seen: { method?: string; url?: string; auth?: string; type?: string; body: string }[] = [];
  before(async () => {
    https = await startLoopbackHttps((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen.push({ method: req.method, url: req.url, auth: req.headers.authorization, type: req.headers['content-type'], body });
        const code = Number(/\/answer\/(\d+)/.exec(req.url ?? '')?.[1] ?? 200);
        res.statusCode = code;
        if (code === 429) res.setHeader('retry-after', '3');
        res.setHeader('content-type', 'application/json');
        res.end(code === 200 ? JSON.stringify({ metadata: { resourceVersion: '42' }, echoed: JSON.parse(body) as unknown }) : JSON.stringify({ kind: 'Status', code }));
      });
    });
    url = https.url;
  });
  after(() => https.close());

  const kc = (): KubeConfig => {
    const k = new KubeConfig();
    k.loadFromOptions({
      clusters: [{ name: 'c', server: `${url}/`, caData: Buffer.from(https.ca).toString('base64'), skipTLSVerify: false }],
      users: [{ name: 'u', token: 'test-token' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    return reuseConnections(k);
  };

  test('sends the body as JSON with the kubeconfig\'s credentials over its TLS trust, and returns the parsed answer', async () => {
    const out = await putJson<{ metadata: { resourceVersion: string }; echoed: unknown }>(kc(), '/apis/g/v1/namespaces/n/things/a/status', { status: { ok: true } });
    assert.deepEqual(out, { metadata: { resourceVersion: '42' }, echoed: { status: { ok: true } } });
    const last = seen.at(-1)!;
    assert.deepEqual([last.method, last.url, last.auth, last.type], ['PUT', '/apis/g/v1/namespaces/n/things/a/status', 'Bearer test-token', 'application/json']);
  });

  test('a refusal is client-node\'s ApiException carrying the status (a 409 is retried by the caller) and Retry-After', async () => {
    const conflict = await putJson(kc(), '/answer/409', {}).catch((e: unknown) => e);
    assert.ok(conflict instanceof ApiException);
    assert.equal(httpCode(conflict), 409);
    assert.match(String(conflict.body), /"code":409/);
    const busy = await putJson(kc(), '/answer/429', {}).catch((e: unknown) => e);
    assert.equal(httpCode(busy), 429);
    assert.equal(retryAfterMs(busy), 3000);
  });

  test('a server whose certificate the kubeconfig does not trust is refused', async () => {
    const k = kc();
    k.clusters[0] = { ...k.clusters[0]!, caData: undefined, caFile: undefined } as never;
    await assert.rejects(putJson(k, '/x', {}));
  });
});
