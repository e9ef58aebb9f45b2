import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { HostIndex, normalizeHost } from './hosts.js';

describe('normalizeHost', () => {
  const cases: [string, string][] = [
    ['Stats.C2G.Example', 'stats.c2g.example'],
    ['stats.c2g.example:443', 'stats.c2g.example'],
    ['stats.c2g.example.', 'stats.c2g.example'],
    ['127.0.0.1:8080', '127.0.0.1'],
    ['[::1]:8443', '[::1]'],
    ['[2001:DB8::1]', '[2001:db8::1]'],
    ['  api.example  ', 'api.example'],
  ];
  for (const [input, expected] of cases) test(input, () => assert.equal(normalizeHost(input), expected));
});

describe('HostIndex', () => {
  const index = HostIndex.empty<string>().edit((e) => {
    e.add('api.example.com', 'exact');
    e.add('*.example.com', 'wild');
    e.add('*.b.example.com', 'wild-b');
    e.add('API.Other.com', 'other');
    e.add('[::1]', 'v6');
    e.add('api.example.com', 'exact-2');
  });

  const cases: [string, string[]][] = [
    ['api.example.com', ['exact', 'exact-2']],
    ['x.example.com', ['wild']],
    ['a.b.example.com', ['wild-b']],
    ['deep.a.b.example.com', ['wild-b']],
    ['b.example.com', ['wild']],
    ['example.com', []], // *.example.com does not cover the apex
    ['api.other.com', ['other']],
    ['[::1]', ['v6']],
    ['unknown.test', []],
    ['com', []],
  ];
  for (const [host, expected] of cases) test(host, () => assert.deepEqual(index.lookup(host), expected));

  test('an edit returns a new index and leaves the one it came from as it was', () => {
    const next = index.edit((e) => {
      e.remove('api.example.com', 'exact');
      e.add('*.example.com', 'wild-0', () => true);
      e.add('new.example', 'new');
    });
    assert.deepEqual(next.lookup('api.example.com'), ['exact-2']);
    assert.deepEqual(next.lookup('x.example.com'), ['wild-0', 'wild']);
    assert.deepEqual(next.lookup('new.example'), ['new']);
    assert.deepEqual(index.lookup('api.example.com'), ['exact', 'exact-2']);
    assert.deepEqual(index.lookup('x.example.com'), ['wild']);
    assert.deepEqual(index.lookup('new.example'), []);
    assert.equal(index.edit(() => undefined), index, 'an empty edit is the same index');
  });

  test('a port in the request host is ignored once normalised', () => {
    assert.deepEqual(index.lookup(normalizeHost('API.example.com:8443')), ['exact', 'exact-2']);
  });
});
