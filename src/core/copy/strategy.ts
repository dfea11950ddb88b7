// How one chunk is copied: within a server, one INSERT ... SELECT (osc's ghost); between two
// servers, a SELECT of the chunk on the source, then multi-row INSERTs on the target with the
// values as placeholders. Values are read as the db layer reads everything (dateStrings, exact
// BIGINT and DECIMAL as text, JSON as text, bytes as Buffers), so they go back exactly.
import type { Db, Param } from '../db/connect.js';
import { quoteId, quoteTable } from '../db/quote.js';
import { chunkRange, type Chunk, type ChunkKey } from '../chunk/chunker.js';
import { orderBy, type SqlPart } from '../chunk/keys.js';
import { readColumns, sourceValue } from '../apply/mapping.js';

/** A table copied into another: source columns -> target columns, read in the source key's order. */
export interface CopySpec {
  source: { schema: string; table: string; key: ChunkKey };
  target: { schema: string; table: string };
  columns: Array<{ from: string; to: string }>;
  /** merge rules, as in the apply's TableMapping: a constant per source column, an offset added to one */
  constants?: Record<string, string | number> | undefined;
  offsets?: Record<string, number> | undefined;
  /** a row filter (SQL on the source's columns), as in the apply's TableMapping */
  where?: string | undefined;
}

/** The rows of a chunk on the source (and of the spec's filter). */
export function chunkWhere(spec: CopySpec, chunk: Pick<Chunk, 'lower' | 'upper'>): SqlPart {
  const r = chunkRange({ index: spec.source.key.index, columns: spec.source.key.columns }, chunk);
  return spec.where === undefined ? r : { sql: `(${r.sql}) AND (${spec.where})`, params: r.params };
}

/** The SELECT list of a copy within one server: constants and offsets as placeholders. */
function selectList(spec: CopySpec): SqlPart {
  const params: SqlPart['params'] = [];
  const parts = spec.columns.map((c) => {
    const k = spec.constants?.[c.from];
    if (k !== undefined) {
      params.push(k);
      return '?';
    }
    const off = spec.offsets?.[c.from];
    if (off) {
      params.push(off);
      return `${quoteId(c.from)} + ?`;
    }
    return quoteId(c.from);
  });
  return { sql: parts.join(', '), params };
}

/**
 * Within one server: INSERT ... SELECT of a chunk's rows.
 * - keepExisting: a row the target already has is kept (ON DUPLICATE KEY UPDATE of its key to
 *   itself: a no-op that still counts nothing), being newer (a binlog applier wrote it);
 * - lockInShareMode: the source rows are locked while they are read (a copy again under locks).
 */
export function insertSelectSql(spec: CopySpec, range: SqlPart, o: { keepExisting?: boolean; lockInShareMode?: boolean } = {}): SqlPart {
  const src = quoteTable(spec.source.schema, spec.source.table);
  const dst = quoteTable(spec.target.schema, spec.target.table);
  const from = selectList(spec);
  const to = spec.columns.map((c) => quoteId(c.to)).join(', ');
  const k0 = spec.source.key.columns[0]!;
  const keep = o.keepExisting ? ` ON DUPLICATE KEY UPDATE ${quoteId(targetColumn(spec, k0))} = ${dst}.${quoteId(k0)}` : '';
  const lock = o.lockInShareMode ? ' LOCK IN SHARE MODE' : '';
  return {
    // the locking clause belongs to the SELECT, before ON DUPLICATE KEY UPDATE (after it: ERROR 1064)
    sql: `INSERT INTO ${dst} (${to}) SELECT ${from.sql} FROM ${src} FORCE INDEX (${quoteId(spec.source.key.index)}) WHERE ${range.sql}${lock}${keep}`,
    params: [...from.params, ...range.params],
  };
}

/** What to do with a row the target already has (a binlog applier wrote it, or a resumed copy did). */
export type OnDuplicate = 'keep' | 'update';

export interface BetweenServersOptions {
  /**
   * 'keep' (default): the target's row is kept, being newer (ON DUPLICATE KEY UPDATE of the key to
   * itself, not INSERT IGNORE, which would also turn a value the target cannot hold into a warning);
   * 'update': the copied row wins
   */
  onDuplicate?: OnDuplicate;
  /**
   * Read the chunk with LOCK IN SHARE MODE (default true), in its own short transaction: a change
   * whose binlog event was already read but whose commit is not yet visible is waited for, so a
   * row deleted (or changed) there is never copied in its old state after the applier applied it.
   */
  lockingRead?: boolean;
  /** rows per INSERT (default 500) */
  rowsPerInsert?: number;
  /**
   * Called with the chunk's source rows before they are written, in one transaction of the target
   * with the writes; returns the rows to write (a merge's unique-key collisions left out, recorded).
   */
  beforeWrite?: (target: Db, rows: Array<Record<string, unknown>>) => Promise<Array<Record<string, unknown>>>;
}

/**
 * Between two servers: the chunk read on the source, written on the target. The rows copied.
 * The rows come as arrays in the select list's order and go on as the INSERTs' values unchanged
 * (no object per row); the chunk's INSERTs are one transaction on the target, so a chunk is there
 * whole or not at all (a kill -9 between two of its INSERTs leaves nothing of it), and the target
 * commits (and syncs its redo log and binlog) once per chunk rather than once per INSERT.
 */
export async function copyChunkBetween(source: Db, target: Db, spec: CopySpec, range: SqlPart, o: BetweenServersOptions = {}): Promise<number> {
  const src = quoteTable(spec.source.schema, spec.source.table);
  const lock = o.lockingRead === false ? '' : ' LOCK IN SHARE MODE';
  const select = (cols: Array<{ from: string }>) =>
    `SELECT ${cols.map((c) => quoteId(c.from)).join(', ')} FROM ${src} FORCE INDEX (${quoteId(spec.source.key.index)}) WHERE ${range.sql} ORDER BY ${orderBy(spec.source.key.columns)}${lock}`;
  const per = o.rowsPerInsert ?? 500;
  const onDup = o.onDuplicate ?? 'keep';
  // a chunk is on the target whole or not at all: its inserts in one transaction
  const inOneTransaction = async (write: () => Promise<void>) => {
    await target.exec('BEGIN');
    try {
      await write();
      await target.exec('COMMIT');
    } catch (e) {
      await target.exec('ROLLBACK').catch(() => undefined);
      throw e;
    }
  };
  const insert = async (rows: Param[][]) => {
    const full = multiRowInsertSql(spec, Math.min(per, rows.length), onDup);
    for (let i = 0; i < rows.length; i += per) {
      const part = rows.slice(i, i + per);
      await target.exec(part.length === per || rows.length <= per ? full : multiRowInsertSql(spec, part.length, onDup), part.flat());
    }
  };
  if (!o.beforeWrite && !spec.constants && !spec.offsets) {
    // the plain copy: rows as arrays, straight into the inserts (no per-value conversion)
    const rows = (await source.queryArrays(select(spec.columns), range.params)) as Param[][];
    if (!rows.length) return 0;
    if (rows.length <= per) await insert(rows);
    else await inOneTransaction(() => insert(rows));
    return rows.length;
  }
  // a merge: each value through its rule (the shard constant, the key offset), and the collision check first
  const cols = spec.columns.map((c) => c.from);
  const read = await source.query(select(readColumns(spec)), range.params);
  if (!read.length) return 0;
  const asParams = (rows: Array<Record<string, unknown>>) => rows.map((r) => cols.map((c) => sourceValue(spec, r, c) as Param));
  await inOneTransaction(async () => {
    const rows = o.beforeWrite ? await o.beforeWrite(target, read) : read;
    if (rows.length) await insert(asParams(rows));
  });
  return read.length;
}

/** A multi-row INSERT of n rows of the spec's target columns; a row the target has is kept or updated. */
export function multiRowInsertSql(spec: CopySpec, n: number, onDuplicate: OnDuplicate): string {
  const dst = quoteTable(spec.target.schema, spec.target.table);
  const to = spec.columns.map((c) => quoteId(c.to));
  const one = `(${to.map(() => '?').join(', ')})`;
  const values = Array.from({ length: n }, () => one).join(', ');
  const k0 = quoteId(targetColumn(spec, spec.source.key.columns[0]!));
  const dup = onDuplicate === 'keep' ? `${k0} = ${k0}` : to.map((c) => `${c} = VALUES(${c})`).join(', ');
  return `INSERT INTO ${dst} (${to.join(', ')}) VALUES ${values} ON DUPLICATE KEY UPDATE ${dup}`;
}

function targetColumn(spec: CopySpec, from: string): string {
  const c = spec.columns.find((x) => x.from === from);
  if (!c) throw new Error(`the copy of ${spec.source.schema}.${spec.source.table} leaves out its key column ${from}`);
  return c.to;
}
