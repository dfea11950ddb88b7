// The SQL that checks data without moving it: a 64-bit hash per row, XORed per chunk, computed
// by each server over the same key range. Values are normalized first so that what is equal
// compares equal on every zone:
// - NULL vs '': CONCAT_WS skips NULLs, and a NULL bitmap (ISNULL of each nullable column) goes
//   into the hash, so NULL, '' and a missing value differ.
// - TIMESTAMP: every session runs with time_zone '+00:00' (db/connect), so the text is UTC
//   everywhere whatever each server's zone is.
// - Text in different character sets: converted to utf8mb4 where the zones disagree on the
//   column's charset, so the same characters give the same bytes.
// - Floats: the server's own shortest text form, the same on every zone of one flavor; a change
//   in the last digit changes the text.
// - Binary and JSON: the bytes / the text as stored.
// The hash is CRC32 and CRC32C of the same string side by side (64 bits) where the server has
// CRC32C (MariaDB 10.8+), else the first 64 bits of MD5; --hash crc32 trades strength for speed.
import type { Param } from '../db/connect.js';
import { quoteId, quoteTable } from '../db/quote.js';
import { keyIn, orderBy, type KeyValue, type SqlPart } from '../chunk/keys.js';

/**
 * crc64: CRC32 and CRC32C side by side (MariaDB 10.8+); md5: the first 64 bits of MD5 (any
 * server, about twice as slow); crc32: 32 bits only, pt-table-checksum's default strength, for
 * when speed matters more (a changed row goes unseen with odds of 1 in 4 billion).
 */
export type HashFunction = 'crc64' | 'md5' | 'crc32';

export interface CompareColumn {
  name: string;
  dataType: string;
  nullable: boolean;
  /** the zones disagree on this text column's character set: compare as utf8mb4 */
  convertCharset?: boolean;
}

const TEXT_TYPES = new Set(['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext', 'enum', 'set']);

/** A column as the hash sees it: its value normalized to comparable text or bytes. */
export function normalizedExpr(c: CompareColumn): string {
  const col = quoteId(c.name);
  const t = c.dataType.toLowerCase();
  if (TEXT_TYPES.has(t) && c.convertCharset) return `CONVERT(${col} USING utf8mb4)`;
  if (t === 'bit') return `CAST(${col} AS UNSIGNED)`;
  if (t === 'json') return `CAST(${col} AS CHAR)`; // MySQL's binary JSON; MariaDB's JSON is text already
  if (t === 'geometry' || t === 'point' || t === 'linestring' || t === 'polygon' || t.startsWith('multi') || t === 'geometrycollection') return `ST_AsBinary(${col})`;
  return col;
}

/** The per-row string the hash is taken of: values, then the NULL bitmap of nullable columns. */
export function rowStringExpr(cols: readonly CompareColumn[]): string {
  const values = cols.map(normalizedExpr);
  const nullable = cols.filter((c) => c.nullable);
  if (nullable.length) values.push(`CONCAT(${nullable.map((c) => `ISNULL(${quoteId(c.name)})`).join(', ')})`);
  // 0x1f (unit separator) between values: it does not occur in ordinary text
  return `CONCAT_WS(0x1f, ${values.join(', ')})`;
}

/** An unsigned hash of the row: 64 bits (32 with crc32). */
export function rowHashExpr(cols: readonly CompareColumn[], fn: HashFunction): string {
  const s = rowStringExpr(cols);
  if (fn === 'crc64') return `((CRC32(${s}) << 32) | CRC32C(${s}))`;
  if (fn === 'crc32') return `CRC32(${s})`;
  return `CAST(CONV(LEFT(MD5(${s}), 16), 16, 10) AS UNSIGNED)`;
}

export interface TableTarget {
  schema: string;
  table: string;
  /** the index that walks the key (PRIMARY, or a unique NOT NULL one) */
  index: string | null;
  keyColumns: string[];
  columns: CompareColumn[];
  /** the user's --where, as given (SQL text, checked beforehand with EXPLAIN) */
  where?: string;
  hash: HashFunction;
}

function whereClause(t: TableTarget, parts: SqlPart[]): SqlPart {
  const all = [...parts];
  // the user's filter on its own line, so a trailing -- comment in it cannot swallow what follows
  if (t.where) all.push({ sql: `(${t.where}\n)`, params: [] });
  if (all.length === 0) return { sql: '', params: [] };
  return { sql: ` WHERE ${all.map((p) => p.sql).join(' AND ')}`, params: all.flatMap((p) => p.params) };
}

function from(t: TableTarget): string {
  return `${quoteTable(t.schema, t.table)}${t.index ? ` FORCE INDEX (${quoteId(t.index)})` : ''}`;
}

/** COUNT(*) AS cnt and (unless countOnly) BIT_XOR of row hashes AS crc over a range. */
export function chunkChecksumSql(t: TableTarget, range: SqlPart, countOnly: boolean): SqlPart {
  const w = whereClause(t, [range]);
  const crc = countOnly ? '' : `, BIT_XOR(${rowHashExpr(t.columns, t.hash)}) AS crc`;
  return { sql: `SELECT COUNT(*) AS cnt${crc} FROM ${from(t)}${w.sql}`, params: w.params };
}

/** One row per key in a range: the key, the row hash (h) and, when known, the DRC timestamp (ts). */
export function rowHashesSql(t: TableTarget, range: SqlPart, tsColumn: string | undefined, countOnly: boolean): SqlPart {
  const w = whereClause(t, [range]);
  const cols = [...t.keyColumns.map(quoteId)];
  cols.push(countOnly ? "'' AS h" : `${rowHashExpr(t.columns, t.hash)} AS h`);
  if (tsColumn) cols.push(`CAST(${quoteId(tsColumn)} AS CHAR) AS ts`);
  return { sql: `SELECT ${cols.join(', ')} FROM ${from(t)}${w.sql} ORDER BY ${orderBy(t.keyColumns)}`, params: w.params };
}

/** The same for given keys (re-checks). */
export function rowHashesByKeySql(t: TableTarget, keys: readonly KeyValue[], tsColumn: string | undefined): SqlPart {
  return rowHashesSql({ ...t, where: undefined }, keyIn(t.keyColumns, keys), tsColumn, false);
}

/** The normalized value of every compared column for given keys, to name the columns that differ. */
export function rowValuesSql(t: TableTarget, keys: readonly KeyValue[]): SqlPart {
  const k = keyIn(t.keyColumns, keys);
  const cols = [...t.keyColumns.map(quoteId), ...t.columns.map((c, i) => `${normalizedExpr(c)} AS ${quoteId(`c${i}`)}`)];
  return { sql: `SELECT ${cols.join(', ')} FROM ${quoteTable(t.schema, t.table)} WHERE ${k.sql}`, params: k.params };
}

/**
 * Per-bucket count and checksum of a range of a one-column integer key, bucket = key DIV step:
 * narrowing a differing chunk this way scans it once, where a bisection scans it once per level.
 */
export function bucketChecksumSql(t: TableTarget, range: SqlPart, step: bigint, countOnly: boolean): SqlPart {
  const w = whereClause(t, [range]);
  const crc = countOnly ? '' : `, BIT_XOR(${rowHashExpr(t.columns, t.hash)}) AS crc`;
  return {
    sql: `SELECT CAST(${quoteId(t.keyColumns[0]!)} DIV ? AS CHAR) AS b, COUNT(*) AS cnt${crc} FROM ${from(t)}${w.sql} GROUP BY b`,
    params: [step, ...w.params],
  };
}

/** The keys of bucket b (key DIV step = b, which truncates toward zero): [first, last]. */
export function bucketKeys(b: bigint, step: bigint): [bigint, bigint] {
  if (b > 0n) return [b * step, b * step + step - 1n];
  if (b < 0n) return [b * step - step + 1n, b * step];
  return [1n - step, step - 1n];
}

/** The key N rows into a range (for bisection), from the zone that has the most rows there. */
export function splitKeySql(t: TableTarget, range: SqlPart, offset: number): SqlPart {
  const w = whereClause(t, [range]);
  return { sql: `SELECT ${t.keyColumns.map(quoteId).join(', ')} FROM ${from(t)}${w.sql} ORDER BY ${orderBy(t.keyColumns)} LIMIT 1 OFFSET ${Math.max(0, Math.floor(offset))}`, params: w.params };
}

/** A table without a usable key, small enough: its rows as a multiset of hashes. */
export function multisetSql(t: TableTarget): SqlPart {
  const w = whereClause(t, []);
  return { sql: `SELECT ${rowHashExpr(t.columns, t.hash)} AS h, COUNT(*) AS n FROM ${quoteTable(t.schema, t.table)}${w.sql} GROUP BY h`, params: w.params };
}

/** Rows with a given hash (to show what a keyless difference is). */
export function rowsByHashSql(t: TableTarget, hash: string, limit: number): SqlPart {
  const w = whereClause(t, [{ sql: `${rowHashExpr(t.columns, t.hash)} = ?`, params: [hash as Param] }]);
  return { sql: `SELECT ${t.columns.map((c) => quoteId(c.name)).join(', ')} FROM ${quoteTable(t.schema, t.table)}${w.sql} LIMIT ${limit}`, params: w.params };
}
