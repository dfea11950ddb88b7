// How `ezctl dbus verify` looks on a terminal (the same data is the --json document).
import type { DbusVerifyReport } from './verify.js';

const n = (x: number) => x.toLocaleString('en-US');
const keyText = (columns: string[], key: unknown[]) => (key.length ? columns.map((c, i) => `${c}=${typeof key[i] === 'string' ? JSON.stringify(key[i]) : Buffer.isBuffer(key[i]) ? `0x${(key[i] as Buffer).toString('hex')}` : String(key[i])}`).join(', ') : '');

export function renderVerify(r: DbusVerifyReport): string {
  const out: string[] = [];
  const rows = r.differences.filter((d) => d.kind !== 'not-compared');
  const skipped = r.differences.filter((d) => d.kind === 'not-compared');
  const head = r.differencesTotal === 0 ? 'the target holds what the sources say' : rows.length || r.differencesTotal > skipped.length ? `${n(r.differencesTotal - skipped.length)} row${r.differencesTotal - skipped.length === 1 ? '' : 's'} differ` : 'nothing found different, but not every table was compared';
  out.push(`move ${r.move}: ${head} (${n(r.rows)} rows in ${r.tables.filter((t) => t.compared).length} table${r.tables.length === 1 ? '' : 's'}, ${(r.ms / 1000).toFixed(1)} s${r.live ? ', under the live apply' : ''})`);
  for (const t of r.tables) out.push(`  ${t.table.padEnd(30)} <- ${t.source}  ${t.compared ? `${n(t.rows)} rows, ${t.differences ? `${n(t.differences)} differ` : 'alike'}` : 'NOT COMPARED'}`);
  if (rows.length) {
    out.push('differences:');
    for (const d of rows.slice(0, 200)) out.push(`  ${d.table} ${keyText(d.keyColumns, d.key)}: ${d.why}`);
    if (rows.length > 200) out.push(`  ... ${n(rows.length - 200)} more (--json lists up to 1000 per table)`);
  }
  if (skipped.length) {
    out.push('not compared:');
    for (const d of skipped) out.push(`  ${d.table} <- ${d.source}: ${d.why.replace(/^not compared: /, '')}`);
  }
  return out.join('\n');
}
