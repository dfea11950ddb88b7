// `ezctl migrate int2bigint`: which integer keys are running out of values, and the plan to
// widen them to BIGINT before they do. No change is made here: the plan's ALTERs are run by the
// online schema change engine (ezctl osc), which copies each table into a ghost and renames it.
//
// What is looked at, in every zone master: integer columns (tinyint..bigint) that are
// AUTO_INCREMENT, the only column of the PRIMARY KEY or of a UNIQUE key, or referenced by a
// foreign key. For each: its largest value (MAX over the index, so it costs one index dive) and
// the table's AUTO_INCREMENT, the larger over all zones (each zone hands out its own ids), and the
// share of the type's capacity that uses up.
//
// Why families: InnoDB wants a foreign key's columns to have the same type and sign as the
// columns they reference, so a parent key cannot be widened alone; its children (and theirs) are
// widened with it. And since the engine swaps tables by RENAME, a foreign key that points at a
// swapped table follows it to the old copy: every table pointing into the family is rebuilt in
// the same run (its ALTER is empty) so that its foreign keys point at the new tables.
import mysql from 'mysql2';
import type { Ctx } from '../context.js';
import type { ResolvedNode } from '../config/load.js';
import type { Db, Param } from '../db/connect.js';
import { SYSTEM_SCHEMAS, foreignKeysWhere, normalizeColumnType, readShapes, type ColumnShape, type ForeignKeyInfo } from '../db/introspect.js';
import { quoteId, quoteTable } from '../db/quote.js';
import { flavorOf } from '../db/server.js';
import { tableFilter } from '../dcp/index.js';
import { badInput } from '../exit.js';
import type { SqlPart } from '../chunk/keys.js';

// ---------------------------------------------------------------------------------------------
// Types

export type IntType = 'tinyint' | 'smallint' | 'mediumint' | 'int' | 'bigint';

export const INT_TYPES: readonly IntType[] = ['tinyint', 'smallint', 'mediumint', 'int', 'bigint'];

const INT_BITS: Record<IntType, number> = { tinyint: 8, smallint: 16, mediumint: 24, int: 32, bigint: 64 };

export const DEFAULT_THRESHOLD = 0.5;

export interface Int2BigintOptions {
  cluster?: string;
  zones?: string[];
  tables?: string;
  exclude?: string;
  /** the share of capacity (0..1) from which a key's family is planned; default 0.5 */
  threshold?: number;
}

/** A foreign key as the report shows it: introspect's ForeignKeyInfo, its name as `constraint`. */
export type ForeignKeyRef = Omit<ForeignKeyInfo, 'name'> & { constraint: string };

/** An integer column's definition, as one zone has it: everything a MODIFY must keep. */
export interface IntColumn {
  schema: string;
  table: string;
  column: string;
  dataType: IntType;
  unsigned: boolean;
  zerofill: boolean;
  /** as the server prints it, lower case: "int(10) unsigned" */
  columnType: string;
  nullable: boolean;
  /** as normalizeDefault gives it: null for none or NULL */
  default: string | null;
  autoIncrement: boolean;
  /** "current_timestamp" and the like: integer columns have none, but a MODIFY must not drop one */
  onUpdate: string | null;
  invisible: boolean;
  comment: string;
  /** a generated column: its expression would have to be restated, so it is never planned */
  generated: boolean;
}

export interface KeyColumn extends IntColumn {
  /** the only column of the PRIMARY KEY */
  primaryKey: boolean;
  /** the only column of a UNIQUE key (other than PRIMARY) */
  unique: boolean;
  /** largest value in any zone (exact, as a decimal string); null: empty everywhere, or not read */
  maxValue: string | null;
  /** false when a zone has no index the column leads: its MAX would scan the table, so it is not read there */
  maxValueRead: boolean;
  /** the table's AUTO_INCREMENT, largest in any zone; null unless the column is AUTO_INCREMENT */
  autoIncrementNext: string | null;
  /** the type's largest value */
  capacity: string;
  /** max(maxValue, autoIncrementNext - 1) / capacity, 0..1 */
  used: number;
  /** foreign keys whose referenced columns include this one */
  referencedBy: ForeignKeyRef[];
}

export interface FamilyTable {
  schema: string;
  table: string;
  /** the columns widened here */
  columns: string[];
  /** "MODIFY COLUMN ..." clauses joined by ", "; '' when the table is only rebuilt because a foreign key points into the family */
  alter: string;
}

export interface Family {
  /** the most urgent key the family was planned for */
  root: { schema: string; table: string; column: string };
  /**
   * every key the family was planned for, root first: keys whose families would share a table
   * are planned as one family (their union), since a table can be changed by one change only
   */
  roots: Array<{ schema: string; table: string; column: string }>;
  /** the largest share used by a key column of the family */
  used: number;
  /** in the order they would run: the root's table, its children (breadth first), then the tables only rebuilt */
  tables: FamilyTable[];
  /** every foreign key with either side in the family */
  foreignKeys: ForeignKeyRef[];
}

export interface Int2BigintReport {
  cluster: string;
  zones: string[];
  threshold: number;
  /** tables looked at (after the filters) */
  tablesSeen: number;
  /** most used first */
  columns: KeyColumn[];
  /** most urgent first */
  families: Family[];
  notes: string[];
}

// ---------------------------------------------------------------------------------------------
// Capacity and use (pure)

/** The largest value of an integer type: 2^(bits-1)-1 signed, 2^bits-1 unsigned. */
export function capacityOf(dataType: IntType, unsigned: boolean): bigint {
  const bits = BigInt(INT_BITS[dataType]);
  return unsigned ? (1n << bits) - 1n : (1n << (bits - 1n)) - 1n;
}

/**
 * The share of the capacity used: the largest value stored, or the last id AUTO_INCREMENT handed
 * out (rows may have been deleted since; the counter does not go back), whichever is larger.
 * Negative values count as nothing used: ids grow upwards.
 */
export function usedShare(maxValue: string | null, autoIncrementNext: string | null, capacity: bigint | string): number {
  const cap = BigInt(capacity);
  let top = 0n;
  if (maxValue !== null && BigInt(maxValue) > top) top = BigInt(maxValue);
  if (autoIncrementNext !== null && BigInt(autoIncrementNext) - 1n > top) top = BigInt(autoIncrementNext) - 1n;
  if (top >= cap) return 1;
  // the share to nine decimals, computed exactly: BIGINT UNSIGNED values do not fit a float
  const scale = 1_000_000_000n;
  return Number((top * scale) / cap) / Number(scale);
}

/** The larger of two exact integers held as strings (null: none). */
export function maxOf(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return BigInt(a) >= BigInt(b) ? a : b;
}

/** Key columns whose family is planned: at or above the threshold, most used first. */
export function overThreshold<T extends { used: number }>(columns: readonly T[], threshold: number): T[] {
  return columns.filter((c) => c.used >= threshold).sort((a, b) => b.used - a.used);
}

// ---------------------------------------------------------------------------------------------
// The MODIFY clause (pure)

/** A column default back in SQL: an integer literal as such, anything else as the expression it is. */
function defaultClause(def: string | null): string {
  if (def === null) return '';
  const literal = /^'?(-?\d+)'?$/.exec(def.trim());
  // an expression default (MariaDB 10.2+, MySQL 8.0.13+) is the server's own printout of it
  return literal ? ` DEFAULT ${literal[1]}` : ` DEFAULT (${def})`;
}

/** The clause as SQL with placeholders (the comment is the only value). */
export function modifyClauseSql(c: IntColumn): SqlPart {
  const params: Param[] = [];
  let sql = `MODIFY COLUMN ${quoteId(c.column)} BIGINT`;
  // ZEROFILL pads to the display width: keep the width, so values print as before
  if (c.zerofill) sql += `${/\((\d+)\)/.exec(c.columnType)?.[0] ?? ''} UNSIGNED ZEROFILL`;
  else if (c.unsigned) sql += ' UNSIGNED';
  sql += c.nullable ? ' NULL' : ' NOT NULL';
  sql += defaultClause(c.default);
  if (c.autoIncrement) sql += ' AUTO_INCREMENT';
  if (c.onUpdate) sql += ` ON UPDATE ${c.onUpdate.toUpperCase()}`;
  if (c.invisible) sql += ' INVISIBLE';
  if (c.comment) {
    sql += ' COMMENT ?';
    params.push(c.comment);
  }
  return { sql, params };
}

/**
 * "MODIFY COLUMN `id` BIGINT UNSIGNED NOT NULL AUTO_INCREMENT": the column's definition with only
 * the type changed (signedness, NULL, DEFAULT, AUTO_INCREMENT, ON UPDATE, INVISIBLE, COMMENT kept).
 */
export function modifyClause(c: IntColumn): string {
  const p = modifyClauseSql(c);
  return mysql.format(p.sql, p.params as Parameters<typeof mysql.format>[1]);
}

// ---------------------------------------------------------------------------------------------
// Families (pure)

const colKey = (schema: string, table: string, column: string) => JSON.stringify([schema, table, column]);
const tableKey = (schema: string, table: string) => JSON.stringify([schema, table]);
const colName = (c: { schema: string; table: string; column: string }) => `${c.schema}.${c.table}.${c.column}`;
export const fkName = (f: ForeignKeyRef) => `${f.schema}.${f.table}.${f.constraint}`;
const pct = (u: number) => `${(u * 100).toFixed(2)}%`;

interface ColRef {
  schema: string;
  table: string;
  column: string;
}

/** One column pair of a foreign key: child column → the parent column it references. */
interface Link {
  fk: ForeignKeyRef;
  child: ColRef;
  parent: ColRef;
}

function linksOf(foreignKeys: readonly ForeignKeyRef[]): Link[] {
  return foreignKeys.flatMap((fk) =>
    fk.columns.map((column, i) => ({
      fk,
      child: { schema: fk.schema, table: fk.table, column },
      parent: { schema: fk.refSchema, table: fk.refTable, column: fk.refColumns[i]! },
    })),
  );
}

function groupBy<T>(items: readonly T[], key: (x: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const x of items) {
    const k = key(x);
    const list = out.get(k);
    if (list) list.push(x);
    else out.set(k, [x]);
  }
  return out;
}

/** The top-most columns a column's foreign keys lead to (itself when it references nothing). */
function rootsOf(c: ColRef, parentsOf: Map<string, Link[]>): ColRef[] {
  const roots = new Map<string, ColRef>();
  const seen = new Set<string>();
  const climb = (x: ColRef) => {
    const k = colKey(x.schema, x.table, x.column);
    if (seen.has(k)) return;
    seen.add(k);
    const ups = (parentsOf.get(k) ?? []).filter((l) => !seen.has(colKey(l.parent.schema, l.parent.table, l.parent.column)));
    if (ups.length === 0) roots.set(k, x);
    for (const l of ups) climb(l.parent);
  };
  climb(c);
  return [...roots.values()];
}

export interface FamilyInput {
  /** key columns with their use (from every zone) */
  keyColumns: readonly KeyColumn[];
  /** definitions of the other integer columns foreign keys name (children that are no key of their own) */
  columns: readonly IntColumn[];
  foreignKeys: readonly ForeignKeyRef[];
  threshold: number;
}

/**
 * The families to widen: for each key column at or above the threshold, the top-most parent it
 * leads to (the root), every foreign-key column referencing the root and, recursively, those
 * referencing them; then every table pointing into the family (rebuilt, ALTER ''), until none is
 * left outside. A family with nothing narrower than BIGINT is not planned (a note says so).
 */
export function buildFamilies(input: FamilyInput): { families: Family[]; notes: string[] } {
  const defs = new Map<string, IntColumn>();
  for (const c of [...input.columns, ...input.keyColumns]) defs.set(colKey(c.schema, c.table, c.column), c);
  const used = new Map(input.keyColumns.map((c) => [colKey(c.schema, c.table, c.column), c.used]));
  const links = linksOf(input.foreignKeys);
  const childrenOf = groupBy(links, (l) => colKey(l.parent.schema, l.parent.table, l.parent.column));
  const parentsOf = groupBy(links, (l) => colKey(l.child.schema, l.child.table, l.child.column));
  const notes: string[] = [];
  const families: Family[] = [];
  const planned = new Set<string>();

  for (const candidate of overThreshold(input.keyColumns, input.threshold)) {
    for (const root of rootsOf(candidate, parentsOf)) {
      const rk = colKey(root.schema, root.table, root.column);
      if (planned.has(rk)) continue;
      planned.add(rk);
      const family = buildFamily(root, defs, used, childrenOf, input.foreignKeys, notes);
      if (family) families.push(family);
      else if (candidate.dataType === 'bigint') notes.push(`${colName(candidate)} is BIGINT already (${pct(candidate.used)} used): there is no wider integer type`);
    }
  }
  const merged = unionOverlapping(families, defs, notes);
  merged.sort((a, b) => b.used - a.used || colName(a.root).localeCompare(colName(b.root)));
  return { families: merged, notes };
}

/**
 * Families that share a table become one: a table is changed by one change only (its ghost,
 * its cut-over, its old table), so two families touching it cannot run one after the other (the
 * first leaves <t>_ezdel, which the second must refuse) nor side by side. The union widens every
 * column any of them widens, in each table once; its root is the most urgent one's.
 */
export function unionOverlapping(families: readonly Family[], defs: ReadonlyMap<string, IntColumn>, notes: string[]): Family[] {
  // union-find over families, joined by every table they share
  const up = families.map((_, i) => i);
  const find = (i: number): number => (up[i] === i ? i : (up[i] = find(up[i]!)));
  const owner = new Map<string, number>();
  families.forEach((f, i) => {
    for (const t of f.tables) {
      const k = tableKey(t.schema, t.table);
      const o = owner.get(k);
      if (o === undefined) owner.set(k, i);
      else up[find(i)] = find(o);
    }
  });
  const groups = groupBy(families.map((f, i) => ({ f, i })), (x) => String(find(x.i)));
  const out: Family[] = [];
  for (const members of groups.values()) {
    const list = members.map((m) => m.f).sort((a, b) => b.used - a.used || colName(a.root).localeCompare(colName(b.root)));
    if (list.length === 1) {
      out.push(list[0]!);
      continue;
    }
    const tables = new Map<string, FamilyTable>();
    for (const f of list) {
      for (const t of f.tables) {
        const k = tableKey(t.schema, t.table);
        const have = tables.get(k);
        if (!have) tables.set(k, { ...t, columns: [...t.columns] });
        else for (const c of t.columns) if (!have.columns.includes(c)) have.columns.push(c);
      }
    }
    for (const t of tables.values()) t.alter = t.columns.map((c) => modifyClause(defs.get(colKey(t.schema, t.table, c))!)).join(', ');
    const fks = new Map<string, ForeignKeyRef>();
    for (const f of list) for (const k of f.foreignKeys) fks.set(fkName(k), k);
    const roots = list.flatMap((f) => f.roots);
    const shared = [...owner.keys()].filter((k) => list.filter((f) => f.tables.some((t) => tableKey(t.schema, t.table) === k)).length > 1).map((k) => (JSON.parse(k) as string[]).join('.'));
    notes.push(`the families of ${roots.map(colName).join(' and ')} share ${shared.join(', ')}: planned as one family, changed together`);
    out.push({ root: list[0]!.root, roots, used: Math.max(...list.map((f) => f.used)), tables: parentsFirst([...tables.values()], [...fks.values()]), foreignKeys: [...fks.values()] });
  }
  return out;
}

function buildFamily(
  root: ColRef,
  defs: Map<string, IntColumn>,
  used: Map<string, number>,
  childrenOf: Map<string, Link[]>,
  foreignKeys: readonly ForeignKeyRef[],
  notes: string[],
): Family | undefined {
  // the root and its descendants, breadth first (parents before children)
  const members: ColRef[] = [root];
  const seen = new Set([colKey(root.schema, root.table, root.column)]);
  for (let i = 0; i < members.length; i++) {
    const parent = members[i]!;
    for (const l of childrenOf.get(colKey(parent.schema, parent.table, parent.column)) ?? []) {
      const k = colKey(l.child.schema, l.child.table, l.child.column);
      if (seen.has(k)) continue;
      seen.add(k);
      members.push(l.child);
      noteMismatch(l, defs, notes);
    }
  }

  const tables = new Map<string, FamilyTable>();
  const tableOf = (s: string, t: string) => {
    const k = tableKey(s, t);
    let ft = tables.get(k);
    if (!ft) {
      ft = { schema: s, table: t, columns: [], alter: '' };
      tables.set(k, ft);
    }
    return ft;
  };
  const clauses = new Map<string, string[]>();
  let familyUsed = 0;
  for (const m of members) {
    const k = colKey(m.schema, m.table, m.column);
    familyUsed = Math.max(familyUsed, used.get(k) ?? 0);
    const ft = tableOf(m.schema, m.table);
    const def = defs.get(k);
    if (!def) {
      notes.push(`${colName(m)}: its definition was not read (not an integer column, or absent): not widened with ${colName(root)}'s family`);
      continue;
    }
    if (def.dataType === 'bigint') continue;
    if (def.generated) {
      notes.push(`${colName(m)} is a generated column: widen it by hand with ${colName(root)}'s family (its expression must be restated)`);
      continue;
    }
    ft.columns.push(m.column);
    clauses.set(tableKey(m.schema, m.table), [...(clauses.get(tableKey(m.schema, m.table)) ?? []), modifyClause(def)]);
  }
  if (![...tables.values()].some((t) => t.columns.length)) return undefined;
  for (const [k, list] of clauses) tables.get(k)!.alter = list.join(', ');

  // tables pointing into the family follow its tables' renames unless rebuilt with them; a
  // rebuilt table is renamed too, so the same holds for tables pointing at it
  for (let grew = true; grew; ) {
    grew = false;
    for (const fk of foreignKeys) {
      if (tables.has(tableKey(fk.refSchema, fk.refTable)) && !tables.has(tableKey(fk.schema, fk.table))) {
        tableOf(fk.schema, fk.table);
        grew = true;
      }
    }
  }
  const familyForeignKeys = foreignKeys.filter((fk) => tables.has(tableKey(fk.schema, fk.table)) || tables.has(tableKey(fk.refSchema, fk.refTable)));
  const r = { schema: root.schema, table: root.table, column: root.column };
  return { root: r, roots: [r], used: familyUsed, tables: [...tables.values()], foreignKeys: familyForeignKeys };
}

/** Tables in an order where a table comes after every table of the list it references (a cycle: as listed). */
function parentsFirst(tables: FamilyTable[], foreignKeys: readonly ForeignKeyRef[]): FamilyTable[] {
  const left = [...tables];
  const placed = new Set<string>();
  const out: FamilyTable[] = [];
  const inList = new Set(tables.map((t) => tableKey(t.schema, t.table)));
  const parentsOf = (t: FamilyTable) =>
    foreignKeys.filter((f) => f.schema === t.schema && f.table === t.table).map((f) => tableKey(f.refSchema, f.refTable)).filter((k) => k !== tableKey(t.schema, t.table) && inList.has(k));
  while (left.length) {
    const i = Math.max(0, left.findIndex((t) => parentsOf(t).every((k) => placed.has(k))));
    const [t] = left.splice(i, 1);
    placed.add(tableKey(t!.schema, t!.table));
    out.push(t!);
  }
  return out;
}

/** A child column of another size or sign than its parent: each keeps its own sign, said in a note. */
function noteMismatch(l: Link, defs: Map<string, IntColumn>, notes: string[]): void {
  const child = defs.get(colKey(l.child.schema, l.child.table, l.child.column));
  const parent = defs.get(colKey(l.parent.schema, l.parent.table, l.parent.column));
  if (!child || !parent) return;
  const what: string[] = [];
  if (child.unsigned !== parent.unsigned) what.push(`${child.unsigned ? 'unsigned' : 'signed'} while ${colName(parent)} is ${parent.unsigned ? 'unsigned' : 'signed'}; each keeps its own sign`);
  if (child.dataType !== parent.dataType) what.push(`${child.dataType} while ${colName(parent)} is ${parent.dataType}`);
  if (what.length) notes.push(`${colName(child)} (foreign key ${l.fk.constraint}) is ${what.join(', and ')}; both become BIGINT`);
}

// ---------------------------------------------------------------------------------------------
// Reading one zone

/** What one zone master has: integer columns of the tables in reach, their keys, foreign keys, AUTO_INCREMENT. */
interface ZoneCatalog {
  zone: string;
  /** every base table of the user schemas, keyed tableKey → AUTO_INCREMENT (null: none) */
  tables: Map<string, { schema: string; table: string; autoIncrement: string | null }>;
  /** integer columns of the schemas read, keyed colKey */
  columns: Map<string, ReadColumn>;
  foreignKeys: ForeignKeyRef[];
}

interface ReadColumn extends IntColumn {
  primaryKey: boolean;
  unique: boolean;
  /** the first column of a usable index: MAX() is one index dive */
  leading: boolean;
}

const TABLE_TYPES = ['BASE TABLE', 'SYSTEM VERSIONED'];
const placeholders = (n: number) => Array.from({ length: n }, () => '?').join(', ');

async function readZone(db: Db, zone: string, filter: (s: string, t: string) => boolean): Promise<ZoneCatalog> {
  // MySQL 8 caches TABLES statistics (AUTO_INCREMENT included) for a day by default
  const version = String(await db.value('SELECT @@version'));
  if (flavorOf(version) === 'mysql' && Number(/^(\d+)/.exec(version)?.[1]) >= 8) await db.exec('SET SESSION information_schema_stats_expiry = 0');
  const tableRows = await db.query<{ s: string; t: string; ai: string | number | null }>(
    `SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t, AUTO_INCREMENT AS ai FROM information_schema.TABLES
      WHERE TABLE_TYPE IN (${placeholders(TABLE_TYPES.length)}) AND TABLE_SCHEMA NOT IN (${placeholders(SYSTEM_SCHEMAS.length)})
      ORDER BY TABLE_SCHEMA, TABLE_NAME`,
    [...TABLE_TYPES, ...SYSTEM_SCHEMAS],
  );
  const tables = new Map(tableRows.map((r) => [tableKey(r.s, r.t), { schema: r.s, table: r.t, autoIncrement: r.ai === null ? null : String(r.ai) }]));
  const catalog: ZoneCatalog = { zone, tables, columns: new Map(), foreignKeys: [] };
  const schemas = new Set(tableRows.filter((r) => filter(r.s, r.t)).map((r) => r.s));
  if (schemas.size === 0) return catalog;

  // foreign keys may lead out of the schemas asked for: follow them until no new schema appears
  for (;;) {
    catalog.foreignKeys = await readForeignKeys(db, [...schemas]);
    const more = catalog.foreignKeys.flatMap((f) => [f.schema, f.refSchema]).filter((s) => !schemas.has(s) && !SYSTEM_SCHEMAS.includes(s));
    if (more.length === 0) break;
    for (const s of more) schemas.add(s);
  }
  await readColumns(db, [...schemas], catalog);
  return catalog;
}

async function readForeignKeys(db: Db, schemas: string[]): Promise<ForeignKeyRef[]> {
  const inSchemas = placeholders(schemas.length);
  const fks = await foreignKeysWhere(db, `(k.TABLE_SCHEMA IN (${inSchemas}) OR k.REFERENCED_TABLE_SCHEMA IN (${inSchemas}))`, [...schemas, ...schemas]);
  return fks.map(({ name, ...rest }) => ({ constraint: name, ...rest }));
}

/** The integer columns and the keys they lead, from the tables' shapes (db/introspect's one reader). */
async function readColumns(db: Db, schemas: string[], catalog: ZoneCatalog): Promise<void> {
  const inReach = new Set(schemas);
  const shapes = await readShapes(db, (s, t) => inReach.has(s) && catalog.tables.has(tableKey(s, t)));
  for (const shape of shapes.values()) {
    for (const c of shape.columns) {
      if (!(INT_TYPES as readonly string[]).includes(c.dataType)) continue;
      catalog.columns.set(colKey(shape.schema, shape.table, c.name), { ...intColumn(shape.schema, shape.table, c), primaryKey: false, unique: false, leading: false });
    }
    for (const ix of shape.indexes) {
      const lead = catalog.columns.get(colKey(shape.schema, shape.table, ix.parts[0]!.column));
      if (!lead) continue; // an index that does not start with an integer column
      if (ix.visible) lead.leading = true;
      if (ix.parts.length === 1 && ix.unique) {
        if (ix.name === 'PRIMARY') lead.primaryKey = true;
        else lead.unique = true;
      }
    }
  }
}

function intColumn(schema: string, table: string, c: ColumnShape): IntColumn {
  return {
    schema,
    table,
    column: c.name,
    dataType: c.dataType as IntType,
    unsigned: /\bunsigned\b/.test(c.columnType),
    zerofill: /\bzerofill\b/.test(c.columnType),
    columnType: c.serverType,
    nullable: c.nullable,
    default: c.default,
    autoIncrement: /\bauto_increment\b/.test(c.extra),
    onUpdate: /\bon update (\S+)/.exec(c.extra)?.[1] ?? null,
    invisible: /\binvisible\b/.test(c.extra),
    comment: c.comment,
    generated: c.generated !== null,
  };
}

/**
 * Per key column present in this zone: its largest value (undefined when no index leads with it,
 * so MAX() would scan the table) and, for an AUTO_INCREMENT column, the table's AUTO_INCREMENT.
 */
async function zoneMaxima(db: Db, z: ZoneCatalog, keys: readonly ColRef[]): Promise<Map<string, { maxValue: string | null | undefined; autoIncrementNext: string | null }>> {
  const out = new Map<string, { maxValue: string | null | undefined; autoIncrementNext: string | null }>();
  for (const c of keys) {
    const k = colKey(c.schema, c.table, c.column);
    const here = z.columns.get(k);
    if (!here) continue;
    out.set(k, {
      maxValue: here.leading ? await maxValueOf(db, c) : undefined,
      autoIncrementNext: here.autoIncrement ? (z.tables.get(tableKey(c.schema, c.table))?.autoIncrement ?? null) : null,
    });
  }
  return out;
}

/** The largest value, read through the index the column leads (one dive); null for an empty table. */
async function maxValueOf(db: Db, c: ColRef): Promise<string | null> {
  const v = await db.value<string | number | bigint | null>(`SELECT MAX(${quoteId(c.column)}) AS m FROM ${quoteTable(c.schema, c.table)}`);
  return v === null || v === undefined ? null : String(v);
}

// ---------------------------------------------------------------------------------------------
// Across zones

/** What of a definition must agree between zones for one plan to fit all of them. */
const definitionText = (c: IntColumn) =>
  [normalizeColumnType(c.columnType), c.nullable ? 'NULL' : 'NOT NULL', c.default === null ? '' : `DEFAULT ${c.default}`, c.autoIncrement ? 'AUTO_INCREMENT' : '', c.invisible ? 'INVISIBLE' : '', c.comment ? `COMMENT ${JSON.stringify(c.comment)}` : '']
    .filter(Boolean)
    .join(' ');

const fkText = (f: ForeignKeyRef) => `(${f.columns.join(', ')}) → ${f.refSchema}.${f.refTable}(${f.refColumns.join(', ')}) ON DELETE ${f.onDelete} ON UPDATE ${f.onUpdate}`;

/** Every column read in any zone, each with the first zone's definition; what differs, by column. */
function mergeColumns(catalogs: ZoneCatalog[]): { merged: Map<string, ReadColumn>; differences: Map<string, string> } {
  const merged = new Map<string, ReadColumn>();
  const differences = new Map<string, string>();
  const keys = [...new Set(catalogs.flatMap((z) => [...z.columns.keys()]))];
  for (const k of keys) {
    const found = catalogs.map((z) => ({ zone: z.zone, tables: z.tables, col: z.columns.get(k) }));
    const first = found.find((f) => f.col)!;
    const col = first.col!;
    merged.set(k, col);
    const reference = definitionText(col);
    const differ = found.filter((f) => f.col && definitionText(f.col) !== reference).map((f) => `${f.zone}: ${definitionText(f.col!)}`);
    // a zone without the table is said once per table, elsewhere
    const absent = found.filter((f) => !f.col && f.tables.has(tableKey(col.schema, col.table))).map((f) => f.zone);
    const what: string[] = [];
    if (differ.length) what.push(`differs between zones (${first.zone}: ${reference}; ${differ.join('; ')}): the plan uses ${first.zone}'s`);
    if (absent.length) what.push(`is absent (or not an integer) in ${absent.join(', ')}`);
    if (what.length) differences.set(k, `${colName(col)} ${what.join('; it ')}`);
  }
  return { merged, differences };
}

/** Every foreign key of any zone (the first zone's where several have it); what differs, by foreign key. */
function mergeForeignKeys(catalogs: ZoneCatalog[]): { merged: ForeignKeyRef[]; differences: Map<ForeignKeyRef, string> } {
  const merged = new Map<string, ForeignKeyRef>();
  const where = new Map<string, string[]>();
  const differences = new Map<ForeignKeyRef, string>();
  for (const z of catalogs) {
    for (const fk of z.foreignKeys) {
      const k = JSON.stringify([fk.schema, fk.table, fk.constraint]);
      const have = merged.get(k);
      if (!have) merged.set(k, fk);
      else if (fkText(have) !== fkText(fk)) differences.set(have, `foreign key ${fkName(fk)} differs between zones (${fkText(have)}; at ${z.zone}: ${fkText(fk)}): the plan uses the first`);
      where.set(k, [...(where.get(k) ?? []), z.zone]);
    }
  }
  for (const [k, zones] of where) {
    const fk = merged.get(k)!;
    if (zones.length < catalogs.length) differences.set(fk, `foreign key ${fkName(fk)} exists only in ${zones.join(', ')}: its family is planned for every zone`);
  }
  return { merged: [...merged.values()], differences };
}

const isKeyColumn = (c: ReadColumn, referenced: boolean) => c.autoIncrement || c.primaryKey || c.unique || referenced;

interface Measured {
  maxValue: string | null;
  maxValueRead: boolean;
  autoIncrementNext: string | null;
}

/** Largest value and AUTO_INCREMENT of each key column in every zone (zones in parallel), the larger kept. */
async function measure(dbs: Db[], catalogs: ZoneCatalog[], keys: readonly ColRef[], notes: string[]): Promise<Map<string, Measured>> {
  const perZone = await Promise.all(catalogs.map((z, i) => zoneMaxima(dbs[i]!, z, keys)));
  const out = new Map<string, Measured>();
  for (const c of keys) {
    const k = colKey(c.schema, c.table, c.column);
    const m: Measured = { maxValue: null, maxValueRead: true, autoIncrementNext: null };
    const unread: string[] = [];
    catalogs.forEach((z, i) => {
      const got = perZone[i]!.get(k);
      if (!got) return;
      if (got.maxValue === undefined) unread.push(z.zone);
      else m.maxValue = maxOf(m.maxValue, got.maxValue);
      m.autoIncrementNext = maxOf(m.autoIncrementNext, got.autoIncrementNext);
    });
    if (unread.length) {
      m.maxValueRead = false;
      notes.push(`${colName(c)} leads no usable index in ${unread.join(', ')}: its largest value there is not read (that would scan the table), so its share used may be larger`);
    }
    out.set(k, m);
  }
  return out;
}

/** Tables with key columns that some zones lack: said once per table. */
function noteAbsentTables(catalogs: ZoneCatalog[], keys: readonly ColRef[], notes: string[]): void {
  for (const k of new Set(keys.map((c) => tableKey(c.schema, c.table)))) {
    const where = catalogs.filter((z) => !z.tables.has(k)).map((z) => z.zone);
    const [s, t] = JSON.parse(k) as [string, string];
    if (where.length) notes.push(`${s}.${t} is absent in ${where.join(', ')}: its keys are measured where it exists (\`ezctl check schema\` shows the difference)`);
  }
}

// ---------------------------------------------------------------------------------------------
// The command

export async function int2bigintReport(ctx: Ctx, o: Int2BigintOptions): Promise<Int2BigintReport> {
  const threshold = o.threshold ?? DEFAULT_THRESHOLD;
  if (!(threshold >= 0 && threshold <= 1)) throw badInput(`--threshold ${threshold} is not a share between 0 and 1`, { hint: 'e.g. --threshold 0.5 plans the keys that used half their values or more' });
  const topo = await ctx.topology();
  const cluster = topo.cluster(o.cluster);
  const zones = topo.zonesChosen(cluster.name, o.zones);
  const filter = tableFilter(cluster.config, o);

  const conns: Array<{ zone: string; node: ResolvedNode; db: Db }> = [];
  try {
    for (const zone of zones) {
      const node = topo.master(cluster.name, zone);
      conns.push({ zone, node, db: await ctx.connect(node) });
    }
    ctx.log.info(`reading integer keys at ${conns.map((c) => c.node.name).join(', ')}`);
    const catalogs = await Promise.all(conns.map((c) => readZone(c.db, c.zone, filter)));
    const kept = new Set(catalogs.flatMap((z) => [...z.tables.entries()].filter(([, t]) => filter(t.schema, t.table)).map(([k]) => k)));
    if (kept.size === 0) throw badInput(`no tables match${o.tables ? ` ${o.tables}` : ''} in cluster ${cluster.name}`, { hint: 'check --tables/--exclude and the cluster\'s databases' });

    const notes: string[] = [];
    const definitions = mergeColumns(catalogs);
    const fks = mergeForeignKeys(catalogs);
    const foreignKeys = fks.merged;
    const referencedBy = (c: ColRef) => foreignKeys.filter((f) => f.refSchema === c.schema && f.refTable === c.table && f.refColumns.includes(c.column));
    const keyDefs = [...definitions.merged.values()].filter((c) => kept.has(tableKey(c.schema, c.table)) && isKeyColumn(c, referencedBy(c).length > 0));
    noteAbsentTables(catalogs, keyDefs, notes);
    const measured = await measure(conns.map((c) => c.db), catalogs, keyDefs, notes);

    const columns: KeyColumn[] = keyDefs.map((d) => {
      const { leading: _leading, ...def } = d;
      const m = measured.get(colKey(d.schema, d.table, d.column))!;
      const capacity = capacityOf(d.dataType, d.unsigned);
      return { ...def, ...m, capacity: capacity.toString(), used: usedShare(m.maxValue, m.autoIncrementNext, capacity), referencedBy: referencedBy(d) };
    });
    columns.sort((a, b) => b.used - a.used || colName(a).localeCompare(colName(b)));

    const built = buildFamilies({ keyColumns: columns, columns: [...definitions.merged.values()], foreignKeys, threshold });
    // differences between zones matter for the key columns and for what the families touch
    const familyFks = new Set(built.families.flatMap((f) => f.foreignKeys));
    const relevant = new Set(keyDefs.map((c) => colKey(c.schema, c.table, c.column)));
    for (const l of linksOf([...familyFks])) for (const c of [l.child, l.parent]) relevant.add(colKey(c.schema, c.table, c.column));
    for (const [k, note] of definitions.differences) if (relevant.has(k)) notes.push(note);
    for (const [fk, note] of fks.differences) if (familyFks.has(fk) || kept.has(tableKey(fk.schema, fk.table)) || kept.has(tableKey(fk.refSchema, fk.refTable))) notes.push(note);
    notes.push(...built.notes);
    for (const f of built.families) {
      const outside = f.tables.filter((t) => !kept.has(tableKey(t.schema, t.table))).map((t) => `${t.schema}.${t.table}`);
      if (outside.length) notes.push(`${colName(f.root)}'s family reaches ${outside.join(', ')}, outside --tables/--exclude (or what DRC replicates): planned anyway, a foreign key ties it to the family`);
    }
    return { cluster: cluster.name, zones, threshold, tablesSeen: kept.size, columns, families: built.families, notes };
  } finally {
    await Promise.all(conns.map((c) => c.db.close().catch(() => undefined)));
  }
}
