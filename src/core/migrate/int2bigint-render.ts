// How `ezctl migrate int2bigint` looks on a terminal: the integer keys, most used first; per
// family (most urgent first) the ALTERs in the order they would run; then the notes. --json gets
// the report object itself.
import { quoteTable } from '../db/quote.js';
import { table } from '../ui/table.js';
import { fkName, type Family, type ForeignKeyRef, type Int2BigintReport, type KeyColumn } from './int2bigint.js';

/** "46.57%"; a share too small for two decimals is not shown as 0. */
export function formatUsed(used: number): string {
  if (used > 0 && used < 0.0001) return '<0.01%';
  return `${(used * 100).toFixed(2)}%`;
}

/** "shop.payments.account_id" for each column of a foreign key that references this column. */
function referencedByCell(c: KeyColumn): string {
  return c.referencedBy
    .map((f) => `${f.schema}.${f.table}.${f.columns[f.refColumns.indexOf(c.column)] ?? f.columns.join('+')}`)
    .join(', ');
}

/** The largest value; "not read" where no index leads with the column (MAX would scan the table). */
function maxCell(c: KeyColumn): string {
  if (c.maxValueRead) return c.maxValue ?? '-';
  return c.maxValue === null ? 'not read' : `${c.maxValue} (not read everywhere)`;
}

const describeFk = (f: ForeignKeyRef) =>
  `${fkName(f)}: ${f.schema}.${f.table}(${f.columns.join(', ')}) → ${f.refSchema}.${f.refTable}(${f.refColumns.join(', ')}) ON DELETE ${f.onDelete} ON UPDATE ${f.onUpdate}`;

function renderFamily(f: Family, n: number): string[] {
  const root = `${f.root.schema}.${f.root.table}.${f.root.column}`;
  const out = [`${n}. ${root}: ${formatUsed(f.used)} used; ${f.tables.length === 1 ? '1 table' : `${f.tables.length} tables, together`}`];
  const more = (f.roots ?? []).slice(1).map((r) => `${r.schema}.${r.table}.${r.column}`);
  if (more.length) out.push(`   with the famil${more.length === 1 ? 'y' : 'ies'} of ${more.join(', ')} (they share tables): one change`);
  for (const t of f.tables) {
    if (t.alter) out.push(`   ALTER TABLE ${quoteTable(t.schema, t.table)} ${t.alter};`);
    else {
      const why = f.foreignKeys.filter((k) => k.schema === t.schema && k.table === t.table && f.tables.some((x) => x.schema === k.refSchema && x.table === k.refTable));
      out.push(`   -- ${t.schema}.${t.table}: rebuilt unchanged, so that its foreign key${why.length === 1 ? '' : 's'} ${why.map((k) => k.constraint).join(', ')} follow${why.length === 1 ? 's' : ''} the new tables`);
    }
  }
  if (f.foreignKeys.length) {
    out.push('   foreign keys:');
    for (const k of f.foreignKeys) out.push(`     ${describeFk(k)}`);
  }
  return out;
}

export function renderInt2Bigint(r: Int2BigintReport): string {
  const out: string[] = [];
  const threshold = formatUsed(r.threshold);
  out.push(`cluster ${r.cluster}, zones ${r.zones.join(', ')}: ${r.columns.length} integer key column${r.columns.length === 1 ? '' : 's'} in ${r.tablesSeen} table${r.tablesSeen === 1 ? '' : 's'}; largest values over all zones`);
  if (r.columns.length) {
    out.push(table(
      ['column', 'type', 'max value', 'AUTO_INCREMENT', 'used', 'referenced by'],
      r.columns.map((c) => [`${c.schema}.${c.table}.${c.column}`, c.columnType, maxCell(c), c.autoIncrementNext ?? '-', formatUsed(c.used), referencedByCell(c)]),
      { stream: process.stdout },
    ));
  }
  if (r.families.length === 0) out.push('', `no key at or above ${threshold} of its capacity: nothing to widen (--threshold sets the share)`);
  else {
    out.push('', `to widen to BIGINT (keys at or above ${threshold} used), most urgent first; each family's tables change together:`);
    r.families.forEach((f, i) => out.push(...renderFamily(f, i + 1)));
  }
  if (r.notes.length) {
    out.push('', 'notes:');
    for (const n of r.notes) out.push(`  - ${n}`);
  }
  out.push('', 'nothing was changed');
  return out.join('\n');
}

/** After --execute: the report, then what was done per family. */
export function renderInt2BigintRun(r: import('./int2bigint-run.js').Int2BigintRun): string {
  const out = [renderInt2Bigint(r.report), ''];
  if (!r.executed.length) out.push('nothing to do: no key at or above the threshold');
  for (const e of r.executed) {
    out.push(`done: ${e.root}: ${e.tables.join(', ')} widened (${e.method === 'instant' ? 'in place, instantly' : `ghost copy${e.cutOverSkewMs !== undefined ? `, cut over within ${e.cutOverSkewMs} ms across zones` : ''}`}) in ${(e.ms / 1000).toFixed(1)} s; ${e.method === 'instant' ? 'no old table' : e.oldTablesDropped ? 'the old tables dropped' : 'the old tables kept as <t>_ezdel (`ezctl osc cleanup` drops them)'}`);
  }
  return out.join('\n');
}
