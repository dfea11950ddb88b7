// Table structure from information_schema: columns, keys, indexes, foreign keys. The chunker,
// the checks, the schema-change tool and DRC all read tables through here.
import type { Db } from './connect.js';

export const SYSTEM_SCHEMAS = ['mysql', 'information_schema', 'performance_schema', 'sys', '_ezctl'];

export interface ColumnInfo {
  name: string;
  position: number;
  dataType: string;
  columnType: string;
  nullable: boolean;
  default: string | null;
  extra: string;
  charset: string | null;
  collation: string | null;
  generated: boolean;
  unsigned: boolean;
  autoIncrement: boolean;
}

export interface IndexInfo {
  name: string;
  unique: boolean;
  columns: string[];
  /** columns that may be NULL make a unique index unusable as a row identity */
  nullable: boolean;
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

export interface TableInfo {
  schema: string;
  table: string;
  engine: string | null;
  collation: string | null;
  autoIncrement: bigint | null;
  rowsEstimate: number;
  columns: ColumnInfo[];
  primaryKey: string[];
  indexes: IndexInfo[];
  foreignKeys: ForeignKeyInfo[];
  referencedBy: ForeignKeyInfo[];
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

export async function tableInfo(db: Db, schema: string, table: string): Promise<TableInfo | undefined> {
  const t = await db.one<{ engine: string | null; collation: string | null; ai: string | null; rows: string | null }>(
    'SELECT ENGINE AS engine, TABLE_COLLATION AS collation, AUTO_INCREMENT AS ai, TABLE_ROWS AS `rows` FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?',
    [schema, table],
  );
  if (!t) return undefined;
  const cols = await db.query<{
    name: string; pos: string; dt: string; ct: string; nul: string; def: string | null; extra: string; cs: string | null; coll: string | null; gen: string | null;
  }>(
    `SELECT COLUMN_NAME AS name, ORDINAL_POSITION AS pos, DATA_TYPE AS dt, COLUMN_TYPE AS ct, IS_NULLABLE AS nul,
            COLUMN_DEFAULT AS def, EXTRA AS extra, CHARACTER_SET_NAME AS cs, COLLATION_NAME AS coll, IS_GENERATED AS gen
       FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
    [schema, table],
  );
  const columns: ColumnInfo[] = cols.map((c) => ({
    name: c.name,
    position: Number(c.pos),
    dataType: c.dt.toLowerCase(),
    columnType: c.ct.toLowerCase(),
    nullable: c.nul === 'YES',
    default: c.def,
    extra: c.extra ?? '',
    charset: c.cs,
    collation: c.coll,
    generated: (c.gen !== null && c.gen !== 'NEVER') || /VIRTUAL|STORED|PERSISTENT/i.test(c.extra ?? ''),
    unsigned: /unsigned/i.test(c.ct),
    autoIncrement: /auto_increment/i.test(c.extra ?? ''),
  }));
  const nullableCol = new Set(columns.filter((c) => c.nullable).map((c) => c.name));
  const stats = await db.query<{ idx: string; nonUnique: string; seq: string; col: string }>(
    `SELECT INDEX_NAME AS idx, NON_UNIQUE AS nonUnique, SEQ_IN_INDEX AS seq, COLUMN_NAME AS col
       FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY INDEX_NAME, SEQ_IN_INDEX`,
    [schema, table],
  );
  const byName = new Map<string, IndexInfo>();
  for (const s of stats) {
    let ix = byName.get(s.idx);
    if (!ix) {
      ix = { name: s.idx, unique: Number(s.nonUnique) === 0, columns: [], nullable: false };
      byName.set(s.idx, ix);
    }
    ix.columns.push(s.col);
    if (nullableCol.has(s.col)) ix.nullable = true;
  }
  const indexes = [...byName.values()];
  const primaryKey = byName.get('PRIMARY')?.columns ?? [];
  const foreignKeys = await foreignKeysWhere(db, 'k.TABLE_SCHEMA = ? AND k.TABLE_NAME = ?', [schema, table]);
  const referencedBy = await foreignKeysWhere(db, 'k.REFERENCED_TABLE_SCHEMA = ? AND k.REFERENCED_TABLE_NAME = ?', [schema, table]);
  return {
    schema,
    table,
    engine: t.engine,
    collation: t.collation,
    autoIncrement: t.ai === null ? null : BigInt(t.ai),
    rowsEstimate: Number(t.rows ?? 0),
    columns,
    primaryKey,
    indexes,
    foreignKeys,
    referencedBy,
  };
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
 * The key that identifies a row: the primary key, else the first unique index whose columns
 * are all NOT NULL. Undefined when the table has neither.
 */
export function rowIdentity(t: TableInfo): { index: string; columns: string[] } | undefined {
  if (t.primaryKey.length) return { index: 'PRIMARY', columns: t.primaryKey };
  const u = t.indexes.find((i) => i.unique && !i.nullable);
  return u ? { index: u.name, columns: u.columns } : undefined;
}
