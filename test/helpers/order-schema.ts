/**
 * The body-schema fixture the ConfigMap tests share (in process and on a real API server): an
 * orders policy whose create rule validates JSON bodies, and the labelled ConfigMap holding its
 * schema.
 */
export const ORDER_SCHEMA_REF = '{ configMapRef: { name: order-schema, key: schema.json } }';

/** Accepts `{ quantity }` with 1 ≤ quantity ≤ max and nothing else. */
export function orderSchema(max: number): string {
  return JSON.stringify({ type: 'object', required: ['quantity'], additionalProperties: false, properties: { quantity: { type: 'integer', minimum: 1, maximum: max } } });
}

export function ordersPolicy(o: { namespace: string; host: string; body?: string; name?: string }): string {
  return `apiVersion: portcullis.io/v1alpha1
kind: ApiPolicy
metadata: { name: ${o.name ?? 'orders'}, namespace: ${o.namespace} }
spec:
  hosts: [${o.host}]
  rules:
    - name: create-order
      methods: [POST]
      paths: ["/v1/orders"]
      principals: { anonymous: true }
      request: { contentTypes: [application/json], maxBodyBytes: 512, body: ${o.body ?? ORDER_SCHEMA_REF} }
`;
}

export function orderSchemaConfigMap(o: { namespace: string; data: Record<string, string>; name?: string; labelled?: boolean }): string {
  const labels = o.labelled === false ? '' : ', labels: { portcullis.io/schema: "true" }';
  return `apiVersion: v1
kind: ConfigMap
metadata: { name: ${o.name ?? 'order-schema'}, namespace: ${o.namespace}${labels} }
data: ${JSON.stringify(o.data)}
`;
}
