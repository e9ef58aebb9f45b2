import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PortcullisError } from '../errors.js';
import type { CheckRequestInput } from './check-request.js';
import { LIMITS, parseCheckRequest, parsePath } from './context.js';

const NOW = new Date('2026-01-01T00:00:00Z');

function req(http: Record<string, unknown>, extra: Record<string, unknown> = {}): CheckRequestInput {
  return { attributes: { request: { http: { method: 'GET', host: 'api.example', path: '/', ...http } }, ...extra } } as CheckRequestInput;
}

function badRequest(message: RegExp): (err: unknown) => boolean {
  return (err) => err instanceof PortcullisError && err.code === 'BAD_REQUEST' && message.test(err.message);
}

describe('parsePath', () => {
  const ok: [string, string[], Record<string, string>][] = [
    ['/', [], {}],
    ['/v1/stats/', ['v1', 'stats'], {}],
    ['/v1/a%20b', ['v1', 'a b'], {}],
    ['/v1/x?year=2025&year=2024&q=a%26b', ['v1', 'x'], { year: '2025', q: 'a&b' }],
    ['/v1/x?flag', ['v1', 'x'], { flag: '' }],
    ['/v1/x#frag?no=query', ['v1', 'x'], {}],
  ];
  for (const [path, segments, query] of ok) {
    test(`accepts ${path}`, () => {
      const p = parsePath(path);
      assert.deepEqual(p.segments, segments);
      assert.deepEqual({ ...p.query }, query);
    });
  }
  const bad: [string, RegExp][] = [
    ['v1/stats', /must start with \//],
    ['/v1/../admin', /traversal/],
    ['/v1/./x', /traversal/],
    ['/v1/%2e%2e/admin', /traversal/],
    ['/v1/a%2Fb', /encoded separator/],
    ['/v1/a%2fb', /encoded separator/],
    ['/v1/a%5Cb', /encoded separator/],
    ['/v1/a%00b', /encoded separator/],
    ['/v1//x', /empty path segment/],
    ['/v1/%zz', /percent-encoding/],
    ['/' + 'a'.repeat(LIMITS.pathBytes), /path longer/],
    ['/v1/a b', /visible ASCII/],
    ['/v1/caf\u00e9', /visible ASCII/],
    ['/v1/a\tb', /visible ASCII/],
    ['/v1/a\\..\\b', /encoded separator/],
  ];
  for (const [path, message] of bad) test(`rejects ${path.slice(0, 40)}`, () => assert.throws(() => parsePath(path), badRequest(message)));
});

describe('parsePath: parameters and fragments are flagged for the policy to decide', () => {
  const cases: [string, boolean, boolean, string[]][] = [
    ['/v1/x', false, false, ['v1', 'x']],
    ['/v1/x;jsessionid=1', false, true, ['v1', 'x;jsessionid=1']],
    ['/v1/x%3B1', false, false, ['v1', 'x;1']],
    ['/v1/x#frag', true, false, ['v1', 'x']],
    ['/v1/x?q=a;b', false, false, ['v1', 'x']],
  ];
  for (const [path, fragment, params, segments] of cases) {
    test(path, () => {
      const p = parsePath(path);
      assert.deepEqual([p.hasFragment, p.hasPathParameters, p.segments], [fragment, params, segments]);
    });
  }
});

describe('parseCheckRequest: malformed input is BAD_REQUEST', () => {
  const many = Object.fromEntries(Array.from({ length: LIMITS.headerCount + 1 }, (_, i) => [`h${i}`, 'v']));
  const big = Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`h${i}`, 'v'.repeat(LIMITS.headerValueBytes)]));
  const cases: [string, CheckRequestInput, RegExp][] = [
    ['no attributes', {}, /no attributes.request.http/],
    ['no http', { attributes: { request: {} } }, /no attributes.request.http/],
    ['missing method', req({ method: '' }), /method/],
    ['garbage method', req({ method: 'GET /x' }), /method/],
    ['missing host', req({ host: '' }), /host/],
    ['host with a slash', req({ host: 'a/b' }), /host/],
    ['host with userinfo', req({ host: 'evil@api.example' }), /host/],
    ['too many headers', req({ headers: many }), /more than/],
    ['oversized header', req({ headers: { 'x-big': 'v'.repeat(LIMITS.headerValueBytes + 1) } }), /longer than/],
    ['headers over the total', req({ headers: big }), /exceed/],
    ['garbage header name', req({ headers: { 'bad name': 'v' } }), /invalid header name/],
    ['header with CR LF', req({ headers: { 'x-a': 'v\r\nx-injected: 1' } }), /control characters/],
    ['header with NUL', req({ headers: { 'x-a': 'v\u0000' } }), /control characters/],
    ['headers not a map', req({ headers: ['a'] }), /must be a map/],
    ['path traversal', req({ path: '/a/../b' }), /traversal/],
  ];
  for (const [name, input, message] of cases) test(name, () => assert.throws(() => parseCheckRequest(input, NOW), badRequest(message)));
});

describe('parseCheckRequest: the context', () => {
  test('headers are lower-cased; x-portcullis-* are dropped and collected', () => {
    const ctx = parseCheckRequest(req({ headers: { 'X-Purpose-Of-Use': 'stats', 'x-portcullis-tenant': 'dept-revenue', 'X-Portcullis-Principal': 'spiffe://x' } }), NOW);
    assert.equal(ctx.headers['x-purpose-of-use'], 'stats');
    assert.equal(ctx.headers['x-portcullis-tenant'], undefined);
    assert.deepEqual(ctx.spoofedHeaders.sort(), ['x-portcullis-principal', 'x-portcullis-tenant']);
  });

  test('headerMap entries (value and base64 rawValue) are read; repeated names are joined', () => {
    const ctx = parseCheckRequest(
      req({ headers: undefined, headerMap: { headers: [{ key: 'x-a', value: '1' }, { key: 'x-a', value: '2' }, { key: 'x-raw', rawValue: Buffer.from('raw').toString('base64') }] } }),
      NOW,
    );
    assert.equal(ctx.headers['x-a'], '1,2');
    assert.equal(ctx.headers['x-raw'], 'raw');
  });

  test('host comes from :authority when http.host is empty, port stripped', () => {
    const ctx = parseCheckRequest(req({ host: undefined, headers: { ':authority': 'Stats.Example:443' } }), NOW);
    assert.equal(ctx.host, 'stats.example');
  });

  test('source, context extensions, query and request id', () => {
    const ctx = parseCheckRequest(
      req(
        { path: '/v1/x?year=2025', headers: { 'x-request-id': 'req-1' } },
        { source: { principal: 'spiffe://td/ns/a', address: { socketAddress: { address: '203.0.113.7' } } }, contextExtensions: { 'portcullis.io/policy': 'ns/p' } },
      ),
      NOW,
    );
    assert.equal(ctx.requestId, 'req-1');
    assert.equal(ctx.sourceIp, '203.0.113.7');
    assert.equal(ctx.sourcePrincipal, 'spiffe://td/ns/a');
    assert.deepEqual(ctx.contextExtensions, { 'portcullis.io/policy': 'ns/p' });
    assert.equal(ctx.query.year, '2025');
    assert.equal(ctx.path, '/v1/x');
    assert.equal(ctx.now, NOW);
  });

  test('an unusable x-request-id is replaced by a fresh id', () => {
    const ctx = parseCheckRequest(req({ headers: { 'x-request-id': 'has spaces and <script>' } }), NOW);
    assert.match(ctx.requestId, /^[0-9a-f-]{36}$/);
  });
});
