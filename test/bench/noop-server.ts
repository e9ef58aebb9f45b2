/**
 * The ceilings for Node: an envoy.service.auth.v3.Authorization server on @grpc/grpc-js that
 * allows everything without looking at the request. Run as a child process by the load
 * benchmark; prints "PORT <n>" once it listens.
 *
 *   node dist/test/bench/noop-server.js [port] [--no-decode]
 *
 * Default: proto-loader's (de)serializers, so every CheckRequest is decoded into plain objects as
 * a typical grpc-js service would. --no-decode: the request bytes are never decoded and the
 * response is one pre-encoded buffer — the floor of gRPC on Node itself.
 */
import * as grpc from '@grpc/grpc-js';
import { envoyProtos, protoRoot } from '../../proto/envoy.js';

type Service = { service: grpc.ServiceDefinition };
const protos = envoyProtos() as unknown as { envoy: { service: { auth: { v3: { Authorization: Service } } } } };
const decoding = protos.envoy.service.auth.v3.Authorization.service;
const noDecode = process.argv.includes('--no-decode');

function rawService(): grpc.ServiceDefinition {
  const check = decoding.Check!;
  const identity = (b: Buffer): Buffer => b;
  return { Check: { ...check, requestDeserialize: identity, responseSerialize: identity } };
}

const t = protoRoot().lookupType('envoy.service.auth.v3.CheckResponse');
const OK = Buffer.from(t.encode(t.fromObject({ status: { code: 0 } })).finish());

const server = new grpc.Server({ 'grpc.enable_channelz': 0 });
server.addService(noDecode ? rawService() : decoding, {
  Check: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, noDecode ? OK : { status: { code: 0 } }),
});
const port = process.argv.slice(2).find((a) => /^\d+$/.test(a)) ?? '0';
server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, bound) => {
  if (err) throw err;
  console.log(`PORT ${bound}`);
});
process.once('SIGTERM', () => server.forceShutdown());
