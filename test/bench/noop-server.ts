/**
 * The ceiling for Node: an envoy.service.auth.v3.Authorization server on @grpc/grpc-js that
 * allows everything without looking at the request. Run as a child process by the load
 * benchmark; prints "PORT <n>" once it listens.
 *
 *   node dist/test/bench/noop-server.js [port]
 */
import * as grpc from '@grpc/grpc-js';
import { envoyProtos } from '../../proto/envoy.js';

type Service = { service: grpc.ServiceDefinition };
const protos = envoyProtos() as unknown as { envoy: { service: { auth: { v3: { Authorization: Service } } } } };

const server = new grpc.Server();
server.addService(protos.envoy.service.auth.v3.Authorization.service, {
  Check: (_call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => cb(null, { status: { code: 0 } }),
});
server.bindAsync(`127.0.0.1:${process.argv[2] ?? '0'}`, grpc.ServerCredentials.createInsecure(), (err, port) => {
  if (err) throw err;
  console.log(`PORT ${port}`);
});
process.once('SIGTERM', () => server.forceShutdown());
