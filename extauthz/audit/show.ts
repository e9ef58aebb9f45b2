/** `audit show`: a readable summary of audit files (counts by decision, tenant, rule, hour, masking outcome, alert). */
import { forEachLine } from './verify-files.js';

export interface AuditSummary {
  records: number;
  chains: number;
  checkpoints: number;
  first?: string;
  last?: string;
  byDecision: Record<string, number>;
  byTenant: Record<string, number>;
  byRule: Record<string, number>;
  byCode: Record<string, number>;
  byHour: Record<string, number>;
  /** ext_proc masking records by outcome (masked | blocked | passed). */
  byMasking: Record<string, number>;
  /** Suspicious-activity alert records by signal (docs/alerts.md). */
  byAlert: Record<string, number>;
  /** Shadow mode: decision records carrying wouldDeny. */
  wouldDeny: WouldDenySummary;
}

export interface WouldDenySummary {
  records: number;
  /** Of those, the ones the enforcing decision allowed: what enforcing the shadow policy would newly deny. */
  allowedNow: number;
  /** By "policy rule" ((default) when no rule decided). */
  byRule: Record<string, number>;
  byTenant: Record<string, number>;
  byCode: Record<string, number>;
}

function bump(m: Record<string, number>, k: string): void {
  m[k] = (m[k] ?? 0) + 1;
}

export async function summarize(files: string[]): Promise<AuditSummary> {
  const s: AuditSummary = { records: 0, chains: 0, checkpoints: 0, byDecision: {}, byTenant: {}, byRule: {}, byCode: {}, byHour: {}, byMasking: {}, byAlert: {}, wouldDeny: { records: 0, allowedNow: 0, byRule: {}, byTenant: {}, byCode: {} } };
  const add = (text: string): void => {
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    if (e.type === 'chain-start') s.chains++;
    if (e.type === 'checkpoint') s.checkpoints++;
    if (e.type === 'masking') bump(s.byMasking, String(e.outcome));
    if (e.type === 'alert') bump(s.byAlert, `${String(e.signal)} ${String(e.tenant ?? '(no tenant)')}`);
    if (e.type === 'decision') addDecision(s, e);
  };
  for (const f of files) await forEachLine(f, add);
  return s;
}

function addDecision(s: AuditSummary, e: Record<string, unknown>): void {
  const time = String(e.time);
  s.records++;
  if (s.first === undefined || time < s.first) s.first = time;
  if (s.last === undefined || time > s.last) s.last = time;
  bump(s.byDecision, String(e.decision));
  bump(s.byTenant, String(e.tenant ?? '(none)'));
  bump(s.byRule, String(e.rule ?? '(none)'));
  bump(s.byCode, String(e.code ?? 'OK'));
  bump(s.byHour, `${time.slice(0, 13)}:00Z`);
  const w = e.wouldDeny;
  if (w && typeof w === 'object') addWouldDeny(s.wouldDeny, w as Record<string, unknown>, e);
}

function addWouldDeny(s: WouldDenySummary, w: Record<string, unknown>, e: Record<string, unknown>): void {
  s.records++;
  if (e.decision === 'allow') s.allowedNow++;
  bump(s.byRule, `${String(w.policy)} ${String(w.rule ?? '(default)')}`);
  bump(s.byTenant, String(e.tenant ?? '(none)'));
  bump(s.byCode, String(w.code));
}

function table(title: string, m: Record<string, number>, sortByKey = false): string {
  const rows = Object.entries(m).sort(sortByKey ? (a, b) => a[0].localeCompare(b[0]) : (a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const width = Math.max(0, ...rows.map(([k]) => k.length));
  return [`${title}:`, ...rows.map(([k, n]) => `  ${k.padEnd(width)}  ${n}`)].join('\n');
}

export function formatSummary(s: AuditSummary): string {
  return [
    `records: ${s.records} in ${s.chains} chain(s), ${s.checkpoints} checkpoint(s)`,
    `from ${s.first ?? '-'} to ${s.last ?? '-'}`,
    table('by decision', s.byDecision),
    table('by code', s.byCode),
    table('by tenant', s.byTenant),
    table('by rule', s.byRule),
    table('by hour', s.byHour, true),
    table('masking outcomes', s.byMasking),
    table('alerts (signal, tenant)', s.byAlert),
    ...(s.wouldDeny.records > 0 ? wouldDenyTables(s.wouldDeny) : []),
  ].join('\n');
}

function wouldDenyTables(w: WouldDenySummary): string[] {
  return [
    `shadow: ${w.records} would-be denial(s), ${w.allowedNow} of them allowed now`,
    table('would deny by rule (policy rule)', w.byRule),
    table('would deny by tenant', w.byTenant),
    table('would deny by code', w.byCode),
  ];
}
