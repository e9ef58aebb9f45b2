/**
 * A client that drives envoy.service.ext_proc.v3.ExternalProcessor/Process over real gRPC the way
 * Envoy does: one message at a time, waiting for its response before sending the next.
 */
import * as grpc from '@grpc/grpc-js';
import { externalProcessorService, protoRoot } from '../../proto/envoy.js';

type Msg = Record<string, unknown>;

export class ExtProcClient {
  private readonly client: grpc.Client & { Process: () => grpc.ClientDuplexStream<Msg, Msg> };
  constructor(port: number) {
    const Ctor = grpc.makeClientConstructor(externalProcessorService(), 'ExternalProcessor');
    this.client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure()) as unknown as ExtProcClient['client'];
  }

  /** Sends messages in order; returns one response per message (stops after an immediate response). */
  async exchange(messages: Msg[]): Promise<Msg[]> {
    const call = this.client.Process();
    const queue: Msg[] = [];
    const waiters: ((m: Msg | undefined) => void)[] = [];
    call.on('data', (m: Msg) => (waiters.length ? waiters.shift()!(m) : queue.push(m)));
    call.on('end', () => waiters.splice(0).forEach((w) => w(undefined)));
    call.on('error', () => waiters.splice(0).forEach((w) => w(undefined)));
    const next = (): Promise<Msg | undefined> => (queue.length ? Promise.resolve(queue.shift()) : new Promise((r) => waiters.push(r)));
    const out: Msg[] = [];
    for (const m of messages) {
      call.write(m);
      const r = await next();
      if (!r) break;
      out.push(r);
      if (r.immediateResponse) break;
    }
    call.end();
    return out;
  }

  close(): void {
    this.client.close();
  }
}

export function headers(map: Record<string, string>, endOfStream = false): Msg {
  return { headers: { headers: Object.entries(map).map(([key, v]) => ({ key, rawValue: Buffer.from(v) })) }, endOfStream };
}

/** The body of a responseBody response (bytes → text), or undefined. */
export function bodyOf(r: Msg | undefined): string | undefined {
  const mutation = (r?.responseBody as { response?: { bodyMutation?: { body?: Buffer } } } | undefined)?.response?.bodyMutation;
  return mutation?.body ? Buffer.from(mutation.body).toString('utf8') : undefined;
}

export function setHeaderOf(r: Msg | undefined, kind: string, name: string): string | undefined {
  const hm = (r?.[kind] as { response?: { headerMutation?: { setHeaders?: { header: { key: string; rawValue?: Buffer; value?: string } }[] } } } | undefined)?.response?.headerMutation;
  const h = hm?.setHeaders?.find((x) => x.header.key === name)?.header;
  return h ? (h.rawValue ? Buffer.from(h.rawValue).toString() : h.value) : undefined;
}

export function immediateOf(r: Msg | undefined): { status: number; body: { error: { code: string } } } | undefined {
  const i = r?.immediateResponse as { status: { code: number | string }; body: Buffer } | undefined;
  const code = typeof i?.status.code === 'string' ? protoRoot().lookupEnum('envoy.type.v3.StatusCode').values[i.status.code] : i?.status.code;
  return i ? { status: Number(code), body: JSON.parse(Buffer.from(i.body).toString()) } : undefined;
}
