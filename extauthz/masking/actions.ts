/**
 * The masking actions, each compiled once from its directive into a value transform. Every
 * action fails closed: a value an action cannot meaningfully transform (a partial mask on an
 * object, a date generalisation of a number) is redacted, never passed through.
 */
import { createHmac, type KeyObject } from 'node:crypto';
import type { MaskDirective } from '../policy/model.js';

/** Returned by a transform to delete the member (or array element). */
export const REMOVE: unique symbol = Symbol('remove');
export type Transform = (value: unknown) => unknown;

export const DEFAULT_REPLACEMENT = '***';

export class MaskActionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MaskActionError';
  }
}

/** Scalars as text: strings as they are, numbers in their JSON form; anything else has none. */
function asText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

/** Code points, so a mask never splits a surrogate pair. */
function codePoints(s: string): string[] {
  return Array.from(s);
}

const SURROGATE = /[\uD800-\uDFFF]/;

function partial(d: MaskDirective): Transform {
  const first = d.keepFirst ?? 0;
  const last = d.keepLast ?? 0;
  return (v) => {
    const text = asText(v);
    if (text === undefined) return DEFAULT_REPLACEMENT;
    // Without surrogates every UTF-16 unit is a code point: slice the string, no array.
    if (!SURROGATE.test(text)) {
      const n = text.length;
      if (first + last >= n) return '*'.repeat(Math.max(n, 1));
      return text.slice(0, first) + '*'.repeat(n - first - last) + (last > 0 ? text.slice(n - last) : '');
    }
    const cp = codePoints(text);
    // Keeping as many characters as the value has would reveal it whole: mask it all instead.
    if (first + last >= cp.length) return '*'.repeat(Math.max(cp.length, 1));
    return cp.slice(0, first).join('') + '*'.repeat(cp.length - first - last) + (last > 0 ? cp.slice(-last).join('') : '');
  };
}

/** HMAC-SHA-256 with the configured key: the same value gives the same pseudonym everywhere. */
export function pseudonym(key: Buffer | KeyObject, v: unknown): string {
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  return createHmac('sha256', key).update(text, 'utf8').digest('hex').slice(0, 32);
}

const ISO_DATE = /^(\d{4})-(\d{2})(?:-\d{2}(?:[T ].*)?)?$/;

function generalizeDate(unit: 'year' | 'month'): Transform {
  return (v) => {
    const m = typeof v === 'string' ? ISO_DATE.exec(v) : null;
    if (!m) return DEFAULT_REPLACEMENT;
    return unit === 'year' ? m[1] : `${m[1]}-${m[2]}`;
  };
}

function bucket(size: number): Transform {
  return (v) => {
    const n = typeof v === 'number' ? v : typeof v === 'string' && v.trim() !== '' ? Number(v) : Number.NaN;
    if (!Number.isFinite(n)) return DEFAULT_REPLACEMENT;
    const low = Math.floor(n / size) * size;
    return `[${low},${low + size})`;
  };
}

function prefix(length: number): Transform {
  return (v) => {
    const text = asText(v);
    if (text === undefined) return DEFAULT_REPLACEMENT;
    if (!SURROGATE.test(text)) return length >= text.length ? DEFAULT_REPLACEMENT : text.slice(0, length);
    const cp = codePoints(text);
    if (length >= cp.length) return DEFAULT_REPLACEMENT;
    return cp.slice(0, length).join('');
  };
}

function generalize(d: MaskDirective): Transform {
  switch (d.to) {
    case 'year':
    case 'month':
      return generalizeDate(d.to);
    case 'bucket':
      if (d.bucketSize === undefined || !(d.bucketSize > 0)) throw new MaskActionError('generalize to bucket needs bucketSize > 0');
      return bucket(d.bucketSize);
    case 'prefix':
      if (d.prefixLength === undefined) throw new MaskActionError('generalize to prefix needs prefixLength');
      return prefix(d.prefixLength);
    default:
      throw new MaskActionError('generalize needs to: year, month, bucket or prefix');
  }
}

function checkPartial(d: MaskDirective): void {
  if (d.keepFirst === undefined && d.keepLast === undefined) throw new MaskActionError('partial needs keepFirst or keepLast');
  for (const n of [d.keepFirst, d.keepLast]) {
    if (n !== undefined && (!Number.isInteger(n) || n < 0 || n > 64)) throw new MaskActionError('keepFirst and keepLast are integers from 0 to 64');
  }
}

/** Compiles one directive's action. The hash key comes from configuration, never from policy. */
export function compileAction(d: MaskDirective, hashKey: () => Buffer | KeyObject): Transform {
  switch (d.action) {
    case 'remove':
      return () => REMOVE;
    case 'redact': {
      const r = d.replacement ?? DEFAULT_REPLACEMENT;
      return () => r;
    }
    case 'partial':
      checkPartial(d);
      return partial(d);
    case 'hash':
      return (v) => pseudonym(hashKey(), v);
    case 'generalize':
      return generalize(d);
    default:
      throw new MaskActionError(`unknown action "${String((d as { action: unknown }).action)}"`);
  }
}
