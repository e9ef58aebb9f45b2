/**
 * What the operator keeps of a Secret: stand-ins, never the values. Each value is judged once, as
 * it arrives from the API server, by the engine's own readers (an API-key digest, a non-empty
 * client secret, a revocation list), and replaced by a value the engine judges the same way under
 * every use a Tenant can make of it: the same digest validity (equal digests stay equal, through a
 * per-process HMAC, since two tenants sharing a key is a conflict), the same emptiness, the same
 * revocation verdict and message. The informer caches only the reduced object (no data, no
 * annotations: kubectl's last-applied annotation repeats the data), so the Secret's content lives
 * only while one event is decoded. ADR 0013.
 */
import { createHmac } from 'node:crypto';
import { secretValues } from '../extauthz/policy/load.js';
import { parseRevocationList, REVOCATION_LIMITS, RevocationListError } from '../extauthz/policy/revocation.js';
import { keyDigest } from '../extauthz/policy/tenants.js';
import type { Raw } from '../kube/objects.js';

/** The engine's verdict on one value under each use: digest (or not), empty, and the revocation parser's message. */
interface ValueVerdict {
  digest: boolean;
  empty: boolean;
  revocation: string;
}

function revocationVerdict(v: string): string {
  try {
    parseRevocationList(v, '');
    return 'ok';
  } catch (err) {
    if (err instanceof RevocationListError) return err.message;
    throw err;
  }
}

function verdictOf(v: string): ValueVerdict {
  return { digest: keyDigest(v) !== undefined, empty: v === '', revocation: revocationVerdict(v) };
}

function sameVerdict(a: ValueVerdict, b: ValueVerdict): boolean {
  return a.digest === b.digest && a.empty === b.empty && a.revocation === b.revocation;
}

const REVOCATION_FIELDS = new Set(['jti', 'sub', 'apiKeys']);
// A timestamp's characters only: an `until` outside them fails the parser's RFC 3339 check anyway.
const TIME_CHARS = /^[0-9TtZz:.+-]{1,40}$/;

/** An id as the parser sees it: empty, too long, or fine (the parser never reads more of it). */
function idStandIn(v: unknown): unknown {
  if (typeof v !== 'string') return null;
  if (v === '') return '';
  return Buffer.byteLength(v, 'utf8') > REVOCATION_LIMITS.idBytes ? 'x'.repeat(REVOCATION_LIMITS.idBytes + 1) : 'x';
}

function entryStandIn(e: unknown): unknown {
  if (typeof e === 'string') return idStandIn(e);
  if (!e || typeof e !== 'object' || Array.isArray(e)) return null;
  const out: Record<string, unknown> = {};
  let unknown = 0;
  for (const [k, v] of Object.entries(e)) {
    if (k === 'id') out.id = typeof v === 'string' ? idStandIn(v) : null;
    else if (k === 'until') out.until = typeof v === 'string' ? (TIME_CHARS.test(v) ? v : 'x') : null;
    else out[`?${unknown++}`] = null;
  }
  return out;
}

/** The list with every id replaced and its shape kept (the parser's messages depend only on shape, lengths and times). */
function documentStandIn(doc: unknown): unknown {
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return null;
  const out: Record<string, unknown> = {};
  let unknown = 0;
  for (const [k, v] of Object.entries(doc)) {
    if (!REVOCATION_FIELDS.has(k)) out[`?${unknown++}`] = null;
    else out[k] = Array.isArray(v) ? v.map(entryStandIn) : null;
  }
  return out;
}

function jsonStandIn(v: string): string | undefined {
  if (Buffer.byteLength(v, 'utf8') > REVOCATION_LIMITS.bytes) return undefined;
  try {
    return JSON.stringify(documentStandIn(JSON.parse(v)));
  } catch {
    return 'x';
  }
}

export class SecretStandIns {
  constructor(
    /** Per process: equal digests map to equal stand-ins, and nothing outside this process can link them back. */
    private readonly key: Buffer,
  ) {}

  /** The Secret as the operator's cache keeps it: metadata the engine reads, and one stand-in per key. */
  reduce(s: Raw): Raw {
    const m = s.metadata ?? {};
    const stringData: Record<string, string> = {};
    for (const [k, v] of Object.entries(secretValues(s.data, s.stringData))) stringData[k] = this.standIn(v);
    const metadata = {
      ...(m.name !== undefined ? { name: m.name } : {}),
      ...(m.namespace !== undefined ? { namespace: m.namespace } : {}),
      ...(m.uid !== undefined ? { uid: m.uid } : {}),
      ...(m.resourceVersion !== undefined ? { resourceVersion: m.resourceVersion } : {}),
      ...(m.creationTimestamp !== undefined ? { creationTimestamp: m.creationTimestamp } : {}),
      ...(m.labels !== undefined ? { labels: m.labels } : {}),
    };
    return { apiVersion: 'v1', kind: 'Secret', metadata, stringData };
  }

  /** A value the engine judges as it judges `v`, holding none of it. */
  standIn(v: string): string {
    const want = verdictOf(v);
    for (const candidate of this.candidates(v, want)) {
      if (candidate !== undefined && sameVerdict(verdictOf(candidate), want)) return candidate;
    }
    // No stand-in reproduces the verdict (a value over the 1 MiB Secret limit, or a digest whose
    // keyed hash happens to parse differently): a fixed value of the same length class would hide
    // a problem, so status is decided on the value itself, and it is kept.
    return v;
  }

  private *candidates(v: string, want: ValueVerdict): Generator<string | undefined> {
    if (want.empty) yield '';
    const digest = keyDigest(v);
    if (digest !== undefined) {
      const mac = createHmac('sha256', this.key).update(digest).digest('hex');
      yield mac;
      // A digest of decimal digits only parses as a JSON number: its stand-in must, too.
      yield `1${[...mac.slice(1)].map((c) => String(parseInt(c, 16) % 10)).join('')}`;
      return;
    }
    if (want.revocation === 'ok') yield '{}';
    yield jsonStandIn(v);
  }
}
