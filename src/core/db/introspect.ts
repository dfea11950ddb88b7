// Table structure from information_schema: the one table shape (columns with normalized type,
// default, nullability and generation; indexes with their parts and prefix lengths; foreign
// keys), read for every table of the user schemas in a few bulk queries, and the one rule for the
// key that identifies a row. DRC, the checks, the schema-change tool and the migrations all read
// tables through here, so they all key a row by the same columns.
import type { Db } from './connect.js';
import { quoteTable } from './quote.js';

export const SYSTEM_SCHEMAS = ['mysql', 'information_schema', 'performance_schema', 'sys', '_ezctl'];

export interface ColumnShape {
  name: string;
  /** 1-based, as ORDINAL_POSITION */
  position: number;
  /** lower case, e.g. "decimal" */
  dataType: string;
  /** lower case full type without integer display width, e.g. "decimal(12,2)", "int unsigned" */
  columnType: string;
  /** the type as this server prints it (COLUMN_TYPE, lower case), e.g. "int(10) unsigned" on MariaDB: for reports, never compared */
  serverType: string;
  nullable: boolean;
  /** the default as the server prints it; null when there is none (or it is NULL) */
  default: string | null;
  charset: string | null;
  collation: string | null;
  /** "virtual as (expr)" / "stored as (expr)", null for a plain column */
  generated: string | null;
  /** what else the column does: "auto_increment", "on update current_timestamp(3)", "invisible" */
  extra: string;
  /** COLUMN_COMMENT, '' for none (not compared) */
  comment: string;
}

export interface IndexPart {
  column: string;
  /** prefix length of a prefix index part (STATISTICS.SUB_PART) */
  subPart: number | null;
  descending: boolean;
}

export interface IndexShape {
  name: string;
  unique: boolean;
  /** BTREE, HASH, FULLTEXT, SPATIAL */
  type: string;
  parts: IndexPart[];
  /** false for an IGNORED (MariaDB) / INVISIBLE (MySQL) index: the optimizer does not use it */
  visible: boolean;
}

export interface ForeignKeyShape {
  name: string;
  columns: string[];
  /** "db.table" */
  references: string;
  refColumns: string[];
  onUpdate: string;
  onDelete: string;
}

export interface RowKey {
  /** the index name: PRIMARY, or the unique index chosen */
  index: string;
  columns: string[];
}

export interface TableShape {
  schema: string;
  table: string;
  engine: string | null;
  collation: string | null;
  /** TABLE_ROWS: the server's estimate, for progress only (never compared) */
  rowsEstimate: number;
  /** in table order */
  columns: ColumnShape[];
  /** column names of the primary key, empty when there is none */
  primaryKey: string[];
  /** every index including PRIMARY, by name */
  indexes: IndexShape[];
  foreignKeys: ForeignKeyShape[];
}

export interface ForeignKeyInfo {
  name: string;
  schema: string;
  table: string;
  columns: string[];
  refSchema: string;
  refTable: string;
  refColumns: string[];
  onUpdate: string;
  onDelete: string;
}

export interface TableRef {
  schema: string;
  table: string;
}

/** Base tables of the given schemas (or of every non-system schema). */
export async function listTables(db: Db, schemas?: readonly string[]): Promise<TableRef[]> {
  const params: string[] = [];
  let where: string;
  if (schemas && schemas.length) {
    where = `TABLE_SCHEMA IN (${schemas.map(() => '?').join(', ')})`;
    params.push(...schemas);
  } else {
    where = `TABLE_SCHEMA NOT IN (${SYSTEM_SCHEMAS.map(() => '?').join(', ')})`;
    params.push(...SYSTEM_SCHEMAS);
  }
  const rows = await db.query<{ s: string; t: string }>(
    `SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND ${where} ORDER BY TABLE_SCHEMA, TABLE_NAME`,
    params,
  );
  return rows.map((r) => ({ schema: r.s, table: r.t }));
}

/** MariaDB lists system-versioned tables apart from plain ones; both hold rows to compare. */
const TABLE_TYPES = ['BASE TABLE', 'SYSTEM VERSIONED'];

const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');

/**
 * The shape of every base table in the user schemas (system schemas and `_ezctl` never), keyed
 * "db.table" in name order. Four queries per server whatever the number of tables: listing
 * TABLES first lets the column/index queries ask only for the schemas the filter keeps, which
 * spares the server opening tables nobody asked about.
 */
export async function readShapes(db: Db, filter?: (schema: string, table: string) => boolean): Promise<Map<string, TableShape>> {
  return readCatalog(db, { sql: `TABLE_SCHEMA NOT IN (${placeholders(SYSTEM_SCHEMAS.length)})`, params: SYSTEM_SCHEMAS }, filter);
}

/** A table's SHOW CREATE TABLE text (undefined when the server answers no row). */
export async function showCreateTable(db: Db, schema: string, table: string): Promise<string | undefined> {
  const row = await db.one<Record<string, unknown>>(`SHOW CREATE TABLE ${quoteTable(schema, table)}`);
  const text = row?.['Create Table'];
  return text === undefined || text === null ? undefined : String(text);
}

/** The shape of one table (any schema, `_ezctl` included); undefined when there is no such base table. */
export async function readShape(db: Db, schema: string, table: string): Promise<TableShape | undefined> {
  const shapes = await readCatalog(db, { sql: 'TABLE_SCHEMA = ? AND TABLE_NAME = ?', params: [schema, table] });
  return shapes.get(`${schema}.${table}`);
}

/**
 * The one catalog reader: the tables `where` selects (a condition on TABLE_SCHEMA/TABLE_NAME)
 * and the filter keeps, then their columns, indexes and foreign keys, one query each.
 */
async function readCatalog(db: Db, where: { sql: string; params: string[] }, filter?: (schema: string, table: string) => boolean): Promise<Map<string, TableShape>> {
  const tableRows = await db.query<{ s: string; t: string; engine: string | null; coll: string | null; est: string | number | null }>(
    `SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t, ENGINE AS engine, TABLE_COLLATION AS coll, TABLE_ROWS AS est
       FROM information_schema.TABLES
      WHERE TABLE_TYPE IN (${placeholders(TABLE_TYPES.length)}) AND ${where.sql}
      ORDER BY TABLE_SCHEMA, TABLE_NAME`,
    [...TABLE_TYPES, ...where.params],
  );
  const shapes = new Map<string, TableShape>();
  for (const r of tableRows) {
    if (filter && !filter(r.s, r.t)) continue;
    shapes.set(`${r.s}.${r.t}`, { schema: r.s, table: r.t, engine: r.engine, collation: r.coll, rowsEstimate: Number(r.est ?? 0), columns: [], primaryKey: [], indexes: [], foreignKeys: [] });
  }
  if (shapes.size === 0) return shapes;
  // one table: ask for it alone; many: for the schemas that hold them
  const single = shapes.size === 1 ? [...shapes.values()][0]! : undefined;
  const schemas = [...new Set([...shapes.values()].map((s) => s.schema))];
  const scope = single
    ? { sql: 'TABLE_SCHEMA = ? AND TABLE_NAME = ?', fkSql: 'k.TABLE_SCHEMA = ? AND k.TABLE_NAME = ?', params: [single.schema, single.table] }
    : { sql: `TABLE_SCHEMA IN (${placeholders(schemas.length)})`, fkSql: `k.TABLE_SCHEMA IN (${placeholders(schemas.length)})`, params: schemas };

  const columnRows = await db.query<{
    s: string; t: string; name: string; pos: string | number; dt: string; ct: string; nul: string; def: string | null; extra: string | null; cs: string | null; coll: string | null; gen: string | null; cmt: string | null;
  }>(
    `SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t, COLUMN_NAME AS name, ORDINAL_POSITION AS pos, DATA_TYPE AS dt, COLUMN_TYPE AS ct,
            IS_NULLABLE AS nul, COLUMN_DEFAULT AS def, EXTRA AS extra, CHARACTER_SET_NAME AS cs, COLLATION_NAME AS coll,
            GENERATION_EXPRESSION AS gen, COLUMN_COMMENT AS cmt
       FROM information_schema.COLUMNS WHERE ${scope.sql}
      ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`,
    scope.params,
  );
  for (const c of columnRows) {
    const shape = shapes.get(`${c.s}.${c.t}`);
    if (!shape) continue; // a view's column, or a table the filter left out
    shape.columns.push(columnShape(c));
  }

  // SELECT *: MySQL 8 has EXPRESSION (functional index parts) and IS_VISIBLE, MariaDB has
  // IGNORED; naming any of them would fail on the other server.
  const statRows = await db.query<Record<string, unknown>>(
    `SELECT * FROM information_schema.STATISTICS WHERE ${scope.sql} ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX`,
    scope.params,
  );
  for (const r of statRows) {
    const shape = shapes.get(`${String(r.TABLE_SCHEMA)}.${String(r.TABLE_NAME)}`);
    if (!shape) continue;
    const name = String(r.INDEX_NAME);
    let ix = shape.indexes.find((i) => i.name === name);
    if (!ix) {
      const visible = !(r.IGNORED === 'YES' || r.IS_VISIBLE === 'NO');
      ix = { name, unique: Number(r.NON_UNIQUE) === 0, type: String(r.INDEX_TYPE ?? 'BTREE').toUpperCase(), parts: [], visible };
      shape.indexes.push(ix);
    }
    const column = r.COLUMN_NAME === null || r.COLUMN_NAME === undefined ? `(${String(r.EXPRESSION ?? 'expression')})` : String(r.COLUMN_NAME);
    ix.parts.push({ column, subPart: r.SUB_PART === null || r.SUB_PART === undefined ? null : Number(r.SUB_PART), descending: r.COLLATION === 'D' });
  }
  for (const shape of shapes.values()) {
    shape.indexes.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    shape.primaryKey = shape.indexes.find((i) => i.name === 'PRIMARY')?.parts.map((p) => p.column) ?? [];
  }

  for (const fk of await foreignKeysWhere(db, scope.fkSql, scope.params)) {
    const shape = shapes.get(`${fk.schema}.${fk.table}`);
    if (!shape) continue;
    shape.foreignKeys.push({ name: fk.name, columns: fk.columns, references: `${fk.refSchema}.${fk.refTable}`, refColumns: fk.refColumns, onUpdate: fk.onUpdate, onDelete: fk.onDelete });
  }
  return shapes;
}

function columnShape(c: { name: string; pos: string | number; dt: string; ct: string; nul: string; def: string | null; extra: string | null; cs: string | null; coll: string | null; gen: string | null; cmt: string | null }): ColumnShape {
  const extraRaw = (c.extra ?? '').toLowerCase();
  // MariaDB leaves GENERATION_EXPRESSION NULL for plain columns, MySQL an empty string.
  const generated = c.gen ? `${/stored|persistent/.test(extraRaw) ? 'stored' : 'virtual'} as (${c.gen})` : null;
  return {
    name: c.name,
    position: Number(c.pos),
    dataType: c.dt.toLowerCase(),
    columnType: normalizeColumnType(c.ct),
    serverType: c.ct.toLowerCase(),
    nullable: c.nul === 'YES',
    default: generated ? null : normalizeDefault(c.def),
    charset: c.cs,
    collation: c.coll,
    generated,
    extra: normalizeExtra(extraRaw),
    comment: c.cmt ?? '',
  };
}

/**
 * Integer display widths go: they change neither storage nor values, and MySQL 8 no longer
 * prints them, so int(11) and int are the same type (unless ZEROFILL makes the width show).
 */
export function normalizeColumnType(raw: string): string {
  const t = raw.toLowerCase().trim().replace(/\s+/g, ' ');
  if (/zerofill/.test(t)) return t;
  return t.replace(/^(tinyint|smallint|mediumint|int|integer|bigint)\(\d+\)/, '$1').replace(/^year\(4\)/, 'year');
}

/** MariaDB prints "current_timestamp()" and MySQL "CURRENT_TIMESTAMP": one spelling for both. */
function normalizeTimestampFn(s: string): string {
  return s.replace(/\bcurrent_timestamp(?:\((\d*)\))?/gi, (_m, fsp: string | undefined) => (fsp && fsp !== '0' ? `current_timestamp(${fsp})` : 'current_timestamp'));
}

export function normalizeDefault(raw: string | null): string | null {
  // MariaDB writes the text NULL for a nullable column without a default; MySQL a real NULL.
  if (raw === null || raw === 'NULL') return null;
  return /^current_timestamp/i.test(raw) ? normalizeTimestampFn(raw) : raw;
}

function normalizeExtra(extraLower: string): string {
  const words: string[] = [];
  if (/\bauto_increment\b/.test(extraLower)) words.push('auto_increment');
  const onUpdate = /\bon update (current_timestamp(?:\(\d*\))?)/.exec(extraLower);
  if (onUpdate) words.push(`on update ${normalizeTimestampFn(onUpdate[1]!)}`);
  if (/\binvisible\b/.test(extraLower)) words.push('invisible');
  return words.join(' ');
}

/** Foreign keys whose KEY_COLUMN_USAGE rows match `where` (columns of `k`), one entry per constraint, columns in order. */
export async function foreignKeysWhere(db: Db, where: string, params: string[]): Promise<ForeignKeyInfo[]> {
  const rows = await db.query<{
    name: string; s: string; t: string; col: string; rs: string; rt: string; rc: string; upd: string; del: string;
  }>(
    `SELECT k.CONSTRAINT_NAME AS name, k.TABLE_SCHEMA AS s, k.TABLE_NAME AS t, k.COLUMN_NAME AS col,
            k.REFERENCED_TABLE_SCHEMA AS rs, k.REFERENCED_TABLE_NAME AS rt, k.REFERENCED_COLUMN_NAME AS rc,
            r.UPDATE_RULE AS upd, r.DELETE_RULE AS del
       FROM information_schema.KEY_COLUMN_USAGE k
       JOIN information_schema.REFERENTIAL_CONSTRAINTS r
         ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME AND r.TABLE_NAME = k.TABLE_NAME
      WHERE k.REFERENCED_TABLE_NAME IS NOT NULL AND ${where}
      ORDER BY k.TABLE_SCHEMA, k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION`,
    params,
  );
  const out = new Map<string, ForeignKeyInfo>();
  for (const r of rows) {
    const key = `${r.s}.${r.t}.${r.name}`;
    let fk = out.get(key);
    if (!fk) {
      fk = { name: r.name, schema: r.s, table: r.t, columns: [], refSchema: r.rs, refTable: r.rt, refColumns: [], onUpdate: r.upd, onDelete: r.del };
      out.set(key, fk);
    }
    fk.columns.push(r.col);
    fk.refColumns.push(r.rc);
  }
  return [...out.values()];
}

/**
 * The key that identifies a row, the one rule DRC's applier, check full/incr (and repair, on the
 * check's keys) and osc's copy all use: the primary key; else the first unique index (in name
 * order) whose columns are all NOT NULL and none of whose parts is a prefix. A NULL is not equal
 * to itself, so a unique index lets many rows hold NULL there and `col = ?` finds none of them;
 * a prefix part (name(10)) holds the first characters only, so the index cannot give rows in the
 * order of the full values that chunks are walked and bounded by. Undefined when the table has
 * no such key: it has none to walk, compare or apply rows by.
 */
export function rowKey(shape: Pick<TableShape, 'primaryKey' | 'indexes' | 'columns'>): RowKey | undefined {
  if (shape.primaryKey.length) return { index: 'PRIMARY', columns: shape.primaryKey };
  const notNull = new Set(shape.columns.filter((c) => !c.nullable).map((c) => c.name));
  const u = shape.indexes.find((ix) => ix.unique && ix.name !== 'PRIMARY' && ix.parts.length > 0 && ix.parts.every((p) => p.subPart === null && notNull.has(p.column)));
  return u ? { index: u.name, columns: u.parts.map((p) => p.column) } : undefined;
}

/**
 * The row key of one table as it is on several servers (zones): the same columns everywhere,
 * else undefined (rows cannot be matched across servers that key them differently).
 */
export function commonRowKey(shapes: readonly Pick<TableShape, 'primaryKey' | 'indexes' | 'columns'>[]): RowKey | undefined {
  const keys = shapes.map(rowKey);
  const first = keys[0];
  if (!first || keys.some((k) => !k || k.columns.join('\0') !== first.columns.join('\0'))) return undefined;
  return first;
}
