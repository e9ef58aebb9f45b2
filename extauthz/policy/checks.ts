/**
 * Cross-object checks: what no single object's schema can say, decided when objects load so a
 * request never discovers it. Each check is a pure function over compiled objects and returns
 * PolicyErrors (severity error or warning) on the object that must change:
 *
 * - identity overlaps (POLICY_CONFLICT, error on the newer tenant): two tenants of a namespace
 *   that one credential could bind to (same JWT issuer and audience, overlapping SPIFFE ID or
 *   subject patterns, the same API key) would answer every request of both with
 *   AMBIGUOUS_PRINCIPAL;
 * - host claims (POLICY_CONFLICT, error on the newer policy): the same host and path shape in
 *   two policies, in any namespace;
 * - undefined quotas (POLICY_REFERENCE): a rule naming a tenant quota that no tenant it applies
 *   to defines (error), or that some of them do not (warning: their requests get 503);
 * - unknown tenants (POLICY_INVALID) named in a rule's principals;
 * - unreachable rules (POLICY_UNREACHABLE, warning): an allow rule covered by an earlier
 *   unconditional allow rule or by an unconditional deny rule.
 *
 * "Newer" is the age order of the snapshot (creationTimestamp, then namespace/name), so every
 * replica resolves a conflict the same way whatever order it saw the objects in.
 */
import { PolicyError, type SourceLocation } from '../errors.js';
import type { PathTemplate } from './paths.js';
import type { PrincipalType, TenantSpec } from './model.js';

/** The parts of a compiled rule the checks read (CompiledRule fits). */
export interface RuleShape {
  name: string;
  index: number;
  effect: 'allow' | 'deny';
  methods?: ReadonlySet<string>;
  paths?: readonly PathTemplate[];
  types?: ReadonlySet<PrincipalType>;
  tenants?: ReadonlySet<string>;
  anonymous: boolean;
  requireMfa: boolean;
  requirePurpose?: boolean;
  when?: unknown;
  quotas?: readonly ({ kind: 'inline' } | { kind: 'tenant'; name: string })[];
}

/** The parts of a compiled tenant the identity checks read (tenants.ts's CompiledTenant fits). */
export interface IdentityClaimant {
  key: string;
  name: string;
  spec: TenantSpec;
  jwt?: { issuer: string; audiences: readonly string[] };
  apiKeys?: { header: string; digests: readonly { id: string; digest: Buffer }[] };
}

export interface TenantEntry<T extends IdentityClaimant = IdentityClaimant> {
  tenant: T;
  /** creationTimestamp, then namespace/name: the snapshot's age order. */
  age: string;
  where: SourceLocation;
}

function byAge<T extends { age: string }>(a: T, b: T): number {
  return a.age < b.age ? -1 : a.age > b.age ? 1 : 0;
}

// ---- identity overlaps -------------------------------------------------------------------------

/** A glob within one segment or string: `*` stands for any run of characters. */
function globsOverlap(a: string, b: string): boolean {
  const sa = a.indexOf('*');
  const sb = b.indexOf('*');
  if (sa < 0 && sb < 0) return a === b;
  if (sa < 0) return globMatch(b, a);
  if (sb < 0) return globMatch(a, b);
  // Both have a star: the stars can absorb any middle, so only the fixed ends must agree.
  const [pa, pb] = [a.slice(0, sa), b.slice(0, sb)];
  const [xa, xb] = [a.slice(a.lastIndexOf('*') + 1), b.slice(b.lastIndexOf('*') + 1)];
  return (pa.startsWith(pb) || pb.startsWith(pa)) && (xa.endsWith(xb) || xb.endsWith(xa));
}

/**
 * `*` matches any run of characters. Decided piece by piece (the fixed pieces in order, leftmost
 * first, which is exact for star-only globs) instead of through a RegExp: a Tenant author's glob
 * must never reach a backtracking engine (`a*a*a*…b` is exponential there).
 */
export function globMatch(glob: string, text: string): boolean {
  const pieces = glob.split('*');
  const first = pieces[0]!;
  if (pieces.length === 1) return glob === text;
  const last = pieces[pieces.length - 1]!;
  if (text.length < first.length + last.length || !text.startsWith(first) || !text.endsWith(last)) return false;
  let at = first.length;
  const end = text.length - last.length;
  for (const piece of pieces.slice(1, -1)) {
    const found = text.indexOf(piece, at);
    if (found < 0 || found + piece.length > end) return false;
    at = found + piece.length;
  }
  return true;
}

interface SpiffeShape {
  segments: string[];
  /** A trailing /*: one or more further segments. */
  rest: boolean;
}

function spiffeShape(pattern: string): SpiffeShape {
  const rest = pattern.endsWith('/*');
  const body = rest ? pattern.slice(0, -2) : pattern;
  return { segments: body.replace(/^spiffe:\/\//, '').split('/'), rest };
}

/** True when some SPIFFE ID matches both patterns (exact IDs, * within a segment, trailing /*). */
export function spiffePatternsOverlap(a: string, b: string): boolean {
  const p = spiffeShape(a);
  const q = spiffeShape(b);
  const common = Math.min(p.segments.length, q.segments.length);
  for (let i = 0; i < common; i++) if (!globsOverlap(p.segments[i]!, q.segments[i]!)) return false;
  if (p.rest && q.rest) return true;
  if (p.rest) return q.segments.length > p.segments.length;
  if (q.rest) return p.segments.length > q.segments.length;
  return p.segments.length === q.segments.length;
}

/** Subject patterns compare case-insensitively; * is treated as any run (a superset of its real reach). */
export function subjectPatternsOverlap(a: string, b: string): boolean {
  return globsOverlap(a.toLowerCase(), b.toLowerCase());
}

function jwtOverlap(a: IdentityClaimant, b: IdentityClaimant): string | undefined {
  if (!a.jwt || !b.jwt || a.jwt.issuer !== b.jwt.issuer) return undefined;
  const shared = a.jwt.audiences.find((x) => b.jwt!.audiences.includes(x));
  return shared === undefined ? undefined : `both accept JWT issuer ${a.jwt.issuer} with audience ${shared}`;
}

function mtlsOverlap(a: IdentityClaimant, b: IdentityClaimant): string | undefined {
  const ma = a.spec.identity.mtls;
  const mb = b.spec.identity.mtls;
  if (!ma || !mb) return undefined;
  for (const x of ma.spiffeIds ?? []) {
    const y = (mb.spiffeIds ?? []).find((p) => spiffePatternsOverlap(x, p));
    if (y !== undefined) return x === y ? `both bind SPIFFE ID pattern ${x}` : `SPIFFE ID patterns ${x} and ${y} overlap`;
  }
  for (const x of ma.subjects ?? []) {
    const y = (mb.subjects ?? []).find((p) => subjectPatternsOverlap(x, p));
    if (y !== undefined) return `subject patterns ${x} and ${y} overlap`;
  }
  return undefined;
}

function apiKeyOverlap(a: IdentityClaimant, b: IdentityClaimant): string | undefined {
  if (!a.apiKeys || !b.apiKeys || a.apiKeys.header !== b.apiKeys.header) return undefined;
  const digests = new Set(a.apiKeys.digests.map((d) => d.digest.toString('hex')));
  const shared = b.apiKeys.digests.find((d) => digests.has(d.digest.toString('hex')));
  return shared ? `both accept the same API key (${a.apiKeys.header}, key id ${shared.id})` : undefined;
}

/** Opaque bearer tokens carry no issuer: only one tenant of a namespace may introspect them. */
function opaqueOverlap(a: IdentityClaimant, b: IdentityClaimant): string | undefined {
  const opaque = (t: IdentityClaimant): boolean => t.spec.identity.introspection !== undefined && (t.spec.identity.introspection.mode ?? 'opaque') !== 'jwt';
  return opaque(a) && opaque(b) ? 'both introspect opaque bearer tokens (introspection mode opaque or both)' : undefined;
}

/** Why one credential could bind to both tenants, or undefined. */
export function identityOverlap(a: IdentityClaimant, b: IdentityClaimant): string | undefined {
  return jwtOverlap(a, b) ?? mtlsOverlap(a, b) ?? apiKeyOverlap(a, b) ?? opaqueOverlap(a, b);
}

/**
 * The tenants of one namespace in age order, each kept only when no older kept tenant shares an
 * identity with it; the refused ones get a POLICY_CONFLICT naming both and what they share.
 */
export function resolveIdentityOverlaps<T extends IdentityClaimant>(entries: readonly TenantEntry<T>[]): { kept: TenantEntry<T>[]; problems: PolicyError[] } {
  const kept: TenantEntry<T>[] = [];
  const problems: PolicyError[] = [];
  for (const e of [...entries].sort(byAge)) {
    const clash = firstClash(kept, e);
    if (clash) problems.push(clash);
    else kept.push(e);
  }
  return { kept, problems };
}

/** The conflict of e with the first kept tenant it shares an identity with, or undefined. */
export function firstClash(kept: readonly TenantEntry[], e: TenantEntry): PolicyError | undefined {
  for (const k of kept) {
    if (k.tenant.name === e.tenant.name) return new PolicyError('POLICY_CONFLICT', `duplicate Tenant ${e.tenant.key}`, e.where);
    const why = identityOverlap(k.tenant, e.tenant);
    if (why) {
      const message = `tenants ${k.tenant.name} and ${e.tenant.name} ${why}: a principal would match both (AMBIGUOUS_PRINCIPAL); the newer tenant ${e.tenant.name} is refused`;
      return new PolicyError('POLICY_CONFLICT', message, { ...e.where, path: '/spec/identity' });
    }
  }
  return undefined;
}

// ---- host claims --------------------------------------------------------------------------------

/** The parts of a compiled policy the host check reads (CompiledPolicy fits). */
export interface HostClaimant {
  key: string;
  age: string;
  hosts: readonly string[];
  rules: readonly { paths?: readonly PathTemplate[] }[];
  /** Shadow policies claim among themselves: one may shadow an enforcing policy's host and path. */
  mode?: 'enforce' | 'shadow';
}

const claimCache = new WeakMap<HostClaimant, readonly string[]>();

/** Every host × path shape a policy claims, as "host shape" (computed once per compiled policy). */
export function hostClaims(p: HostClaimant): readonly string[] {
  let claims = claimCache.get(p);
  if (!claims) {
    claims = computeClaims(p);
    claimCache.set(p, claims);
  }
  return claims;
}

function computeClaims(p: HostClaimant): string[] {
  const shapes = new Set<string>();
  for (const r of p.rules) {
    if (!r.paths) shapes.add('/**');
    else for (const t of r.paths) shapes.add(t.shape);
  }
  const tag = p.mode === 'shadow' ? ' shadow' : '';
  return p.hosts.flatMap((h) => [...shapes].map((s) => `${h} ${s}${tag}`));
}

/**
 * Claims already owned by accepted policies, in age order. `claim` accepts a policy when none of
 * its host × path shapes is owned by an older accepted policy, or returns the conflict.
 */
export class HostClaims {
  private readonly owners = new Map<string, string>();

  conflict(p: HostClaimant): PolicyError | undefined {
    for (const c of hostClaims(p)) {
      const owner = this.owners.get(c);
      if (owner !== undefined && owner !== p.key) {
        const [host, shape, shadow] = c.split(' ') as [string, string, string?];
        return new PolicyError('POLICY_CONFLICT', `host ${host} path ${shape} is already claimed by the older ${shadow ? 'shadow ' : ''}policy ${owner}; this policy is refused until one of them changes`, { object: `ApiPolicy ${p.key}`, path: '/spec/hosts' });
      }
    }
    return undefined;
  }

  /** Records the claims of an accepted policy. */
  add(p: HostClaimant): void {
    for (const c of hostClaims(p)) if (!this.owners.has(c)) this.owners.set(c, p.key);
  }
}

// ---- references: tenants and quotas -------------------------------------------------------------

/** A tenant as the reference checks read it (CompiledTenant fits). */
interface ReferencedTenant {
  name: string;
  principalType: PrincipalType;
  quotas?: ReadonlyMap<string, unknown>;
}

export interface TenantView {
  byName: ReadonlyMap<string, ReferencedTenant>;
}

/** The tenants a rule can apply to: its tenant list and principal types, within the namespace. */
function applicableTenants(rule: RuleShape, dir: TenantView): ReferencedTenant[] {
  return [...dir.byName.values()].filter((t) => (!rule.tenants || rule.tenants.has(t.name)) && (!rule.types || rule.types.has(t.principalType)));
}

function quotaProblems(rule: RuleShape, dir: TenantView, at: SourceLocation): PolicyError[] {
  const out: PolicyError[] = [];
  const tenants = applicableTenants(rule, dir);
  (rule.quotas ?? []).forEach((q, i) => {
    if (q.kind !== 'tenant') return;
    const where = { ...at, path: `/spec/rules/${rule.index}/quotas/${i}/name`, rule: rule.name };
    const missing = tenants.filter((t) => !t.quotas?.has(q.name)).map((t) => t.name);
    if (tenants.length === 0 || missing.length === tenants.length) {
      const scope = tenants.length === 0 ? 'no tenant in the namespace matches the rule\'s principals' : `none of ${missing.join(', ')} defines it`;
      out.push(new PolicyError('POLICY_REFERENCE', `quota "${q.name}" is not defined by any tenant the rule applies to (${scope}); every allowed request would fail with QUOTA_UNAVAILABLE`, where));
    } else if (missing.length > 0) {
      out.push(new PolicyError('POLICY_REFERENCE', `quota "${q.name}" is not defined by tenant(s) ${missing.join(', ')}: their requests would fail with QUOTA_UNAVAILABLE`, where, { severity: 'warning' }));
    }
  });
  return out;
}

/** Unknown tenants and undefined quotas of a policy's rules against its namespace's tenants. */
export function referenceProblems(rules: readonly RuleShape[], namespace: string, dir: TenantView, at: SourceLocation): PolicyError[] {
  const out: PolicyError[] = [];
  for (const rule of rules) {
    for (const t of rule.tenants ?? []) {
      if (!dir.byName.has(t)) out.push(new PolicyError('POLICY_INVALID', `unknown tenant "${t}" in namespace ${namespace}`, { ...at, path: `/spec/rules/${rule.index}/principals/tenants`, rule: rule.name }));
    }
    if (rule.effect === 'allow') out.push(...quotaProblems(rule, dir, at));
  }
  return out;
}

// ---- unreachable rules --------------------------------------------------------------------------

function subset<T>(inner: ReadonlySet<T> | undefined, outer: ReadonlySet<T> | undefined): boolean {
  if (!outer) return true;
  if (!inner) return false;
  for (const x of inner) if (!outer.has(x)) return false;
  return true;
}

/** True when every path template b matches is matched by template a. */
export function templateCovers(a: PathTemplate, b: PathTemplate): boolean {
  if (a.segments.length > b.segments.length) return false;
  for (let i = 0; i < a.segments.length; i++) {
    const sa = a.segments[i]!;
    const sb = b.segments[i]!;
    if (sa.kind === 'literal' && !(sb.kind === 'literal' && sb.value === sa.value)) return false;
  }
  if (a.rest) return true;
  return !b.rest && a.segments.length === b.segments.length;
}

function pathsCover(a: RuleShape, b: RuleShape): boolean {
  if (!a.paths) return true;
  if (!b.paths) return false;
  return b.paths.every((tb) => a.paths!.some((ta) => templateCovers(ta, tb)));
}

/** Matches anonymous requests (authorize.ts: an unscoped deny covers everyone). */
function matchesAnonymous(r: RuleShape): boolean {
  return r.anonymous || (r.effect === 'deny' && !r.types && !r.tenants);
}

/** An allow rule that requires MFA or a purpose covers only rules that require as much. */
function requirementsCover(a: RuleShape, b: RuleShape): boolean {
  if (a.effect !== 'allow') return true;
  return (!a.requireMfa || b.requireMfa) && (a.requirePurpose !== true || b.requirePurpose === true);
}

/** True when rule a matches every request rule b matches, whatever the request. */
export function ruleCovers(a: RuleShape, b: RuleShape): boolean {
  if (a.when !== undefined) return false;
  if (!requirementsCover(a, b)) return false;
  if (matchesAnonymous(b) && !matchesAnonymous(a)) return false;
  return subset(b.methods, a.methods) && subset(b.types, a.types) && subset(b.tenants, a.tenants) && pathsCover(a, b);
}

/** Warnings for allow rules that can never decide: covered by an earlier allow or by any deny. */
export function unreachableRules(rules: readonly RuleShape[], at: SourceLocation): PolicyError[] {
  const out: PolicyError[] = [];
  const denies = rules.filter((r) => r.effect === 'deny');
  rules.forEach((rule, j) => {
    if (rule.effect !== 'allow') return;
    const deny = denies.find((d) => ruleCovers(d, rule));
    const earlier = deny ? undefined : rules.slice(0, j).find((r) => r.effect === 'allow' && ruleCovers(r, rule));
    const by = deny ? `the deny rule ${deny.name} matches every request it matches` : earlier ? `the earlier rule ${earlier.name} matches every request it matches and decides first` : undefined;
    if (by) out.push(new PolicyError('POLICY_UNREACHABLE', `rule ${rule.name} can never allow a request: ${by}`, { ...at, path: `/spec/rules/${rule.index}`, rule: rule.name }, { severity: 'warning' }));
  });
  return out;
}
