/** CheckRequests in the shape the gRPC server receives (proto-loader objects, camelCase). */
import type { CheckRequestInput } from '../../extauthz/pipeline/check-request.js';

export interface RequestSpec {
  method?: string;
  host?: string;
  path?: string;
  headers?: Record<string, string>;
  /** attributes.source.principal */
  principal?: string;
  /** attributes.source.certificate (URL-encoded PEM, as Envoy sends it). */
  certificate?: string;
  sourceIp?: string;
  contextExtensions?: Record<string, string>;
}

export function checkRequest(r: RequestSpec = {}): CheckRequestInput {
  const source = {
    ...(r.principal !== undefined ? { principal: r.principal } : {}),
    ...(r.certificate !== undefined ? { certificate: r.certificate } : {}),
    ...(r.sourceIp !== undefined ? { address: { socketAddress: { address: r.sourceIp, portValue: 40000 } } } : {}),
  };
  return {
    attributes: {
      ...(Object.keys(source).length > 0 ? { source } : {}),
      request: { http: { method: r.method ?? 'GET', host: r.host ?? 'api.test.example', path: r.path ?? '/', headers: r.headers ?? {} } },
      ...(r.contextExtensions ? { contextExtensions: r.contextExtensions } : {}),
    },
  };
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}
