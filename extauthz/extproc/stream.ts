/**
 * One ext_proc stream (one HTTP request/response), as a state machine that answers each message
 * Envoy sends with exactly one response of the matching kind. Request headers: find and verify
 * the signed directive (header and dynamic metadata must agree). Response headers: decide whether
 * the body can be masked. Response body, BUFFERED (the documented filter configuration): the
 * first message is the whole body, also when its end_of_stream is false because trailers follow
 * (Envoy's onTrailers sends the buffered data with end_of_stream false); it is answered with the
 * masked body and its content-length, and trailers after it pass. STREAMED: chunks are collected
 * (each cleared, so nothing unmasked goes out) and the last one carries the masked whole.
 * Whenever directives are present and something fails or arrives out of order, the answer is an
 * immediate error response: unmasked data never leaks. Each outcome (masked, blocked, passed
 * unmasked by operator policy) is recorded once in the injected audit trail; a stream whose set
 * is empty, or whose response has no body, has nothing to record.
 */
import type { ErrorCode } from '../errors.js';
import type { MaskSet } from '../masking/engine.js';
import { DirectiveError, MASK_HEADER } from '../masking/token.js';
import { BODY_OFF, cont, headerMap, immediate, setHeader, trailers, type HttpBody, type HttpHeaders, type ProcessingRequest, type ProcessingResponse, type ProtoStructLike } from './messages.js';
import type { ExtProcSettings } from './settings.js';
import type { MaskingFields } from '../audit/record.js';
import type { DirectiveClaims } from '../masking/token.js';

/** start → (pass | mask) → masked; done: the response ended at its headers, or the stream failed. */
type Mode = 'start' | 'pass' | 'mask' | 'masked' | 'done';

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

/** A string ext_authz put in its dynamic metadata (portcullis.policy, portcullis.rule), for audit. */
function metadataString(md: ProcessingRequest['metadataContext'], key: string): string | null {
  for (const ns of Object.values(md?.filterMetadata ?? {})) {
    const v = stringIn(ns?.fields?.portcullis?.structValue, key) ?? stringIn(ns, key);
    if (v) return v;
  }
  return null;
}

function stringIn(s: ProtoStructLike | undefined, key: string): string | undefined {
  return s?.fields?.[key]?.stringValue;
}

export class ProcessingStream {
  private mode: Mode = 'start';
  private masks?: MaskSet;
  private requestId = '';
  private chunks: Buffer[] = [];
  private size = 0;
  private bodySeen = false;
  private claims?: DirectiveClaims;
  private policy: string | null = null;
  private rule: string | null = null;
  private recorded?: MaskingFields['outcome'];
  /** Fields of masks that matched nothing in the response body (audited). */
  private unmatched?: string[];
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
    this.record('blocked', code, this.bodySeen ? this.size : null, this.bodySeen ? 0 : null);
    return immediate(code, this.requestId);
  }

  /** The audit record of this stream's outcome: directive paths and actions, sizes, never content. */
  private record(outcome: MaskingFields['outcome'], code: ErrorCode | null, bytesIn: number | null, bytesOut: number | null): void {
    const audit = this.settings.audit;
    // One record per stream, except that a later failure (a body after the masked one) is recorded too.
    if (!audit || (this.recorded && (outcome !== 'blocked' || this.recorded === 'blocked'))) return;
    this.recorded = outcome;
    const fields: MaskingFields = {
      requestId: this.requestId,
      policy: this.policy,
      rule: this.rule,
      masks: (this.claims?.masks ?? []).map((m) => ({ field: String(m.field), action: String(m.action) })),
      allowFields: this.claims?.allowFields ? this.claims.allowFields.map(String) : null,
      outcome,
      code,
      bytesIn,
      bytesOut,
      ...(this.unmatched ? { unmatched: this.unmatched } : {}),
    };
    const failed = (err: unknown): void => this.settings.onAuditError?.(err, this.requestId);
    try {
      audit.recordMasking(fields).catch(failed);
    } catch (err) {
      failed(err);
    }
  }

  private onRequestHeaders(h: HttpHeaders, md: ProcessingRequest['metadataContext']): ProcessingResponse {
    const headers = headerMap(h);
    this.requestId = headers.get('x-request-id') ?? headers.get('x-portcullis-request-id') ?? '';
    this.policy = metadataString(md, 'policy');
    this.rule = metadataString(md, 'rule');
    const fromHeader = headers.get(MASK_HEADER);
    const fromMetadata = metadataDirective(md);
    if (fromHeader !== undefined && fromMetadata !== undefined && fromHeader !== fromMetadata) throw new DirectiveError('malformed', 'header and metadata directives differ');
    const token = fromHeader ?? fromMetadata;
    if (token === undefined) {
      if (this.settings.missingDirective === 'block') throw new DirectiveError('malformed', 'no masking directive on this request');
      this.record('passed', null, null, null);
      return this.pass('requestHeaders');
    }
    const claims = this.settings.verifier.verify(token, this.requestId || undefined, this.settings.clock());
    const set = this.settings.compile(claims);
    if (set.empty) return this.pass('requestHeaders');
    this.claims = claims;
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
    if (policy === 'block') return this.fail('RESPONSE_NOT_MASKABLE');
    this.record('passed', null, null, null);
    return this.pass(kind);
  }

  /** A response before any request headers: no directive was seen (request_header_mode SKIP?). */
  private noDirective(kind: 'responseHeaders' | 'responseBody'): ProcessingResponse {
    if (this.settings.missingDirective === 'block') throw new DirectiveError('malformed', 'response processed before any request headers carried a directive');
    this.mode = 'pass';
    this.record('passed', null, null, null);
    return kind === 'responseHeaders' ? cont(kind, {}, BODY_OFF) : cont(kind);
  }

  private onResponseHeaders(h: HttpHeaders): ProcessingResponse {
    if (this.mode === 'start') return this.noDirective('responseHeaders');
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
    // The masked body has another length; it is set again with the body.
    return cont('responseHeaders', { headerMutation: { removeHeaders: ['content-length'] } });
  }

  private onResponseBody(b: HttpBody): ProcessingResponse {
    if (this.mode === 'start') return this.noDirective('responseBody');
    if (this.mode === 'pass') return cont('responseBody');
    // The body was answered already (buffered: one message), or the response had none: anything
    // more is not what the configured mode sends, and passing it on could leak it unmasked.
    if (this.mode !== 'mask') throw new Error(`response body after the ${this.mode === 'masked' ? 'masked body' : 'end of the response'}`);
    const chunk = Buffer.from(b.body ?? Buffer.alloc(0));
    this.bodySeen = true;
    this.chunks.push(chunk);
    this.size += chunk.length;
    if (this.size > this.settings.maxBodyBytes) return this.oversizedBody();
    // BUFFERED: this message is the complete body whatever its end_of_stream says.
    if (b.endOfStream || this.settings.responseBodyMode === 'buffered') return this.maskBody();
    // STREAMED: earlier chunks are cleared, only the masked whole ever leaves.
    return cont('responseBody', { bodyMutation: { clearBody: true } });
  }

  private oversizedBody(): ProcessingResponse {
    if (this.settings.oversized === 'block') return this.fail('RESPONSE_NOT_MASKABLE');
    const original = Buffer.concat(this.chunks);
    this.chunks = [];
    this.mode = 'pass';
    this.record('passed', null, original.length, original.length);
    return cont('responseBody', { bodyMutation: { body: original } });
  }

  private maskBody(): ProcessingResponse {
    const raw = Buffer.concat(this.chunks);
    this.chunks = [];
    let doc: unknown;
    try {
      doc = JSON.parse(raw.toString('utf8'));
    } catch {
      if (this.settings.nonJson === 'block') return this.fail('RESPONSE_NOT_MASKABLE');
      this.mode = 'pass';
      this.record('passed', null, this.size, this.size);
      return cont('responseBody', { bodyMutation: { body: raw } });
    }
    const report = this.masks!.applyWithReport(doc);
    if (report.unmatched.length > 0) {
      this.unmatched = report.unmatched.map((m) => String(m.field));
      const deny = report.unmatched.some((m) => m.onUnmatched === 'deny');
      this.settings.onUnmatched?.(report.unmatched.length, deny);
      // A mask that must match and did not: the response may carry the field elsewhere (renamed,
      // nested differently), so it is withheld rather than sent.
      if (deny) return this.fail('MASK_UNMATCHED');
    }
    const masked = Buffer.from(JSON.stringify(report.doc), 'utf8');
    this.mode = 'masked';
    this.settings.onMasked?.(masked.length);
    this.record('masked', null, this.size, masked.length);
    return cont('responseBody', { headerMutation: { setHeaders: [setHeader('content-length', String(masked.length))] }, bodyMutation: { body: masked } });
  }

  private onResponseTrailers(): ProcessingResponse {
    // Trailers while chunks are held (STREAMED): the body never ended, so it cannot be masked as a whole.
    if (this.mode === 'mask' && this.chunks.length > 0) return this.fail('MASKING_FAILED');
    return trailers('responseTrailers');
  }
}
