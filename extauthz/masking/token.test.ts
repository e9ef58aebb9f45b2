import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { compactVerify } from 'jose';
import { DirectiveError, DirectiveIssuer, DirectiveVerifier, MaskKey, payloadTail, type DirectiveFailure } from './token.js';

const key = MaskKey.generate();
const issuer = new DirectiveIssuer(key, { ttlSeconds: 60 });
const verifier = new DirectiveVerifier(key);
const t0 = new Date('2026-03-01T10:00:00Z');
const tail = payloadTail({ masks: [{ field: '$.taxId', action: 'partial', keepLast: 4 }, { field: '$..ssn', action: 'remove' }] });
const token = issuer.issue(tail, 'req-1', t0);

function b64(o: unknown): string {
  return Buffer.from(JSON.stringify(o)).toString('base64url');
}
function claims(t: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(t.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
}
function withPayload(t: string, p: unknown): string {
  const [h, , s] = t.split('.');
  return `${h}.${b64(p)}.${s}`;
}

describe('directive tokens', () => {
  test('a fresh token verifies and carries the directive set', () => {
    const c = verifier.verify(token, 'req-1', new Date(t0.getTime() + 1000));
    assert.equal(c.rid, 'req-1');
    assert.deepEqual(c.masks.map((m) => m.action), ['partial', 'remove']);
  });

  test('is a standard HS256 JWS: jose verifies it with the same key', async () => {
    const secret = (key as unknown as { secret: Buffer }).secret;
    const { protectedHeader } = await compactVerify(token, new Uint8Array(secret));
    assert.equal(protectedHeader.alg, 'HS256');
  });

  const c0 = claims(token);
  const rejected: [string, () => string, string | undefined, Date, DirectiveFailure][] = [
    ['forged with another key', () => new DirectiveIssuer(MaskKey.generate()).issue(tail, 'req-1', t0), 'req-1', t0, 'signature'],
    ['widened: a mask dropped, signature kept', () => withPayload(token, { ...c0, masks: [] }), 'req-1', t0, 'signature'],
    ['widened: lifetime extended', () => withPayload(token, { ...c0, exp: (c0.exp as number) + 3600 }), 'req-1', t0, 'signature'],
    ['alg none', () => `${b64({ alg: 'none' })}.${token.split('.')[1]}.`, 'req-1', t0, 'signature'],
    ['stale', () => token, 'req-1', new Date(t0.getTime() + 120_000), 'expired'],
    ['issued in the future', () => token, 'req-1', new Date(t0.getTime() - 60_000), 'not-yet-valid'],
    ['replayed on another request', () => token, 'req-2', t0, 'request-mismatch'],
    ['no request id to bind to', () => token, undefined, t0, 'request-mismatch'],
    ['not a JWS', () => 'garbage', 'req-1', t0, 'malformed'],
    ['truncated signature', () => token.slice(0, -5), 'req-1', t0, 'signature'],
  ];
  for (const [name, make, rid, now, reason] of rejected) {
    test(`rejects ${name}`, () => assert.throws(() => verifier.verify(make(), rid, now), (e: unknown) => e instanceof DirectiveError && e.reason === reason));
  }

  test('a token minted with a lifetime longer than accepted is refused', () => {
    const long = new DirectiveIssuer(key, { ttlSeconds: 3600 }).issue(tail, 'req-1', t0);
    assert.throws(() => verifier.verify(long, 'req-1', t0), (e: unknown) => e instanceof DirectiveError && e.reason === 'expired');
  });

  test('keys shorter than 32 bytes are refused', () => {
    assert.throws(() => MaskKey.from(randomBytes(16)), RangeError);
  });
});
