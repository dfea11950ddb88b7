// The text report of `dbus cutover` / `dbus rollback` (--json prints the report itself).
import { renderTimelineOf } from '../gz/index.js';
import type { DbusCutoverReport } from './cutover.js';

export function renderDbusCutover(r: DbusCutoverReport): string {
  const out: string[] = [];
  const what = r.command === 'cutover' ? 'cut over' : 'roll back';
  if (r.mode === 'noop') return r.message ?? 'nothing to do';
  if (r.route) out.push(`route record of ${r.move}: version ${r.route.version}, home ${r.route.home === 'target' ? `the target ${r.route.target.label}` : `the sources ${r.route.sources.map((s) => s.label).join(', ')}`} (${r.route.state})`);
  if (!r.result) {
    if (r.steps.length) {
      out.push('steps:');
      r.steps.forEach((s, i) => {
        out.push(`  ${i + 1}. ${s.name}${s.pointOfNoReturn ? ' (POINT OF NO RETURN)' : ''}: ${s.does}`);
        for (const q of s.sql ?? []) out.push(`       ${q}`);
      });
    }
    if (r.refusals.length) {
      out.push(`refused (${r.refusals.length}):`);
      for (const x of r.refusals) out.push(`  - ${x}`);
    } else if (r.message) out.push(r.message);
    else if (r.mode === 'plan') out.push(`preflight passed; nothing was changed (add --execute to ${what})`);
    return out.join('\n');
  }
  out.push(...renderTimelineOf(r.result));
  const w = r.window;
  if (w) {
    const f = (x: number | null) => (x === null ? '-' : `${x} ms`);
    out.push(`write-unavailable window of the moved tables: ${f(w.totalMs)} (fence ${f(w.blockMs)}, drain ${f(w.drainMs)}, verify ${f(w.verifyMs)}, flip ${f(w.flipMs)})`);
  }
  if (r.finalPositions) out.push(`final positions: ${Object.entries(r.finalPositions).map(([k, v]) => `${k} ${v || '(empty)'}`).join(', ')}`);
  if (r.reverseFrom !== null) out.push(`reverse stream from the target's ${r.reverseFrom || '(empty)'}`);
  if (r.verify?.differences.length) out.push(`rows that differ (${r.verify.differences.length}): ${r.verify.differences.slice(0, 10).map((d) => `${d.table} ${JSON.stringify(d.key)}: ${d.why}`).join('; ')}`);
  if (r.message && r.outcome !== 'done') out.push(r.message);
  return out.join('\n');
}
