// How `ezctl dbus` looks on a terminal (the same data is the --json document).
import type { DbusPlan } from './plan.js';
import type { StartReport } from './run.js';
import type { DbusStatus } from './spec.js';

const n = (x: number) => x.toLocaleString('en-US');

export function renderPlan(p: DbusPlan, execute = false): string {
  const out: string[] = [];
  out.push(`move ${p.name}: ${p.sources.map((s) => `${s.label} (${s.address}, ${s.version})`).join(', ')} -> ${p.target.label} (${p.target.address}, ${p.target.version})`);
  for (const t of p.tables) {
    out.push(`  ${t.target.padEnd(30)} <- ${t.sources.join(', ')}  ~${n(t.estimatedRows)} rows, key (${t.key.join(', ')})${t.exists ? `, exists${t.targetRows ? ' with rows' : ''}` : ', to create'}`);
  }
  if (p.sameServer.length) out.push(`  same server as the target: ${p.sameServer.join(', ')} (chunks copied with INSERT ... SELECT)`);
  if (p.ddl.length) {
    out.push('target DDL:');
    for (const d of p.ddl) out.push(`  ${d.split('\n').join('\n  ')};`);
  }
  if (p.laterIndexes.length) {
    out.push('built after the copy (one online ALTER per table; --no-defer-indexes keeps them during it):');
    for (const t of p.laterIndexes) out.push(`  ${t.target}: ${t.indexes.map((ix) => ix.definition).join(', ')}`);
  }
  if (p.refusals.length) {
    out.push('refused:');
    for (const r of p.refusals) out.push(`  - ${r}`);
  } else if (!execute) out.push('nothing changed; `ezctl dbus start NAME --execute` runs it');
  return out.join('\n');
}

export function renderStart(r: StartReport): string {
  if (!r.execute) return renderPlan(r.plan);
  const lines = [`move ${r.plan.name}: job ${r.jobId ?? ''} ${r.ended ?? r.state ?? ''}`];
  if (r.dropped?.length) lines.push(`target tables dropped: ${r.dropped.join(', ')}`);
  if (r.kept?.length) lines.push(`target tables kept (with the rows copied so far): ${r.kept.join(', ')}; \`ezctl dbus abort ${r.plan.name} --drop-target\` would drop them`);
  return lines.join('\n');
}

export function renderStatus(s: DbusStatus): string {
  const out = [`move ${s.name}: ${s.state}${s.jobId ? ` (job ${s.jobId}, ${s.holder})` : ''}${s.conflicts ? `, ${s.conflicts} conflicts` : ''}`];
  if (s.error) out.push(`error: ${s.error}`);
  for (const x of s.sources) {
    out.push(`  source ${x.label}: applied ${x.appliedGtid || '-'}${x.readGtid && x.readGtid !== x.appliedGtid ? `, read ${x.readGtid}` : ''}${x.lagMs !== null ? `, lag ${x.lagMs} ms` : ''}`);
    if (x.retentionWarning) out.push(`    warning: ${x.retentionWarning}`);
  }
  for (const t of s.tables) out.push(`  ${t.target.padEnd(30)} ${t.copyDone ? 'copied' : `${n(t.copiedRows)} / ~${n(t.estimatedRows)} rows`}`);
  const c = s.lastConflict;
  if (c) {
    out.push(`  ${s.conflicts} unique-key conflict${s.conflicts === 1 ? '' : 's'} of merged rows (not written; _ezctl.dbus_conflicts on the target); the last, ${c.at}:`);
    out.push(`    ${c.target} (${c.uniqueKey.join(', ')}): ${c.source} row ${JSON.stringify(c.sourceRow)}`);
    out.push(`    collides with the row kept${c.existingSource ? ` from ${c.existingSource}` : ''}: ${JSON.stringify(c.existingRow)}`);
  }
  return out.join('\n');
}
