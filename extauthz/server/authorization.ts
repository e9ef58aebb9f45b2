/**
 * envoy.service.auth.v3.Authorization/Check over gRPC. The handler never answers with a gRPC
 * error: bad input and internal failures become denied CheckResponses (fail closed). The call's
 * deadline (and a cancel) aborts a signal the pipeline checks before every phase and hands to
 * every awaited call; a call whose deadline passed is answered with the DEADLINE_EXCEEDED deny
 * that was audited, so it can never look like success.
 *
 * The method is registered with the lean codec (codec.ts): the request is decoded straight from
 * the wire into what the pipeline reads and the response encoded straight from the Decision, so
 * no proto-loader message objects are built per call (ADR 0005).
 */
import * as grpc from '@grpc/grpc-js';
import { CATALOGUE } from '../errors.js';
import type { CheckRequestInput } from '../pipeline/check-request.js';
import type { Decision } from '../pipeline/decision.js';
import { CallDeadline } from '../pipeline/deadline.js';
import type { DecisionPipeline } from '../pipeline/pipeline.js';
import { decodeCheckRequest, encodeCheckResponse, type CheckResponseFields } from './codec.js';

/** The dynamic metadata namespace Portcullis writes under (ext_proc and access logs read it). */
export const METADATA_NAMESPACE = 'portcullis';

export const CHECK_PATH = '/envoy.service.auth.v3.Authorization/Check';

/** A Decision as the fields of a CheckResponse (what encodeCheckResponse writes). */
export function toCheckResponse(d: Decision): CheckResponseFields {
  if (d.allowed) {
    return { grpcCode: 0, message: '', headers: d.headers, removeHeaders: d.removeHeaders, responseHeaders: d.responseHeaders, metadata: { [METADATA_NAMESPACE]: d.metadata } };
  }
  const grpcCode = d.code ? CATALOGUE[d.code].grpc : grpc.status.PERMISSION_DENIED;
  const metadata = { decision: 'deny', code: d.code, requestId: d.requestId, policy: d.policy ?? '', rule: d.rule ?? '' };
  return { grpcCode, message: d.code ?? 'DENIED', headers: d.headers, httpStatus: d.status, body: d.body ?? '', metadata: { [METADATA_NAMESPACE]: metadata } };
}

/** The CheckResponse bytes of a Decision. */
export function checkResponseBytes(d: Decision): Buffer {
  return encodeCheckResponse(toCheckResponse(d));
}

const INTERNAL_DENY: Decision = {
  allowed: false, status: 500, code: 'INTERNAL', reason: 'internal', requestId: '', headers: { 'content-type': 'application/json' },
  removeHeaders: [], responseHeaders: {}, metadata: {}, trace: [], audit: { method: '', host: '', pathTemplate: '', sourceIp: '' },
};
const INTERNAL_BYTES = checkResponseBytes(INTERNAL_DENY);

/** The Authorization service with Check on the lean codec (the same path and message types as Envoy's). */
export const CHECK_SERVICE: grpc.ServiceDefinition = {
  Check: {
    path: CHECK_PATH,
    requestStream: false,
    responseStream: false,
    requestSerialize: (b: Buffer) => b,
    requestDeserialize: decodeCheckRequest,
    responseSerialize: (b: Buffer) => b,
    responseDeserialize: (b: Buffer) => b,
    originalName: 'check',
  },
};

/** The call's deadline in epoch ms, or undefined when the client set none. */
function grpcDeadline(call: grpc.ServerUnaryCall<CheckRequestInput, Buffer>): number | undefined {
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : d;
  return typeof ms === 'number' && Number.isFinite(ms) ? ms : undefined;
}

export class AuthorizationService {
  private inflight = 0;
  constructor(
    private readonly pipeline: DecisionPipeline,
    private readonly onDecision?: (d: Decision) => void,
  ) {}

  get inFlight(): number {
    return this.inflight;
  }

  addToServer(server: grpc.Server): void {
    server.addService(CHECK_SERVICE, { Check: this.check.bind(this) });
  }

  private check(call: grpc.ServerUnaryCall<CheckRequestInput, Buffer>, callback: grpc.sendUnaryData<Buffer>): void {
    this.inflight++;
    const deadline = new CallDeadline(grpcDeadline(call));
    const onCancel = (): void => deadline.cancel();
    call.on('cancelled', onCancel);
    this.pipeline
      .check(call.request ?? {}, { signal: deadline.signal, shadowSignal: deadline.shadowSignal })
      .then((decision) => {
        this.onDecision?.(decision);
        // Always a CheckResponse, even late: the decision (a DEADLINE_EXCEEDED deny when the
        // deadline passed) is what was audited; a client that gave up simply never reads it.
        callback(null, checkResponseBytes(decision));
      })
      .catch(() => callback(null, INTERNAL_BYTES))
      .finally(() => {
        deadline.dispose();
        call.removeListener('cancelled', onCancel);
        this.inflight--;
      });
  }
}
