import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseXfcc, XFCC_LIMITS } from './xfcc.js';

describe("parseXfcc: Envoy's grammar", () => {
  const ok: [string, unknown[]][] = [
    ['By=spiffe://a;Hash=abc;URI=spiffe://td/ns/x', [{ by: ['spiffe://a'], hash: 'abc', uri: ['spiffe://td/ns/x'], dns: [] }]],
    ['Subject="CN=a\\,b,O=H";URI=spiffe://td/y;DNS=a.svc;DNS=b.svc', [{ by: [], subject: 'CN=a\\,b,O=H', uri: ['spiffe://td/y'], dns: ['a.svc', 'b.svc'], dnsAfterUri: true }]],
    ['By=spiffe://gw;Hash=ab;URI=;DNS=a.svc', [{ by: ['spiffe://gw'], hash: 'ab', uri: [''], dns: ['a.svc'] }]],
    ['Subject="CN=x\\";URI=spiffe://evil";URI=spiffe://real', [{ by: [], subject: 'CN=x\\";URI=spiffe://evil', uri: ['spiffe://real'], dns: [] }]],
    ['By="spiffe://a;b";URI=spiffe://x', [{ by: ['spiffe://a;b'], uri: ['spiffe://x'], dns: [] }]],
    ['URI="spiffe://a\\"b"', [{ by: [], uri: ['spiffe://a"b'], dns: [] }]],
    ['uri=spiffe://a, By=x;URI=spiffe://b', [{ by: [], uri: ['spiffe://a'], dns: [] }, { by: ['x'], uri: ['spiffe://b'], dns: [] }]],
    ['Future=1;URI=spiffe://a', [{ by: [], uri: ['spiffe://a'], dns: [] }]],
    ['Hash=', [{ by: [], hash: '', uri: [], dns: [] }]],
  ];
  for (const [header, expected] of ok) test(header, () => assert.deepEqual(parseXfcc(header), expected));

  const bad: [string, RegExp][] = [
    ['', /without =/],
    ['garbage', /without =/],
    ['URI=a;', /without =/],
    ['Subject="CN=a', /unterminated/],
    ['Subject="CN=a\\"', /unterminated/],
    ['Subject="a"b', /after a quoted value/],
    ['URI=a"b', /quote or backslash/],
    ['Subject="a";Subject="b"', /twice/],
    ['Hash=a;Hash=b', /twice/],
    ['U RI=a', /invalid key/],
    // Envoy writes By, Hash, Cert, Chain, Subject, URI, DNS in that order, Cert/Chain/Subject quoted:
    // anything else is the text of an unquoted URI or DNS value read as pairs.
    ['URI=https://p.example/x;Cert="abc"', /not the order Envoy writes/],
    ['URI=https://p.example/x;Subject="CN=a,O=Health"', /not the order Envoy writes/],
    ['DNS=a.svc;URI=spiffe://td/x', /not the order Envoy writes/],
    ['URI=https://p.example/x;Hash=ab', /not the order Envoy writes/],
    ['URI=https://p.example/x;By=spiffe://gw', /not the order Envoy writes/],
    ['Subject=CN=a', /unquoted subject/],
    ['Cert=abc', /unquoted cert/],
    [Array.from({ length: XFCC_LIMITS.elements + 1 }, () => 'URI=a').join(','), /more than 32 elements/],
    [Array.from({ length: XFCC_LIMITS.pairsPerElement + 1 }, () => 'DNS=a').join(';'), /too many pairs/],
  ];
  for (const [header, message] of bad) test(`refused: ${header.slice(0, 40)}`, () => assert.throws(() => parseXfcc(header), message));
});
