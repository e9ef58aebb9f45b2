import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkWorkers, DEFAULTS, resolveServeConfig } from '../config.js';
import { PolicyError } from '../errors.js';
import { fromWire, toWire } from './forwarded-source.js';
import { workerFile } from './workers.js';

void test('--workers: auto is the CPUs this process may use, bounded; numbers are checked', () => {
  assert.equal(checkWorkers(undefined, 2), 2);
  assert.equal(checkWorkers('auto', 8), 8);
  assert.equal(checkWorkers('auto', 500), 64);
  assert.equal(checkWorkers('auto', 0), 1);
  assert.equal(checkWorkers('3', 2), 3);
  for (const bad of ['0', '-1', '1.5', '65', 'two', '']) assert.throws(() => checkWorkers(bad, 2), /--workers must be auto or an integer from 1 to 64/);
  assert.equal(resolveServeConfig({ policyDir: 'p' }, {}, 4).workers, 4);
  assert.equal(resolveServeConfig({ policyDir: 'p' }, { workers: '1' }, 4).workers, 1);
  // Embedding (startServer with DEFAULTS) stays single-threaded.
  assert.equal(DEFAULTS.workers, 1);
});

void test('each worker writes its own audit file: the suffix goes before the extension', () => {
  assert.equal(workerFile('/var/log/audit.jsonl', 0), '/var/log/audit-w0.jsonl');
  assert.equal(workerFile('/var/log/audit', 3), '/var/log/audit-w3');
  assert.equal(workerFile('/var/log.d/audit', 1), '/var/log.d/audit-w1');
});

void test('forwarded object sets keep their broken objects\' problems across the thread boundary', () => {
  const problem = new PolicyError('POLICY_CEL', 'does not compile', { file: 'a.yaml', object: 'ApiPolicy t/a' }, { severity: 'error' });
  const wire = structuredClone(toWire({ tenants: [], policies: [], secrets: [], broken: new Map([['ApiPolicy t/a', [problem]]]) }));
  const back = fromWire(wire).broken!.get('ApiPolicy t/a')![0]!;
  assert.ok(back instanceof PolicyError);
  assert.equal(back.code, 'POLICY_CEL');
  assert.equal(back.format(), problem.format());
});

void test('a forwarded source tells every subscriber of each new snapshot (the server and the worker both listen)', async () => {
  const { ForwardedPolicySource } = await import('./forwarded-source.js');
  const source = new ForwardedPolicySource(undefined, 'spec', (err) => assert.fail(String(err)));
  await source.start();
  assert.equal(source.snapshot, undefined);
  const heard: string[] = [];
  source.subscribe(() => heard.push('server'));
  source.subscribe(() => heard.push('worker'));
  await source.push(toWire({ tenants: [], policies: [], secrets: [] }));
  assert.deepEqual(heard, ['server', 'worker']);
  assert.ok(source.snapshot);
});
