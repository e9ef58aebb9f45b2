/**
 * One ext_proc stream (one HTTP request/response), as a state machine that answers each message
 * Envoy sends with exactly one response of the matching kind. Request headers: find and verify
 * the signed directive (header and dynamic metadata must agree). Response headers: decide whether
 * the body can be masked. Response body: collect chunks (clearing each, so nothing unmasked goes
 * out), then send the masked body with its content-length. Whenever directives are present and
 * something fails, the answer is an immediate error response: unmasked data never leaks.
 */
import type { ErrorCode } from '../errors.js';
import type { MaskSet } from '../masking/engine.js';
import { DirectiveError, MASK_HEADER } from '../masking/token.js';
import { BODY_OFF, cont, headerMap, immediate, setHeader, trailers, type HttpBody, type HttpHeaders, type ProcessingRequest, type ProcessingResponse, type ProtoStructLike } from './messages.js';
import type { ExtProcSettings } from './settings.js';

type Mode = 'start' | 'pass' | 'mask' | 'done';

const JSON_TYPE = /^application\/(?:[\w.+-]*\+)?json\s*(?:;|$)/i;

/** The directive in the dynamic metadata ext_authz wrote: <any namespace>.portcullis.maskDirective. */
export function metadataDirective(md: ProcessingRequest['metadataContext']): string | undefined {
  for (const ns of Object.values(md?.filterMetadata ?? {})) {
    const v = directiveIn(ns?.fields?.portcullis?.structValue) ?? directiveIn(ns);
    if (v) return v;
  }
  return undefined;
}

function directiveIn(s: ProtoStructLike | undefined): string | undefined {
  return s?.fields?.maskDirective?.stringValue;
}

export class ProcessingStream {
  private mode: Mode = 'start';
  private masks?: MaskSet;
  private requestId = '';
  private chunks: Buffer[] = [];
  private size = 0;
  /** Set once an immediate response went out; the stream is over. */
  finished = false;

  constructor(private readonly settings: ExtProcSettings) {}

  handle(req: ProcessingRequest): ProcessingResponse {
    try {
      return this.dispatch(req);
    } catch (err) {
      this.settings.onError?.(err, this.requestId);
      return this.fail(err instanceof DirectiveError ? 'MASK_DIRECTIVE_INVALID' : 'MASKING_FAILED');
    }
  }

  private dispatch(req: ProcessingRequest): ProcessingResponse {
    if (req.requestHeaders) return this.onRequestHeaders(req.requestHeaders, req.metadataContext);
    if (req.requestBody) return cont('requestBody');
    if (req.requestTrailers) return trailers('requestTrailers');
    if (req.responseHeaders) return this.onResponseHeaders(req.responseHeaders);
    if (req.responseBody) return this.onResponseBody(req.responseBody);
    if (req.responseTrailers) return this.onResponseTrailers();
    throw new Error('empty ProcessingRequest');
  }

  private fail(code: ErrorCode): ProcessingResponse {
    this.mode = 'done';
    this.finished = true;
    this.chunks = [];
    return immediate(code, this.requestId);
  }

  private onRequestHeaders(h: HttpHeaders, md: ProcessingRequest['metadataContext']): ProcessingResponse {
    const headers = headerMap(h);
    this.requestId = headers.get('x-request-id') ?? headers.get('x-portcullis-request-id') ?? '';
    const fromHeader = headers.get(MASK_HEADER);
    const fromMetadata = metadataDirective(md);
    if (fromHeader !== undefined && fromMetadata !== undefined && fromHeader !== fromMetadata) throw new DirectiveError('malformed', 'header and metadata directives differ');
    const token = fromHeader ?? fromMetadata;
    if (token === undefined) {
      if (this.settings.missingDirective === 'block') throw new DirectiveError('malformed', 'no masking directive on this request');
      return this.pass('requestHeaders');
    }
    const claims = this.settings.verifier.verify(token, this.requestId || undefined, this.settings.clock());
    const set = this.settings.compile(claims);
    if (set.empty) return this.pass('requestHeaders');
    this.masks = set;
    this.mode = 'mask';
    return cont('requestHeaders');
  }

  private pass(kind: 'requestHeaders' | 'responseHeaders'): ProcessingResponse {
    this.mode = 'pass';
    return cont(kind, {}, BODY_OFF);
  }

  /** block → error; pass → the body goes through unmasked (the operator chose so). */
  private unmaskable(kind: 'responseHeaders', policy: 'pass' | 'block'): ProcessingResponse {
    return policy === 'block' ? this.fail('RESPONSE_NOT_MASKABLE') : this.pass(kind);
  }

  private onResponseHeaders(h: HttpHeaders): ProcessingResponse {
    if (this.mode !== 'mask') return cont('responseHeaders');
    if (h.endOfStream) {
      this.mode = 'done';
      return cont('responseHeaders');
    }
    const headers = headerMap(h);
    const encoding = headers.get('content-encoding');
    const json = JSON_TYPE.test(headers.get('content-type') ?? '') && (encoding === undefined || encoding === 'identity');
    if (!json) return this.unmaskable('responseHeaders', this.settings.nonJson);
    const length = Number(headers.get('content-length') ?? '0');
    if (length > this.settings.maxBodyBytes) return this.unmaskable('responseHeaders', this.settings.oversized);
    // The masked body has another length; it is set again with the body (buffered mode).
    return cont('responseHeaders', { headerMutation: { removeHeaders: ['content-length'] } });
  }

  private onResponseBody(b: HttpBody): ProcessingResponse {
    if (this.mode !== 'mask') return cont('responseBody');
    const chunk = Buffer.from(b.body ?? Buffer.alloc(0));
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.size > this.settings.maxBodyBytes) return this.oversizedBody();
    // Earlier chunks are cleared: only the masked whole ever leaves.
    if (!b.endOfStream) return cont('responseBody', { bodyMutation: { clearBody: true } });
    return this.maskBody();
  }

  private oversizedBody(): ProcessingResponse {
    if (this.settings.oversized === 'block') return this.fail('RESPONSE_NOT_MASKABLE');
    const original = Buffer.concat(this.chunks);
    this.chunks = [];
    this.mode = 'pass';
    return cont('responseBody', { bodyMutation: { body: original } });
  }

  private maskBody(): ProcessingResponse {
    const text = Buffer.concat(this.chunks).toString('utf8');
    this.chunks = [];
    this.mode = 'done';
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      if (this.settings.nonJson === 'block') return this.fail('RESPONSE_NOT_MASKABLE');
      return cont('responseBody', { bodyMutation: { body: Buffer.from(text) } });
    }
    const masked = Buffer.from(JSON.stringify(this.masks!.apply(doc)), 'utf8');
    this.settings.onMasked?.(masked.length);
    return cont('responseBody', { headerMutation: { setHeaders: [setHeader('content-length', String(masked.length))] }, bodyMutation: { body: masked } });
  }

  private onResponseTrailers(): ProcessingResponse {
    // Trailers while chunks are held: the body never ended, so it cannot be masked as a whole.
    if (this.mode === 'mask' && this.chunks.length > 0) return this.fail('MASKING_FAILED');
    return trailers('responseTrailers');
  }
}
