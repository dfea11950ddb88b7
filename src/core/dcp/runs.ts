// Check runs stored in `_ezctl` at the first zone's master: a run (check_runs), its tables'
// figures and checkpoints (check_tables) and the differing rows (check_diffs). check full writes
// them and resumes from them, check incr records its runs the same way, repair reads the rows.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Db, Param } from '../db/connect.js';
import { quoteTable } from '../db/quote.js';
import { badInput } from '../exit.js';
import { STATE_SCHEMA } from '../state/schema.js';
import { decodeKey, encodeKey, type KeyValue } from '../chunk/keys.js';
import type { CheckFullOptions, CheckReport, RowDiff, TableReport } from './check-full.js';

type RunRow = {
  run_id: string;
  status: string;
  options: string;
};

export interface StoredTable {
  status: string;
  lastKey?: KeyValue;
  rows: number;
}

export async function openRun(db: Db, cluster: string, opts: CheckFullOptions, kind: 'full' | 'incr' = 'full'): Promise<{ runId: string; resumed: boolean }> {
  const options = JSON.stringify({ zones: opts.zones, tables: opts.tables, exclude: opts.exclude, where: opts.where, ignoreColumns: opts.ignoreColumns, mode: opts.mode ?? 'checksum' });
  if (opts.resume) {
    const last = await db.one<RunRow>(`SELECT run_id, status, options FROM ${quoteTable(STATE_SCHEMA, 'check_runs')} WHERE cluster = ? AND kind = 'full' ORDER BY started_at DESC, run_id DESC LIMIT 1`, [cluster]);
    if (last && last.status === 'incomplete') {
      if (last.options !== options) {
        throw badInput(`the unfinished run ${last.run_id} was started with other options`, { details: [`then: ${last.options}`, `now:  ${options}`], hint: 'run with the same options, or without --resume to start a new run' });
      }
      await db.exec(`UPDATE ${quoteTable(STATE_SCHEMA, 'check_runs')} SET status = 'running', host = ? WHERE run_id = ?`, [hostname(), last.run_id]);
      return { runId: last.run_id, resumed: true };
    }
  }
  const runId = `${new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '')}-${randomBytes(3).toString('hex')}`;
  await db.exec(`INSERT INTO ${quoteTable(STATE_SCHEMA, 'check_runs')} (run_id, cluster, kind, status, host, options) VALUES (?, ?, ?, 'running', ?, ?)`, [runId, cluster, kind, hostname(), options]);
  return { runId, resumed: false };
}

export async function tablesDone(db: Db, runId: string): Promise<Map<string, StoredTable>> {
  const rows = await db.query<{ db: string; tbl: string; status: string; last_key: string | null; rows_checked: string | number }>(
    `SELECT db, tbl, status, last_key, rows_checked FROM ${quoteTable(STATE_SCHEMA, 'check_tables')} WHERE run_id = ?`,
    [runId],
  );
  const out = new Map<string, StoredTable>();
  for (const r of rows) {
    const t: StoredTable = { status: r.status, rows: Number(r.rows_checked) };
    if (r.last_key) t.lastKey = decodeKey(r.last_key);
    out.set(`${r.db}.${r.tbl}`, t);
  }
  return out;
}

/** A table an earlier part of a resumed run finished: its stored figures and differences. */
export async function storedReport(db: Db, runId: string, name: string, t: StoredTable): Promise<TableReport> {
  const [schema, tbl] = splitName(name);
  const row = await db.one<any>(`SELECT * FROM ${quoteTable(STATE_SCHEMA, 'check_tables')} WHERE run_id = ? AND db = ? AND tbl = ?`, [runId, schema, tbl]);
  const diffs = await loadDiffs(db, runId, name);
  const detail = row?.detail ? JSON.parse(row.detail) : {};
  const r: TableReport = { table: name, status: t.status === 'skipped' ? 'skipped' : 'done', rows: t.rows, chunks: Number(row?.chunks ?? 0), missing: Number(row?.missing ?? 0), changed: Number(row?.changed ?? 0), diffs, ms: Number(row?.elapsed_ms ?? 0) };
  if (row?.reason) r.reason = row.reason;
  if (detail.structure) r.structure = detail.structure;
  if (detail.columnsExcluded) r.columnsExcluded = detail.columnsExcluded;
  if (detail.keyless) r.keyless = true;
  if (detail.missingIn) r.missingIn = detail.missingIn;
  if (detail.presentIn) r.presentIn = detail.presentIn;
  return r;
}

export async function loadDiffs(db: Db, runId: string, name?: string): Promise<(RowDiff & { table: string; id: number; keyValues: KeyValue; keyColumns: string[] })[]> {
  const params: Param[] = [runId];
  let where = 'run_id = ?';
  if (name) {
    const [schema, tbl] = splitName(name);
    where += ' AND db = ? AND tbl = ?';
    params.push(schema, tbl);
  }
  const rows = await db.query<any>(`SELECT id, db, tbl, kind, row_key, zones, columns_differing FROM ${quoteTable(STATE_SCHEMA, 'check_diffs')} WHERE ${where} ORDER BY id`, params);
  return rows.map((r) => {
    const k = JSON.parse(r.row_key) as { columns: string[]; values: unknown[] };
    const values = decodeKey(JSON.stringify(k.values));
    return {
      id: Number(r.id),
      table: `${r.db}.${r.tbl}`,
      kind: r.kind,
      key: Object.fromEntries(k.columns.map((c, i) => [c, values[i]])),
      keyValues: values,
      keyColumns: k.columns,
      zones: JSON.parse(r.zones),
      columns: r.columns_differing ? JSON.parse(r.columns_differing) : [],
    };
  });
}

export async function closeRun(db: Db, r: CheckReport): Promise<void> {
  const status = r.complete ? 'done' : 'incomplete';
  const summary = JSON.stringify({ rows: r.rows, ms: r.ms, tables: r.tables.length, missing: r.tables.reduce((s, t) => s + t.missing, 0), changed: r.tables.reduce((s, t) => s + t.changed, 0) });
  await db.exec(
    `UPDATE ${quoteTable(STATE_SCHEMA, 'check_runs')} SET status = ?, finished_at = IF(? = 'done', NOW(3), NULL), consistent = ?, summary = ? WHERE run_id = ?`,
    [status, status, r.consistent ? 1 : 0, summary, r.runId],
  );
}

/** A run that failed: marked unfinished (so --resume continues it); false when its state server cannot be reached. */
export async function abandonRun(db: Db, runId: string): Promise<boolean> {
  try {
    await db.exec(`UPDATE ${quoteTable(STATE_SCHEMA, 'check_runs')} SET status = 'incomplete' WHERE run_id = ? AND status = 'running'`, [runId]);
    return true;
  } catch {
    return false;
  }
}

/** A table's figures in `_ezctl.check_tables` (its checkpoint too, when lastKey is given). */
export async function storeTable(state: Db, runId: string, r: TableReport, status: string, lastKey?: KeyValue, elapsedMs = r.ms): Promise<void> {
  const [db, tbl] = splitName(r.table);
  const detail = JSON.stringify({ structure: r.structure, columnsExcluded: r.columnsExcluded, keyless: r.keyless, missingIn: r.missingIn, presentIn: r.presentIn });
  await state.exec(
    `INSERT INTO ${quoteTable(STATE_SCHEMA, 'check_tables')} (run_id, db, tbl, status, last_key, rows_checked, chunks, missing, changed, reason, detail, elapsed_ms)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON DUPLICATE KEY UPDATE status = VALUES(status), last_key = COALESCE(VALUES(last_key), last_key), rows_checked = VALUES(rows_checked),
       chunks = VALUES(chunks), missing = VALUES(missing), changed = VALUES(changed), reason = VALUES(reason), detail = VALUES(detail), elapsed_ms = VALUES(elapsed_ms)`,
    [runId, db, tbl, status, lastKey ? encodeKey(lastKey) : null, r.rows, r.chunks, r.missing, r.changed, r.reason ?? null, detail, elapsedMs],
  );
}

/** Differing rows of a table in `_ezctl.check_diffs`, 200 to a statement. */
export async function storeDiffs(state: Db, runId: string, table: string, diffs: RowDiff[]): Promise<void> {
  const [db, tbl] = splitName(table);
  for (let i = 0; i < diffs.length; i += 200) {
    const part = diffs.slice(i, i + 200);
    await state.exec(
      `INSERT INTO ${quoteTable(STATE_SCHEMA, 'check_diffs')} (run_id, db, tbl, kind, row_key, zones, columns_differing) VALUES ${part.map(() => '(?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
      part.flatMap((d) => [runId, db, tbl, d.kind, JSON.stringify({ columns: Object.keys(d.key), values: JSON.parse(encodeKey(Object.values(d.key) as KeyValue)) }), JSON.stringify(d.zones, bufferHex), JSON.stringify(d.columns)]),
    );
  }
}

function bufferHex(_k: string, v: unknown): unknown {
  if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' && Array.isArray((v as { data?: unknown }).data)) return Buffer.from((v as { data: number[] }).data).toString('hex');
  if (typeof v === 'bigint') return v.toString();
  return v;
}

export function splitName(name: string): [string, string] {
  const i = name.indexOf('.');
  return [name.slice(0, i), name.slice(i + 1)];
}

