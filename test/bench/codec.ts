/**
 * The Check codec in isolation (ADR 0005): per-message CPU of decoding the sidecar-shaped
 * CheckRequests and encoding a typical allow CheckResponse, three ways:
 *   proto-loader   what a grpc-js service gets by default: Type.decode + toObject (requests),
 *                  fromObject + encode (responses);
 *   protobufjs     Type.decode / Type.encode alone: the decoder protobufjs generates at run time,
 *                  which is the code `pbjs -t static-module` writes out ("generated static code");
 *   lean           extauthz/server/codec.ts: only the fields the pipeline reads, no message objects.
 *
 *   node dist/test/bench/codec.js [--quick]
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSync } from '@grpc/proto-loader';
import { AUTH_PROTO, LOADER_OPTIONS, fromProtoJson, protoRoot } from '../../proto/envoy.js';
import { decodeCheckRequest, encodeCheckResponse } from '../../extauthz/server/codec.js';
import { toCheckResponse } from '../../extauthz/server/authorization.js';
import type { Decision } from '../../extauthz/pipeline/decision.js';
import { fmt, type Table } from './table.js';
import { createWorkload } from './workload.js';

type Fn = (i: number) => unknown;

/** ns per call of each fn: 7 rounds, every fn once per round (interleaved, so machine noise hits all alike); median. */
function timeAll(fns: Fn[], n: number): number[] {
  for (const fn of fns) for (let i = 0; i < n / 4; i++) fn(i); // warm-up
  const per: number[][] = fns.map(() => []);
  for (let round = 0; round < 7; round++) {
    fns.forEach((fn, k) => {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < n; i++) fn(i);
      per[k]!.push(Number(process.hrtime.bigint() - t0) / n);
    });
  }
  return per.map((xs) => xs.sort((a, b) => a - b)[3]!);
}

const ALLOW: Decision = {
  requestId: '6c4b0f3e-1d2a-4c3b-9e8f-7a6b5c4d3e2f', allowed: true, status: 200, code: null, reason: 'allowed by rule r', policy: 'bench/api-1', rule: 'agency-stats',
  headers: { 'x-portcullis-principal-type': 'agency', 'x-portcullis-request-id': '6c4b0f3e-1d2a-4c3b-9e8f-7a6b5c4d3e2f', 'x-portcullis-policy': 'bench/api-1', 'x-portcullis-rule': 'agency-stats', 'x-portcullis-principal': 'spiffe://gov.example/ns/revenue/sa/reporting-1', 'x-portcullis-tenant': 'dept-revenue', 'x-portcullis-mask': 'v1.eyJtYXNrcyI6W119.c2lnbmF0dXJlLW9mLWEtZGlyZWN0aXZl' },
  removeHeaders: [], responseHeaders: { 'ratelimit-policy': '"daily";q=1000000000000;w=86400', ratelimit: '"daily";r=999999999999;t=52000' },
  metadata: { policy: 'bench/api-1', rule: 'agency-stats', tenant: 'dept-revenue', principalType: 'agency', requestId: '6c4b0f3e-1d2a-4c3b-9e8f-7a6b5c4d3e2f', masks: [], maskDirective: 'v1.eyJtYXNrcyI6W119.c2lnbmF0dXJlLW9mLWEtZGlyZWN0aXZl' },
  trace: [], audit: { method: 'GET', host: 'api-1.bench.example', pathTemplate: '/v1/stats/**', sourceIp: '10.0.0.1' },
};

/** The CheckResponse in proto-loader's object shape, as the server built it before the lean codec. */
function loaderShape(d: Decision): Record<string, unknown> {
  const opts = (h: Record<string, string>): unknown[] => Object.entries(h).map(([key, value]) => ({ header: { key, value }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' }));
  const toValue = (v: unknown): unknown => (typeof v === 'string' ? { stringValue: v } : Array.isArray(v) ? { listValue: { values: v.map(toValue) } } : { nullValue: 'NULL_VALUE' });
  const fields = Object.fromEntries(Object.entries(d.metadata).map(([k, v]) => [k, toValue(v)]));
  return { status: { code: 0, message: '' }, okResponse: { headers: opts(d.headers), headersToRemove: d.removeHeaders, responseHeadersToAdd: opts(d.responseHeaders) }, dynamicMetadata: { fields: { portcullis: { structValue: { fields } } } } };
}

export async function codecTable(quick: boolean): Promise<Table> {
  const w = await createWorkload(50, 100);
  try {
    const type = protoRoot().lookupType('envoy.service.auth.v3.CheckRequest');
    const wires = w.sidecar.map((r) => Buffer.from(type.encode(type.fromObject(fromProtoJson('envoy.service.auth.v3.CheckRequest', r))).finish()));
    const def = loadSync(AUTH_PROTO, LOADER_OPTIONS)['envoy.service.auth.v3.Authorization'] as unknown as { Check: { requestDeserialize(b: Buffer): unknown; responseSerialize(v: unknown): Buffer } };
    const resType = protoRoot().lookupType('envoy.service.auth.v3.CheckResponse');
    const shaped = loaderShape(ALLOW);
    const resMsg = resType.fromObject(shaped);
    const n = quick ? 5_000 : 50_000;
    const at = (i: number): Buffer => wires[i % wires.length]!;
    const rows: [string, Fn, Fn][] = [
      ['proto-loader (grpc-js default)', (i) => def.Check.requestDeserialize(at(i)), () => def.Check.responseSerialize(shaped)],
      ['protobufjs Type.decode/encode (= pbjs static code)', (i) => type.decode(at(i)), () => resType.encode(resMsg).finish()],
      ['lean codec (extauthz/server/codec.ts)', (i) => decodeCheckRequest(at(i)), () => encodeCheckResponse(toCheckResponse(ALLOW))],
    ];
    const dec = timeAll(rows.map((r) => r[1]), n);
    const enc = timeAll(rows.map((r) => r[2]), n);
    const bytes = Math.round(wires.reduce((a, b) => a + b.length, 0) / wires.length);
    return {
      title: `Check codec, µs per message (median of 7 interleaved rounds of ${n.toLocaleString('en-US')}), sidecar-shaped requests (${bytes} bytes on average), one allow response`,
      headers: ['codec', 'decode CheckRequest µs', 'encode CheckResponse µs', 'speed-up vs proto-loader (decode / encode)'],
      rows: rows.map(([name], k) => [name, fmt(dec[k]! / 1000, 2), fmt(enc[k]! / 1000, 2), `${fmt(dec[0]! / dec[k]!, 1)}× / ${fmt(enc[0]! / enc[k]!, 1)}×`]),
      notes: ['protobufjs Type.decode builds message objects with every field; proto-loader adds toObject (plain objects, longs as strings, enums as names).'],
    };
  } finally {
    w.remove();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const { formatText } = await import('./table.js');
  console.log(formatText(await codecTable(process.argv.includes('--quick'))));
}
