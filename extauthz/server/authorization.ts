/**
 * envoy.service.auth.v3.Authorization/Check over gRPC. The handler never answers with a gRPC
 * error: bad input and internal failures become denied CheckResponses (fail closed), and a call
 * whose deadline passed while the pipeline ran is denied too, so it cannot look like success.
 */
import * as grpc from '@grpc/grpc-js';
import { CATALOGUE } from '../errors.js';
import type { CheckRequestInput } from '../pipeline/check-request.js';
import type { Decision } from '../pipeline/decision.js';
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
    this.pipeline
      .check(call.request ?? {})
      .then((decision) => {
        const deadline = call.getDeadline();
        const expired = deadline instanceof Date ? deadline.getTime() < Date.now() : typeof deadline === 'number' && Number.isFinite(deadline) && deadline < Date.now();
        this.onDecision?.(decision);
        if (expired || call.cancelled) {
          callback({ code: grpc.status.DEADLINE_EXCEEDED, details: 'deadline exceeded' });
          return;
        }
        callback(null, toCheckResponse(decision));
      })
      .catch(() => callback(null, toCheckResponse({ allowed: false, status: 500, code: 'INTERNAL', reason: 'internal', requestId: '', headers: { 'content-type': 'application/json' }, removeHeaders: [], responseHeaders: {}, metadata: {}, trace: [], audit: { method: '', host: '', pathTemplate: '', sourceIp: '' } })))
      .finally(() => this.inflight--);
  }
}
