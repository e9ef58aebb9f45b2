import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { PortcullisError } from '../extauthz/errors.js';
import { loadKubeConfig } from './config.js';

describe('loadKubeConfig', () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-kc-'));
  const saved = { HOME: process.env.HOME, KUBECONFIG: process.env.KUBECONFIG };
  before(() => {
    process.env.HOME = dir; // no ~/.kube/config here
    delete process.env.KUBECONFIG;
  });
  after(() => {
    Object.assign(process.env, saved);
    rmSync(dir, { recursive: true, force: true });
  });

  const good = `apiVersion: v1
kind: Config
clusters: [{ name: c, cluster: { server: 'https://127.0.0.1:6443' } }]
users: [{ name: u, user: { token: t } }]
contexts: [{ name: x, context: { cluster: c, user: u } }]
current-context: x
`;
  const cases: { name: string; file?: string; content?: string; error?: RegExp; server?: string }[] = [
    { name: 'nothing found: a clear error instead of localhost:8080', error: /no Kubernetes configuration found: pass --kubeconfig FILE, set KUBECONFIG/ },
    { name: 'a missing file', file: 'missing.yaml', error: /cannot load the kubeconfig .*missing\.yaml/ },
    { name: 'no current context', file: 'nocontext.yaml', content: good.replace('current-context: x\n', ''), error: /has no current context/ },
    { name: 'a good file', file: 'good.yaml', content: good, server: 'https://127.0.0.1:6443' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const file = c.file ? join(dir, c.file) : undefined;
      if (file && c.content) writeFileSync(file, c.content);
      if (c.error) {
        assert.throws(() => loadKubeConfig(file), (err: unknown) => err instanceof PortcullisError && err.code === 'KUBE_CONFIG' && c.error!.test(err.message));
        return;
      }
      assert.equal(loadKubeConfig(file).getCurrentCluster()?.server, c.server);
    });
  }
});
