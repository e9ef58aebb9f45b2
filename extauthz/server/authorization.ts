/**
 * envoy.service.auth.v3.Authorization/Check over gRPC. The handler never answers with a gRPC
 * error: bad input and internal failures become denied CheckResponses (fail closed). The call's
 * deadline (and a cancel) aborts a signal the pipeline checks before every phase and hands to
 * every awaited call; a call whose deadline passed is answered with the DEADLINE_EXCEEDED deny
 * that was audited, so it can never look like success.
 */
import * as grpc from '@grpc/grpc-js';
import { CATALOGUE } from '../errors.js';
import type { CheckRequestInput } from '../pipeline/check-request.js';
import type { Decision } from '../pipeline/decision.js';
import { CallDeadline } from '../pipeline/deadline.js';
import type { DecisionPipeline } from '../pipeline/pipeline.js';
import { authorizationService } from '../../proto/envoy.js';
import { toStruct } from './struct.js';

/** The dynamic metadata namespace Portcullis writes under (ext_proc and access logs read it). */
export const METADATA_NAMESPACE = 'portcullis';

function headerOptions(headers: Record<string, string>): unknown[] {
  return Object.entries(headers).map(([key, value]) => ({ header: { key, value }, appendAction: 'OVERWRITE_IF_EXISTS_OR_ADD' }));
}

/** A Decision in the CheckResponse shape (proto-loader objects, camelCase). */
export function toCheckResponse(d: Decision): Record<string, unknown> {
  if (d.allowed) {
    return {
      status: { code: 0, message: '' },
      okResponse: { headers: headerOptions(d.headers), headersToRemove: d.removeHeaders, responseHeadersToAdd: headerOptions(d.responseHeaders) },
      dynamicMetadata: toStruct({ [METADATA_NAMESPACE]: d.metadata }),
    };
  }
  const grpcCode = d.code ? CATALOGUE[d.code].grpc : grpc.status.PERMISSION_DENIED;
  return {
    status: { code: grpcCode, message: d.code ?? 'DENIED' },
    deniedResponse: { status: { code: d.status }, headers: headerOptions(d.headers), body: d.body ?? '' },
    dynamicMetadata: toStruct({ [METADATA_NAMESPACE]: { decision: 'deny', code: d.code, requestId: d.requestId, policy: d.policy ?? '', rule: d.rule ?? '' } }),
  };
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
    server.addService(authorizationService(), { Check: this.check.bind(this) });
  }

  private check(call: grpc.ServerUnaryCall<CheckRequestInput, unknown>, callback: grpc.sendUnaryData<unknown>): void {
    this.inflight++;
    const deadline = new CallDeadline(grpcDeadline(call));
    const onCancel = (): void => deadline.cancel();
    call.on('cancelled', onCancel);
    this.pipeline
      .check(call.request ?? {}, { signal: deadline.signal })
      .then((decision) => {
        this.onDecision?.(decision);
        // Always a CheckResponse, even late: the decision (a DEADLINE_EXCEEDED deny when the
        // deadline passed) is what was audited; a client that gave up simply never reads it.
        callback(null, toCheckResponse(decision));
      })
      .catch(() => callback(null, toCheckResponse(INTERNAL_DENY)))
      .finally(() => {
        deadline.dispose();
        call.removeListener('cancelled', onCancel);
        this.inflight--;
      });
  }
}

/** The call's deadline in epoch ms, or undefined when the client set none. */
function grpcDeadline(call: grpc.ServerUnaryCall<CheckRequestInput, unknown>): number | undefined {
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : d;
  return typeof ms === 'number' && Number.isFinite(ms) ? ms : undefined;
}

const INTERNAL_DENY: Decision = { allowed: false, status: 500, code: 'INTERNAL', reason: 'internal', requestId: '', headers: { 'content-type': 'application/json' }, removeHeaders: [], responseHeaders: {}, metadata: {}, trace: [], audit: { method: '', host: '', pathTemplate: '', sourceIp: '' } };
