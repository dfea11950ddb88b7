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
// CRC32C (MariaDB 10.8+), the string built once per row; else the first 64 bits of MD5; --hash
// crc32 trades strength for speed.
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
  /** an integer column that holds the reference side's value plus this (a merged shard's key offset): hashed and shown minus it */
  shift?: bigint;
}

const TEXT_TYPES = new Set(['char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext', 'enum', 'set']);

/** A column as the hash sees it: its value normalized to comparable text or bytes. */
export function normalizedExpr(c: CompareColumn): string {
  const col = quoteId(c.name);
  if (c.shift) return shiftedExpr(c.name, c.shift);
  const t = c.dataType.toLowerCase();
  if (TEXT_TYPES.has(t) && c.convertCharset) return `CONVERT(${col} USING utf8mb4)`;
  if (t === 'bit') return `CAST(${col} AS UNSIGNED)`;
  if (t === 'json') return `CAST(${col} AS CHAR)`; // MySQL's binary JSON; MariaDB's JSON is text already
  // the SRID too: ST_AsBinary's WKB alone is the same for a shape under another SRID (NULL stays NULL)
  if (t === 'geometry' || t === 'point' || t === 'linestring' || t === 'polygon' || t.startsWith('multi') || t === 'geometrycollection') return `CONCAT(ST_SRID(${col}), 0x3a, ST_AsBinary(${col}))`;
  return col;
}

/** The per-row string the hash is taken of: values, then the NULL bitmap of nullable columns. */
export function rowStringExpr(cols: readonly CompareColumn[]): string {
  const values = cols.map(normalizedExpr);
  const nullable = cols.filter((c) => c.nullable);
  // one nullable column: its ISNULL alone gives the same text ('0'/'1') without a CONCAT per row
  if (nullable.length === 1) values.push(`ISNULL(${quoteId(nullable[0]!.name)})`);
  else if (nullable.length) values.push(`CONCAT(${nullable.map((c) => `ISNULL(${quoteId(c.name)})`).join(', ')})`);
  // 0x1f (unit separator) between values: it does not occur in ordinary text
  return `CONCAT_WS(0x1f, ${values.join(', ')})`;
}

/**
 * The session variable that carries a row's string from CRC32 to CRC32C within one evaluation
 * of the crc64 hash: building the string (every value to text) costs about four times what
 * either CRC does, and the server does not share a subexpression written twice.
 */
const ROW_STRING_VAR = '@ezctl_row';

/** An unsigned hash of the row: 64 bits (32 with crc32). */
export function rowHashExpr(cols: readonly CompareColumn[], fn: HashFunction): string {
  const s = rowStringExpr(cols);
  // the assignment must be evaluated before it is read: MariaDB takes `|`'s left operand first,
  // which test/integration/checksum-hash.test.ts checks against the string written twice
  if (fn === 'crc64') return `((CRC32(${ROW_STRING_VAR} := ${s}) << 32) | CRC32C(${ROW_STRING_VAR}))`;
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
  /** the values of `where`'s placeholders */
  whereParams?: Param[];
  /**
   * The key is unique only within `where` (a merged shard's rows in the target table): lookups by
   * key keep the condition, where a user's filter is dropped there.
   */
  whereNarrowsKey?: boolean;
  /**
   * One integer key column holding the reference side's key plus this (a shard merged with an
   * offset): ranges and keys asked for are shifted by it, keys read back are shifted back, so
   * both sides walk and report in the reference's key values.
   */
  keyShift?: bigint;
  hash: HashFunction;
}

/**
 * An integer column minus a shift, as signed (an unsigned column below the shift would be an
 * error). The shift is a bigint, so its text is digits and a sign: no value from outside is
 * spliced in as text.
 */
function shiftedExpr(column: string, shift: bigint): string {
  return `(CAST(${quoteId(column)} AS SIGNED) - (${BigInt(shift).toString()}))`;
}

/** The key columns as a SELECT list, in the reference side's values (shifted back where shifted). */
function keySelect(t: TableTarget): string {
  return t.keyColumns.map((c) => (t.keyShift ? `${shiftedExpr(c, t.keyShift)} AS ${quoteId(c)}` : quoteId(c))).join(', ');
}

/** ORDER BY the key columns themselves (a shifted key's alias would sort by the expression, without the index). */
function keyOrder(t: TableTarget): string {
  return t.keyShift ? t.keyColumns.map((c) => `${quoteTable(t.schema, t.table)}.${quoteId(c)}`).join(', ') : orderBy(t.keyColumns);
}

/** Key values of the reference side as this side holds them. */
export function shiftKeys(t: Pick<TableTarget, 'keyShift'>, keys: readonly KeyValue[]): KeyValue[] {
  if (!t.keyShift) return [...keys];
  return keys.map((k) => [BigInt(String(k[0])) + t.keyShift!, ...k.slice(1)] as KeyValue);
}

function whereClause(t: TableTarget, parts: SqlPart[]): SqlPart {
  const all = [...parts];
  // the user's filter on its own line, so a trailing -- comment in it cannot swallow what follows
  if (t.where) all.push({ sql: `(${t.where}\n)`, params: t.whereParams ?? [] });
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
  const cols = [keySelect(t)];
  cols.push(countOnly ? "'' AS h" : `${rowHashExpr(t.columns, t.hash)} AS h`);
  if (tsColumn) cols.push(`CAST(${quoteId(tsColumn)} AS CHAR) AS ts`);
  return { sql: `SELECT ${cols.join(', ')} FROM ${from(t)}${w.sql} ORDER BY ${keyOrder(t)}`, params: w.params };
}

/** The same for given keys (re-checks). */
export function rowHashesByKeySql(t: TableTarget, keys: readonly KeyValue[], tsColumn: string | undefined): SqlPart {
  return rowHashesSql(t.whereNarrowsKey ? t : { ...t, where: undefined }, keyIn(t.keyColumns, shiftKeys(t, keys)), tsColumn, false);
}

/** The normalized value of every compared column for given keys, to name the columns that differ. */
export function rowValuesSql(t: TableTarget, keys: readonly KeyValue[]): SqlPart {
  const k = keyIn(t.keyColumns, shiftKeys(t, keys));
  const cols = [keySelect(t), ...t.columns.map((c, i) => `${normalizedExpr(c)} AS ${quoteId(`c${i}`)}`)];
  const w = whereClause(t.whereNarrowsKey ? t : { ...t, where: undefined }, [k]);
  return { sql: `SELECT ${cols.join(', ')} FROM ${quoteTable(t.schema, t.table)}${w.sql}`, params: w.params };
}

/**
 * Per-bucket count and checksum of a range of a one-column integer key, bucket = key DIV step:
 * narrowing a differing chunk this way scans it once, where a bisection scans it once per level.
 */
export function bucketChecksumSql(t: TableTarget, range: SqlPart, step: bigint, countOnly: boolean): SqlPart {
  const w = whereClause(t, [range]);
  const crc = countOnly ? '' : `, BIT_XOR(${rowHashExpr(t.columns, t.hash)}) AS crc`;
  return {
    sql: `SELECT CAST(${t.keyShift ? shiftedExpr(t.keyColumns[0]!, t.keyShift) : quoteId(t.keyColumns[0]!)} DIV ? AS CHAR) AS b, COUNT(*) AS cnt${crc} FROM ${from(t)}${w.sql} GROUP BY b`,
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
  return { sql: `SELECT ${keySelect(t)} FROM ${from(t)}${w.sql} ORDER BY ${keyOrder(t)} LIMIT 1 OFFSET ${Math.max(0, Math.floor(offset))}`, params: w.params };
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
