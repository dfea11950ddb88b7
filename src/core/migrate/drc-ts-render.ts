// How `ezctl migrate drc-ts` looks on a terminal: per table and zone what the column is and
// what will be done, the SQL per zone (plan), or the steps with the algorithm each one got and
// the verification (--execute). --json gets the report object itself.
import { table } from '../ui/table.js';
import { describeProblem, type ColumnVerdict, type DrcTsReport, type ZoneVerdict } from './drc-ts.js';

const fmtMs = (ms: number) => (ms < 1000 ? `${ms}ms` : `${(ms / 1000).toFixed(1)}s`);

function zoneCell(v: ZoneVerdict | undefined): string {
  if (!v || v.state === 'absent') return 'no table';
  if (v.state === 'ok' || v.state === 'missing') return v.state;
  const c = v as ColumnVerdict;
  return `${c.refusal ? 'wrong, refused' : 'wrong'}: ${c.problems.map((p) => p.kind).join(', ')}`;
}

export function renderDrcTs(r: DrcTsReport): string {
  const out: string[] = [];
  out.push(`cluster ${r.cluster}, zones ${r.zones.join(', ')}: ${r.column} ${r.definition}`);
  if (r.tables.length === 0) {
    out.push(`all ${r.tablesSeen} tables have it in every zone: nothing to do`);
    return out.join('\n');
  }
  out.push(`fixed value for existing rows: '${r.fixedValue}' (UTC)`);
  out.push(table(['table', ...r.zones, 'plan'], r.tables.map((t) => [t.table, ...r.zones.map((z) => zoneCell(t.zones[z])), t.status === 'refused' ? 'REFUSED' : t.actions.join('; ')]), { stream: process.stdout }));
  if (r.ok.length) out.push(`${r.ok.length} table${r.ok.length === 1 ? '' : 's'} already right everywhere`);
  for (const t of r.tables) {
    for (const z of r.zones) {
      const v = t.zones[z];
      if (v && v.state === 'wrong') out.push(`${t.table} at ${z}: ${v.definition} — ${v.problems.map(describeProblem).join('; ')}`);
    }
    if (t.donor && t.receivers.length) out.push(`${t.table}: ${t.receivers.join(', ')} get${t.receivers.length === 1 ? 's' : ''} ${t.donor}'s ${r.column} values (by primary key), so every row has the same value in every zone`);
    for (const n of t.notes) out.push(`${t.table}: ${n}`);
    for (const x of t.refusals) out.push(`${t.table}: REFUSED at ${x}`);
  }
  if (r.refused) {
    out.push('refused: nothing was changed. Leave the refused tables out (--exclude) or fix them by hand, then run again.');
    return out.join('\n');
  }

  if (!r.execute) {
    out.push('', `SQL per zone; the steps run in the order of their numbers, zone after zone (-- comments tell the fallbacks):`);
    for (const z of r.zones) if (r.sql[z]) out.push('', ...r.sql[z]!);
    out.push('', 'nothing was changed; run again with --execute to apply it (then the definitions and values are verified)');
    return out.join('\n');
  }

  out.push(table(
    ['step', 'zone', 'table', 'what', 'algorithm', 'rows', 'time'],
    r.steps.map((s) => [
      String(s.n),
      s.zone,
      s.table,
      s.kind,
      s.result ? (s.result.algorithm ?? '-') + (s.result.refused?.length ? ` (${s.result.refused.map((x) => x.algorithm).join(', ')} refused)` : '') : 'not run',
      s.result?.rows !== undefined ? String(s.result.rows) : '',
      s.result ? fmtMs(s.result.ms) : '',
    ]),
    { stream: process.stdout },
  ));
  if (r.stopped) out.push(`stopped by \`ezctl migrate drc-ts stop\` after step ${r.stopped.stepsDone} of ${r.stopped.stepsTotal}: nothing verified; the same command with --value '${r.fixedValue}' continues from what each zone has`);
  for (const d of r.drc?.resumed ?? []) out.push(`DRC ${d.direction} had stopped on ${d.table} (no ${r.column} there): resumed`);
  for (const w of r.drc?.warnings ?? []) out.push(`warning: ${w}`);
  const v = r.verification;
  if (v) {
    const nodes = v.definitions.nodes;
    if (v.definitions.ok) out.push(`definitions verified: ${r.column} ${r.definition} on ${nodes.map((n) => n.node).join(', ')}`);
    for (const n of nodes.filter((x) => !x.ok)) for (const p of n.problems) out.push(`definition differs at ${n.node}: ${p}`);
    for (const w of v.definitions.warnings) out.push(`warning: ${w}`);
    if (!v.values.compared) out.push('values: one zone only, nothing to compare');
    else if (v.values.ok) out.push(`values verified: every row (${r.column} included) equal in ${r.zones.join(', ')}: ${v.values.rows} rows of ${v.values.tables.length} table${v.values.tables.length === 1 ? '' : 's'} (check run ${v.values.runId})`);
    else {
      for (const t of v.values.tables.filter((x) => x.missing + x.changed > 0)) {
        out.push(`values differ in ${t.table}: ${t.missing} missing, ${t.changed} changed`);
        for (const e of t.examples) out.push(`  ${e}`);
      }
      out.push(`the zones do not agree (check run ${v.values.runId}); \`ezctl repair --run ${v.values.runId}\` shows the fixes`);
    }
    out.push(v.ok ? 'verified' : 'NOT verified: see above');
  }
  return out.join('\n');
}
