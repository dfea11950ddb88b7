// How one chunk is copied: within a server, one INSERT ... SELECT (osc's ghost); between two
// servers, a SELECT of the chunk on the source, then multi-row INSERTs on the target with the
// values as placeholders. Values are read as the db layer reads everything (dateStrings, exact
// BIGINT and DECIMAL as text, JSON as text, bytes as Buffers), so they go back exactly.
import type { Db, Param } from '../db/connect.js';
import { quoteId, quoteTable } from '../db/quote.js';
import { chunkRange, type Chunk, type ChunkKey } from '../chunk/chunker.js';
import { orderBy, type SqlPart } from '../chunk/keys.js';

/** A table copied into another: source columns -> target columns, read in the source key's order. */
export interface CopySpec {
  source: { schema: string; table: string; key: ChunkKey };
  target: { schema: string; table: string };
  columns: Array<{ from: string; to: string }>;
}

/** The rows of a chunk on the source. */
export function chunkWhere(spec: CopySpec, chunk: Pick<Chunk, 'lower' | 'upper'>): SqlPart {
  return chunkRange({ index: spec.source.key.index, columns: spec.source.key.columns }, chunk);
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
  const from = spec.columns.map((c) => quoteId(c.from)).join(', ');
  const to = spec.columns.map((c) => quoteId(c.to)).join(', ');
  const k0 = spec.source.key.columns[0]!;
  const keep = o.keepExisting ? ` ON DUPLICATE KEY UPDATE ${quoteId(targetColumn(spec, k0))} = ${dst}.${quoteId(k0)}` : '';
  const lock = o.lockInShareMode ? ' LOCK IN SHARE MODE' : '';
  return {
    // the locking clause belongs to the SELECT, before ON DUPLICATE KEY UPDATE (after it: ERROR 1064)
    sql: `INSERT INTO ${dst} (${to}) SELECT ${from} FROM ${src} FORCE INDEX (${quoteId(spec.source.key.index)}) WHERE ${range.sql}${lock}${keep}`,
    params: range.params,
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
  const rows = (await source.queryArrays(
    `SELECT ${spec.columns.map((c) => quoteId(c.from)).join(', ')} FROM ${src} FORCE INDEX (${quoteId(spec.source.key.index)}) WHERE ${range.sql} ORDER BY ${orderBy(spec.source.key.columns)}${lock}`,
    range.params,
  )) as Param[][];
  if (!rows.length) return 0;
  const per = o.rowsPerInsert ?? 500;
  const onDup = o.onDuplicate ?? 'keep';
  const full = multiRowInsertSql(spec, Math.min(per, rows.length), onDup);
  const several = rows.length > per;
  if (several) await target.exec('BEGIN');
  try {
    for (let i = 0; i < rows.length; i += per) {
      const part = rows.slice(i, i + per);
      await target.exec(part.length === per || !several ? full : multiRowInsertSql(spec, part.length, onDup), part.flat());
    }
    if (several) await target.exec('COMMIT');
  } catch (e) {
    if (several) await target.exec('ROLLBACK').catch(() => undefined);
    throw e;
  }
  return rows.length;
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
