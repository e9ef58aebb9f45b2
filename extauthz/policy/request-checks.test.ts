import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkRequest, compileRequest, parseMediaType, RequestSpecError, type RequestFacts } from './request-checks.js';
import { BODY_SCHEMA_LIMITS, BodySchemaError, compileBodySchema } from './body-schema.js';
import type { RequestValidation } from './crd-types.js';

const ORDER_SCHEMA = {
  type: 'object',
  required: ['item', 'quantity'],
  additionalProperties: false,
  properties: {
    item: { type: 'string', pattern: '^[a-z0-9-]{1,32}$' },
    quantity: { type: 'integer', minimum: 1, maximum: 100 },
    deliverOn: { type: 'string', format: 'date' },
    lines: { type: 'array', maxItems: 10, items: { $ref: '#/$defs/line' } },
    tags: { type: 'object', additionalProperties: { type: 'string', maxLength: 8 } },
  },
  $defs: { line: { type: 'object', required: ['sku'], properties: { sku: { type: 'string', format: 'uuid' } } } },
};

const SPEC: RequestValidation = {
  body: { inline: ORDER_SCHEMA },
  maxBodyBytes: 1024,
  query: {
    parameters: [
      { name: 'limit', type: 'integer', minimum: 1, maximum: 100 },
      { name: 'dryRun', type: 'boolean' },
      { name: 'sort', type: 'string', enum: ['asc', 'desc'] },
      { name: 'tenant', type: 'string', required: true, maxLength: 8 },
    ],
    unknownParameters: 'reject',
  },
};

const compiled = compileRequest(SPEC);

function facts(body: string | undefined, opts: { query?: string; headers?: Record<string, string> } = {}): RequestFacts {
  const bytes = body === undefined ? undefined : Buffer.from(body, 'utf8');
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(bytes ? { 'content-length': String(bytes.length) } : {}), ...opts.headers };
  return { headers, rawQuery: opts.query ?? 'tenant=t1', body: bytes };
}

const GOOD = JSON.stringify({ item: 'widget', quantity: 3 });

describe('request checks: one table per check', () => {
  const cases: [string, RequestFacts, { code: string; check: string; pointer: string } | undefined][] = [
    // bodies
    ['a valid body', facts(GOOD), undefined],
    ['a valid body with nested lines', facts(JSON.stringify({ item: 'w', quantity: 1, lines: [{ sku: '0b6f3c1e-7a0e-4c4e-9d6b-2f1d3e4c5a6b' }] })), undefined],
    ['quantity over its maximum', facts(JSON.stringify({ item: 'w', quantity: 101 })), { code: 'BODY_INVALID', check: 'body', pointer: '/quantity' }],
    ['a required property missing', facts(JSON.stringify({ item: 'w' })), { code: 'BODY_INVALID', check: 'body', pointer: '/quantity' }],
    ['an undeclared property: the parent, not its name', facts(JSON.stringify({ item: 'w', quantity: 1, secret: 'x' })), { code: 'BODY_INVALID', check: 'body', pointer: '' }],
    ['an item pattern mismatch', facts(JSON.stringify({ item: 'NOT OK', quantity: 1 })), { code: 'BODY_INVALID', check: 'body', pointer: '/item' }],
    ['a bad format inside a $ref', facts(JSON.stringify({ item: 'w', quantity: 1, lines: [{ sku: 'nope' }] })), { code: 'BODY_INVALID', check: 'body', pointer: '/lines/0/sku' }],
    ['an impossible date', facts(JSON.stringify({ item: 'w', quantity: 1, deliverOn: '2026-02-30' })), { code: 'BODY_INVALID', check: 'body', pointer: '/deliverOn' }],
    ['a client-chosen map key is not echoed', facts(JSON.stringify({ item: 'w', quantity: 1, tags: { 'jane.doe@example.org': 'far-too-long' } })), { code: 'BODY_INVALID', check: 'body', pointer: '/tags/*' }],
    ['not JSON', facts('{"item":'), { code: 'BODY_INVALID', check: 'body', pointer: '' }],
    ['an empty body for a body schema', facts('', { headers: { 'content-length': '0' } }), { code: 'BODY_INVALID', check: 'body', pointer: '' }],
    ['invalid UTF-8', { ...facts(GOOD), body: Buffer.from([0x7b, 0xff, 0x7d]), headers: { 'content-type': 'application/json', 'content-length': '3' } }, { code: 'BODY_INVALID', check: 'body', pointer: '' }],
    // content types
    ['application/json with a charset, upper case', facts(GOOD, { headers: { 'content-type': 'Application/JSON; charset="utf-8"' } }), undefined],
    ['text/plain', facts(GOOD, { headers: { 'content-type': 'text/plain' } }), { code: 'UNSUPPORTED_MEDIA_TYPE', check: 'contentType', pointer: '' }],
    ['a body without Content-Type', { ...facts(GOOD), headers: { 'content-length': String(GOOD.length) } }, { code: 'UNSUPPORTED_MEDIA_TYPE', check: 'contentType', pointer: '' }],
    ['a malformed Content-Type', facts(GOOD, { headers: { 'content-type': 'application/json; charset' } }), { code: 'UNSUPPORTED_MEDIA_TYPE', check: 'contentType', pointer: '' }],
    ['two Content-Type headers joined', facts(GOOD, { headers: { 'content-type': 'application/json,text/html' } }), { code: 'UNSUPPORTED_MEDIA_TYPE', check: 'contentType', pointer: '' }],
    // size and completeness
    ['Content-Length over maxBodyBytes (no body sent)', { headers: { 'content-type': 'application/json', 'content-length': '5000' }, rawQuery: 'tenant=t1', body: undefined }, { code: 'BODY_TOO_LARGE', check: 'size', pointer: '' }],
    ['a received body over maxBodyBytes', facts(JSON.stringify({ item: 'w', quantity: 1, pad: 'x'.repeat(2000) })), { code: 'BODY_TOO_LARGE', check: 'size', pointer: '' }],
    ['Envoy marked the body partial', facts(GOOD, { headers: { 'x-envoy-auth-partial-body': 'true' } }), { code: 'BODY_INCOMPLETE', check: 'size', pointer: '' }],
    ['fewer bytes than Content-Length (truncated)', { ...facts(GOOD), body: Buffer.from(GOOD.slice(0, 10)) }, { code: 'BODY_INCOMPLETE', check: 'size', pointer: '' }],
    ['a body with Content-Length but the proxy sent none', { headers: { 'content-type': 'application/json', 'content-length': '40' }, rawQuery: 'tenant=t1', body: undefined }, { code: 'BODY_INCOMPLETE', check: 'size', pointer: '' }],
    ['chunked, and the proxy sent no body', { headers: { 'content-type': 'application/json', 'transfer-encoding': 'chunked' }, rawQuery: 'tenant=t1', body: undefined }, { code: 'BODY_INCOMPLETE', check: 'size', pointer: '' }],
    ['conflicting Content-Length values', facts(GOOD, { headers: { 'content-length': `${GOOD.length},7` } }), { code: 'BODY_INCOMPLETE', check: 'size', pointer: '' }],
    ['x-envoy-auth-partial-body: false is a whole body', facts(GOOD, { headers: { 'x-envoy-auth-partial-body': 'false' } }), undefined],
    // queries
    ['limit at its maximum', facts(GOOD, { query: 'tenant=t1&limit=100' }), undefined],
    ['limit over its maximum', facts(GOOD, { query: 'tenant=t1&limit=101' }), { code: 'QUERY_INVALID', check: 'query', pointer: '/limit' }],
    ['limit not an integer', facts(GOOD, { query: 'tenant=t1&limit=1e2' }), { code: 'QUERY_INVALID', check: 'query', pointer: '/limit' }],
    ['limit given twice (first valid, second not)', facts(GOOD, { query: 'tenant=t1&limit=5&limit=5000' }), { code: 'QUERY_INVALID', check: 'query', pointer: '/limit' }],
    ['a boolean that is not true/false', facts(GOOD, { query: 'tenant=t1&dryRun=yes' }), { code: 'QUERY_INVALID', check: 'query', pointer: '/dryRun' }],
    ['an enum value', facts(GOOD, { query: 'tenant=t1&sort=desc' }), undefined],
    ['not an enum value', facts(GOOD, { query: 'tenant=t1&sort=random' }), { code: 'QUERY_INVALID', check: 'query', pointer: '/sort' }],
    ['a required parameter missing', facts(GOOD, { query: 'limit=3' }), { code: 'QUERY_INVALID', check: 'query', pointer: '/tenant' }],
    ['an undeclared parameter (rejected, not named)', facts(GOOD, { query: 'tenant=t1&debug=1' }), { code: 'QUERY_INVALID', check: 'query', pointer: '' }],
    ['a string over maxLength (code points)', facts(GOOD, { query: 'tenant=%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9' }), { code: 'QUERY_INVALID', check: 'query', pointer: '/tenant' }],
    ['eight code points fit maxLength 8', facts(GOOD, { query: 'tenant=%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9%C3%A9' }), undefined],
  ];
  for (const [name, f, want] of cases) {
    test(name, () => {
      const got = checkRequest(compiled, f);
      assert.deepEqual(got && { code: got.code, check: got.check, pointer: got.pointer }, want, got?.message);
    });
  }

  test('no failure message or pointer carries the offending value', () => {
    const secret = 'jane.doe@example.org';
    const inputs = [
      facts(JSON.stringify({ item: secret, quantity: 1 })),
      facts(JSON.stringify({ item: 'w', quantity: 1, [secret]: 1 })),
      facts(JSON.stringify({ item: 'w', quantity: 1, tags: { [secret]: 'far-too-long' } })),
      facts(GOOD, { query: `tenant=t1&${encodeURIComponent(secret)}=1` }),
      facts(GOOD, { query: `tenant=${encodeURIComponent(secret)}` }),
    ];
    for (const f of inputs) {
      const got = checkRequest(compiled, f);
      assert.ok(got, 'each input fails');
      assert.ok(!JSON.stringify(got).includes(secret), JSON.stringify(got));
    }
  });

  test('a rule without a body schema does not need the body; contentTypes applies only to requests with one', () => {
    const r = compileRequest({ contentTypes: ['application/json', 'text/*'], query: { parameters: [{ name: 'limit', type: 'integer', maximum: 100 }] } });
    assert.equal(r.maxBodyBytes, undefined);
    assert.equal(checkRequest(r, { headers: {}, rawQuery: 'limit=50', body: undefined }), undefined);
    assert.equal(checkRequest(r, { headers: { 'content-type': 'text/csv', 'content-length': '3' }, rawQuery: '', body: undefined }), undefined);
    assert.equal(checkRequest(r, { headers: { 'content-type': 'image/png', 'content-length': '3' }, rawQuery: '', body: undefined })?.code, 'UNSUPPORTED_MEDIA_TYPE');
    assert.equal(checkRequest(r, { headers: {}, rawQuery: 'limit=500&other=1', body: undefined })?.pointer, '/limit');
  });

  test('the work bound admits the same schema with bounded strings and a smaller body', () => {
    const r = compileRequest({ maxBodyBytes: 4096, body: { inline: { type: 'array', maxItems: 100, items: { type: 'string', pattern: '^[a-z0-9-]{1,32}$', maxLength: 32 } } } });
    const body = Buffer.from(JSON.stringify(Array(100).fill('a'.repeat(32))));
    assert.equal(checkRequest(r, { headers: { 'content-type': 'application/json', 'content-length': String(body.length) }, rawQuery: '', body }), undefined);
  });

  test('a body schema without maxBodyBytes gets the 64 KiB default', () => {
    assert.equal(compileRequest({ body: { inline: { type: 'object' } } }).maxBodyBytes, 65536);
  });
});

describe('Content-Type grammar (RFC 9110)', () => {
  const cases: [string, string | undefined][] = [
    ['application/json', 'application/json'],
    ['APPLICATION/Problem+JSON', 'application/problem+json'],
    [' application/json ; charset=utf-8', 'application/json'],
    ['application/json;charset="utf-8;x"', 'application/json'],
    ['application/json; a="b\\"c"; d=e', 'application/json'],
    ['application/json;', 'application/json'],
    ['application', undefined],
    ['application/', undefined],
    ['/json', undefined],
    ['application/json; charset', undefined],
    ['application/json; charset="unterminated', undefined],
    ['application/json charset=utf-8', undefined],
    ['appl ication/json', undefined],
    ['application/json, text/html', undefined],
  ];
  for (const [value, want] of cases) {
    test(JSON.stringify(value), () => {
      const m = parseMediaType(value);
      assert.equal(m ? `${m.type}/${m.subtype}` : undefined, want);
    });
  }
});

describe('request specs refused at load', () => {
  const cases: [string, RequestValidation, RegExp][] = [
    ['minimum over maximum', { query: { parameters: [{ name: 'limit', type: 'integer', minimum: 10, maximum: 1 }] } }, /minimum is greater/],
    ['bounds on a boolean', { query: { parameters: [{ name: 'x', type: 'boolean', maximum: 1 }] } }, /apply to integer and number/],
    ['maxLength on an integer', { query: { parameters: [{ name: 'x', type: 'integer', maxLength: 1 }] } }, /apply to string/],
    ['an enum value outside the type', { query: { parameters: [{ name: 'x', type: 'integer', enum: ['1', 'two'] }] } }, /enum value 1/],
    ['a parameter declared twice', { query: { parameters: [{ name: 'x', type: 'string' }, { name: 'x', type: 'integer' }] } }, /declared twice/],
    ['a body schema with a non-JSON content type', { body: { inline: { type: 'object' } }, contentTypes: ['text/plain'] }, /only JSON media types/],
    ['work: many keywords on every item of a 1 MiB body', { maxBodyBytes: 1048576, body: { inline: { type: 'array', items: { allOf: Array.from({ length: 50 }, (_, i) => ({ type: 'integer', minimum: -i })) } } } }, /could cost \d+ steps, more than 2000000/],
    ['work: an unbounded pattern on every item', { body: { inline: { type: 'array', items: { type: 'string', pattern: '^[a-z0-9-]{1,32}$' } } } }, /could cost/],
    ['work: a pattern on one string as long as the body', { maxBodyBytes: 1048576, body: { inline: { type: 'string', pattern: '^([a-z]+-)*[a-z]+$' } } }, /could cost/],
  ];
  for (const [name, spec, message] of cases) {
    test(name, () => assert.throws(() => compileRequest(spec), (e: unknown) => e instanceof RequestSpecError && message.test(e.message)));
  }
});

describe('hostile body schemas refused at load', () => {
  const wide: Record<string, unknown> = {};
  for (let i = 0; i < 4; i++) wide[`l${i}`] = { allOf: Array.from({ length: 20 }, () => ({ $ref: `#/$defs/l${i + 1}` })) };
  wide.l4 = { type: 'string' };
  const cases: [string, unknown, RegExp, string?][] = [
    ['a remote $ref', { $ref: 'https://attacker.example/schema.json' }, /local reference/, '/$ref'],
    ['a relative file $ref', { $ref: 'other.json#/x' }, /local reference/, '/$ref'],
    ['a remote $dynamicRef', { $dynamicRef: 'https://x.example/#meta' }, /local reference/, '/$dynamicRef'],
    ['an $id (registers a URI)', { $id: 'https://portcullis.io/steal', type: 'object' }, /\$id is not allowed/, '/$id'],
    ['another dialect', { $schema: 'http://json-schema.org/draft-07/schema#' }, /\$schema may only be/, '/$schema'],
    ['a recursive $ref', { type: 'object', properties: { child: { $ref: '#' } } }, /recursive \$ref/],
    ['mutually recursive $defs', { $defs: { a: { type: 'array', items: { $ref: '#/$defs/b' } }, b: { type: 'array', items: { $ref: '#/$defs/a' } } }, $ref: '#/$defs/a' }, /recursive \$ref/],
    ['exponential $ref fan-out', { $defs: wide, $ref: '#/$defs/l0' }, /expands to more than/],
    ['a backtracking pattern RE2 cannot express', { type: 'string', pattern: '^(a+)+\\1$' }, /not a valid RE2/],
    ['a pattern too large for RE2', { type: 'string', pattern: 'a{1000}{1000}' }, /RE2|instructions/],
    // re2js expands repetitions before it can refuse the program (40–280 ms each): refused before compiling.
    ['a pattern whose compile alone would stall', { type: 'string', pattern: '(a{1,1000})(b{1,1000})(c{1,1000})' }, /may compile to about \d+ instructions/],
    ['a property pattern whose compile alone would stall', { type: 'object', patternProperties: { '(a{1,1000})(b{1,1000})(c{1,1000})': {} } }, /may compile to about \d+ instructions/],
    ['an unknown format', { type: 'string', format: 'regex' }, /format must be one of/, '/format'],
    ['uniqueItems without a small maxItems', { type: 'array', uniqueItems: true }, /uniqueItems needs maxItems/, '/uniqueItems'],
    ['an unknown keyword (strict mode)', { type: 'object', maxProperty: 3 }, /unknown keyword/],
    ['properties without type object (strict types)', { properties: { a: { type: 'string' } } }, /strictTypes|missing type/],
    ['not a schema', { type: 'strng' }, /not a valid draft 2020-12 schema/, '/type'],
    ['too large', { type: 'object', description: 'x'.repeat(BODY_SCHEMA_LIMITS.bytes) }, /larger than/],
    ['too deep', JSON.parse('{"type":"array","items":'.repeat(40) + '{}' + '}'.repeat(40)) as unknown, /deeper than/],
  ];
  for (const [name, schema, message, pointer] of cases) {
    test(name, () => {
      assert.throws(
        () => compileBodySchema(schema),
        (e: unknown) => e instanceof BodySchemaError && message.test(e.message) && (pointer === undefined || e.pointer === pointer),
      );
    });
  }

  test('a schema that reuses a $def in many places is not recursion', () => {
    const s = compileBodySchema({ type: 'object', properties: { a: { $ref: '#/$defs/n' }, b: { $ref: '#/$defs/n' } }, $defs: { n: { type: 'integer' } } });
    assert.equal(s.validate({ a: 1, b: 2 }), undefined);
    assert.equal(s.validate({ a: 1, b: 'x' })?.pointer, '/b');
  });

  test('patterns run on RE2: a classic ReDoS input is answered at once', () => {
    const s = compileBodySchema({ type: 'string', pattern: '^(a|aa)+$' });
    const started = process.hrtime.bigint();
    assert.equal(s.validate('a'.repeat(5000) + 'b')?.keyword, 'pattern');
    assert.ok(Number(process.hrtime.bigint() - started) / 1e6 < 1000);
  });

  test('two schemas with different patterns do not share a compiled pattern', () => {
    const a = compileBodySchema({ type: 'string', pattern: '^a+$' });
    const b = compileBodySchema({ type: 'string', pattern: '^b+$' });
    assert.equal(a.validate('aaa'), undefined);
    assert.equal(b.validate('bbb'), undefined);
    assert.equal(b.validate('aaa')?.keyword, 'pattern');
  });

  test('a body nested far deeper than the schema does not crash validation', () => {
    const s = compileBodySchema({ type: 'array', uniqueItems: true, maxItems: 2 });
    const deep = JSON.parse('['.repeat(20000) + ']'.repeat(20000)) as unknown;
    assert.doesNotThrow(() => s.validate([deep, deep]));
  });
});
