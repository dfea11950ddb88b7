// How one chunk is copied: within a server, one INSERT ... SELECT (osc's ghost); between two
// servers, a SELECT of the chunk on the source, then on the target one LOAD DATA LOCAL INFILE of
// the rows (the plain copy) or multi-row INSERTs with the values as placeholders (a merge, or a
// target that refuses LOAD DATA LOCAL). The load is built from the values' bytes as the source
// sent them (the server's own text of each number and date, text as utf8mb4, bytes as bytes):
// nothing is decoded and encoded again. INSERTs take values as the db layer reads everything
// (dateStrings, exact BIGINT and DECIMAL as text, JSON as text, bytes as Buffers), so they go back
// exactly too.
import type { FieldPacket } from 'mysql2/promise';
import { QueryError, type Db, type Param } from '../db/connect.js';
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
  const r = chunkRange(spec.source.key, chunk);
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
   * 'load' (default): a plain copy's chunk goes as one LOAD DATA LOCAL INFILE, its rows streamed
   * from memory (the server parses tab-separated text about 1.4x faster than INSERT values, its
   * largest cost in a copy: 245,000 against 175,000 rows/s, MARIADB-NOTES); 'insert': multi-row
   * INSERTs. A merge's rules and a 'update' duplicate policy always take INSERTs.
   */
  via?: 'load' | 'insert';
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
    // the plain copy: the rows' bytes straight into one load; else rows as arrays into the inserts
    if ((o.via ?? 'load') === 'load' && onDup === 'keep' && !loadRefused.has(target) && !notLoadable.has(spec)) {
      let writer: LoadDataWriter | undefined;
      await source.queryRawPackets(
        select(spec.columns),
        range.params,
        (fields) => (writer = LoadDataWriter.for(fields, Math.ceil((lastLoadBytes.get(spec) ?? 0) * 1.25))),
        (buf, from, to) => writer?.addPacket(buf, from, to),
      );
      const w = writer as LoadDataWriter | undefined; // set by the callback
      if (w && !w.rows) return 0;
      if (w) lastLoadBytes.set(spec, w.bytes);
      if (!w) notLoadable.add(spec); // a column of a type the load does not know: INSERTs from now on
      else {
        try {
          const load = w.finish(spec);
          await inOneTransaction(() => loadRows(target, spec, load));
          return w.rows;
        } catch (e) {
          if (!isLoadRefused(e)) throw e;
          // the target (or its version) does not take LOAD DATA LOCAL: this session inserts from now on
          loadRefused.add(target);
        }
      }
    }
    const rows = (await source.queryArrays(select(spec.columns), range.params, { geometryAsBytes: true })) as Param[][];
    if (!rows.length) return 0;
    if (rows.length <= per) await insert(rows);
    else await inOneTransaction(() => insert(rows));
    return rows.length;
  }
  // a merge: each value through its rule (the shard constant, the key offset), and the collision check first
  const cols = spec.columns.map((c) => c.from);
  const read = await source.query(select(readColumns(spec)), range.params, { geometryAsBytes: true });
  if (!read.length) return 0;
  const asParams = (rows: Array<Record<string, unknown>>) => rows.map((r) => cols.map((c) => sourceValue(spec, r, c) as Param));
  await inOneTransaction(async () => {
    const rows = o.beforeWrite ? await o.beforeWrite(target, read) : read;
    if (rows.length) await insert(asParams(rows));
  });
  return read.length;
}

/** Each copy's last load text size: the next chunk's buffer starts that large. */
const lastLoadBytes = new WeakMap<CopySpec, number>();
/** Target sessions that refused LOAD DATA LOCAL (local_infile off): they take INSERTs. */
const loadRefused = new WeakSet<Db>();
/** Copies with a column a load cannot carry (LoadDataWriter.for said so once): they take INSERTs. */
const notLoadable = new WeakSet<CopySpec>();

/** MariaDB's 1148 (the command is not allowed: local_infile off), MySQL 8's 3948 (local loading disabled). */
function isLoadRefused(e: unknown): boolean {
  return e instanceof QueryError && (e.errno === 1148 || e.errno === 3948);
}

/** A chunk as one LOAD DATA: its statement and its rows as tab-separated text. */
export interface LoadDataChunk {
  sql: string;
  data: Buffer;
}

/** How a column's bytes go into the load: as they are, escaped, as hex (UNHEX()ed), or not at all. */
type LoadKind = 'as-is' | 'text' | 'hex';

// MySQL protocol column types (include/mysql_com.h, enum_field_types)
const NUMBER_OR_DATE_TYPES = new Set([0, 1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13, 14, 17, 18, 19, 246]);
const STRING_TYPES = new Set([15, 247, 248, 249, 250, 251, 252, 253, 254]);
const TYPE_NULL = 6;
const TYPE_BIT = 16;
const TYPE_JSON = 245;
const TYPE_GEOMETRY = 255;
const BINARY_CHARSET = 63;

/**
 * A column's kind from its metadata: numbers and dates are their server's ASCII text (no byte a
 * load must escape); strings in a character set are text (escaped); binary strings, BIT and
 * geometries (the server's own SRID + WKB bytes, which it takes back as they are) are bytes; JSON
 * is text whatever charset MySQL reports for it. A type this code does not know is undefined:
 * those rows go as INSERTs.
 */
export function loadKind(f: Pick<FieldPacket, 'columnType' | 'characterSet'>): LoadKind | undefined {
  const t = f.columnType ?? -1;
  if (NUMBER_OR_DATE_TYPES.has(t) || t === TYPE_NULL) return 'as-is';
  if (t === TYPE_JSON) return 'text';
  if (t === TYPE_BIT || t === TYPE_GEOMETRY) return 'hex';
  if (STRING_TYPES.has(t)) return f.characterSet === BINARY_CHARSET ? 'hex' : 'text';
  return undefined;
}

// bytes a field must escape (ESCAPED BY '\\'): the escape itself, the separators, CR and NUL
const BACKSLASH = 0x5c;
const ESCAPED = new Uint8Array(256);
for (const [b, as] of [[0x5c, 0x5c], [0x09, 0x74], [0x0a, 0x6e], [0x0d, 0x72], [0x00, 0x30]] as const) ESCAPED[b] = as;
const HEX_DIGITS = Buffer.from('0123456789abcdef');
/**
 * Values up to this many bytes are copied byte by byte: a Buffer.copy call costs ~60 ns whatever
 * the size up to a few hundred bytes, a byte loop ~1.4 ns a byte (node 20, measured here).
 */
const SHORT_VALUE = 40;

/**
 * One LOAD DATA LOCAL INFILE ... IGNORE of a chunk's rows, written row by row as the source sends
 * them (Db.queryRawPackets): no row is kept, only the text grows. Text: every separator spelled out
 * (no server default is relied on), a NULL as \N, a backslash, tab, newline, carriage return and
 * NUL escaped (none of these bytes occurs inside a multi-byte UTF-8 character, so escaping bytes
 * is escaping characters); bytes (binary strings, BIT, geometries) as hex loaded into a user
 * variable and UNHEX()ed, so no byte is ever read as the file's character set. IGNORE keeps a row
 * the target has (as the INSERTs' ON DUPLICATE KEY UPDATE of the key to itself does); the other
 * errors IGNORE would turn into warnings are refused after the load (loadRows).
 */
export class LoadDataWriter {
  private buf: Buffer;
  private at = 0;
  rows = 0;
  private readonly text: boolean[];
  private readonly hex: boolean[];

  private constructor(kinds: readonly LoadKind[], sizeHint: number) {
    this.buf = Buffer.allocUnsafe(Math.max(1 << 16, sizeHint));
    this.text = kinds.map((k) => k === 'text');
    this.hex = kinds.map((k) => k === 'hex');
  }

  /**
   * A writer for these columns, or undefined when one is of a type loadKind does not know (INSERTs
   * then). `sizeHint`: the bytes expected (the last chunk's), so the text is rarely copied to grow.
   */
  static for(fields: readonly Pick<FieldPacket, 'columnType' | 'characterSet'>[], sizeHint = 0): LoadDataWriter | undefined {
    const kinds = fields.map(loadKind);
    return kinds.every((k): k is LoadKind => k !== undefined) ? new LoadDataWriter(kinds, sizeHint) : undefined;
  }

  /** The text's length so far. */
  get bytes(): number {
    return this.at;
  }

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.at + n));
    this.buf.copy(bigger, 0, 0, this.at);
    this.buf = bigger;
  }

  /**
   * A row as the text protocol's row packet carries it (`buf[from, to)`, after the packet header):
   * each value a length-coded string, 0xfb for NULL. Read here rather than as one Buffer per value
   * (Db.queryRawPackets): on a 1M-row copy those slices, the row parser and their garbage were about
   * a quarter of node's CPU.
   */
  addPacket(buf: Buffer, from: number, to: number): void {
    const n = this.hex.length;
    let p = from;
    for (let c = 0; c < n; c++) {
      if (p >= to) throw new Error(`the copy read a row of ${c} columns for ${n}`);
      const b0 = buf[p++]!;
      if (b0 === 0xfb) this.putNull();
      else {
        let len = b0;
        if (b0 === 0xfc) {
          len = buf[p]! | (buf[p + 1]! << 8);
          p += 2;
        } else if (b0 === 0xfd) {
          len = buf[p]! | (buf[p + 1]! << 8) | (buf[p + 2]! << 16);
          p += 3;
        } else if (b0 === 0xfe) {
          len = buf.readUInt32LE(p) + buf.readUInt32LE(p + 4) * 2 ** 32;
          p += 8;
        } else if (b0 > 0xfe) throw new Error(`the copy read a row with a bad length byte 0x${b0.toString(16)}`);
        if (p + len > to) throw new Error(`the copy read a value past the end of its row (${len} bytes at ${p - from} of ${to - from})`);
        this.put(c, buf, p, p + len);
        p += len;
      }
      this.buf[this.at++] = c === n - 1 ? 0x0a : 0x09;
    }
    if (p !== to) throw new Error(`the copy read a row with ${to - p} bytes after its ${n} columns`);
    this.rows++;
  }

  private putNull(): void {
    this.room(3);
    this.buf[this.at++] = BACKSLASH;
    this.buf[this.at++] = 0x4e; // N
  }

  /** Column c's value, `src[from, to)`, as the load's text; room is left for the separator after it. */
  private put(c: number, src: Buffer, from: number, to: number): void {
    const len = to - from;
    if (this.hex[c]) {
      this.room(len * 2 + 1);
      const out = this.buf;
      let o = this.at;
      for (let j = from; j < to; j++) {
        out[o++] = HEX_DIGITS[src[j]! >> 4]!;
        out[o++] = HEX_DIGITS[src[j]! & 15]!;
      }
      this.at = o;
      return;
    }
    const text = this.text[c];
    // room for every byte escaped
    this.room((text ? len * 2 : len) + 1);
    const out = this.buf;
    if (!text) {
      // most values are short: byte by byte, no call per value
      if (len > SHORT_VALUE) this.at += src.copy(out, this.at, from, to);
      else {
        let o = this.at;
        for (let j = from; j < to; j++) out[o++] = src[j]!;
        this.at = o;
      }
      return;
    }
    // a long text is scanned first and copied in one call up to its first byte to escape
    let j = from;
    if (len > SHORT_VALUE) while (j < to && !ESCAPED[src[j]!]) j++;
    if (j > from) this.at += src.copy(out, this.at, from, j);
    let o = this.at;
    for (; j < to; j++) {
      const b = src[j]!;
      const as = ESCAPED[b]!;
      if (as) {
        out[o++] = BACKSLASH;
        out[o++] = as;
      } else out[o++] = b;
    }
    this.at = o;
  }

  /** The statement and the text written so far. */
  finish(spec: CopySpec): LoadDataChunk {
    const targets = spec.columns.map((col, c) => (this.hex[c] ? `@ezctl_h${c}` : quoteId(col.to)));
    const sets = spec.columns.flatMap((col, c) => (this.hex[c] ? [`${quoteId(col.to)} = UNHEX(@ezctl_h${c})`] : []));
    const sql =
      `LOAD DATA LOCAL INFILE 'ezctl-chunk' IGNORE INTO TABLE ${quoteTable(spec.target.schema, spec.target.table)} CHARACTER SET utf8mb4 ` +
      `FIELDS TERMINATED BY '\\t' ENCLOSED BY '' ESCAPED BY '\\\\' LINES STARTING BY '' TERMINATED BY '\\n' (${targets.join(', ')})` +
      (sets.length ? ` SET ${sets.join(', ')}` : '');
    return { sql, data: this.buf.subarray(0, this.at) };
  }
}

/**
 * Run a chunk's LOAD DATA on the target (in the caller's transaction). A skipped duplicate is the
 * only warning taken: any other (a value truncated or converted, which an INSERT in strict mode
 * would have refused) throws, naming it, and the caller rolls the chunk back.
 */
async function loadRows(target: Db, spec: CopySpec, load: LoadDataChunk): Promise<void> {
  const res = await target.loadLocal(load.sql, load.data);
  const warnings = res.warningStatus ?? 0;
  if (!warnings) return;
  const skipped = Number(/Skipped: (\d+)/.exec(res.info ?? '')?.[1]);
  if (warnings === skipped) return;
  const shown = await target.query<{ Level: string; Code: number; Message: string }>('SHOW WARNINGS');
  const other = shown.filter((w) => Number(w.Code) !== 1062);
  if (!other.length && shown.length === warnings) return;
  const first = other[0] ? `${other[0].Level} ${other[0].Code}: ${other[0].Message}` : `${warnings} warnings, ${skipped} rows skipped as duplicates`;
  throw new QueryError(
    `${target.ep.label}: the copy into ${spec.target.schema}.${spec.target.table} would change a value: ${first}${other.length > 1 ? ` (and ${other.length - 1} more)` : ''}; the chunk was rolled back`,
    'EZCTL_COPY_CHANGES_VALUE',
    undefined,
    undefined,
  );
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
