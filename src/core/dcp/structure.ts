// Table structure across zones: read every table's shape in a few bulk information_schema
// queries, compare shapes, and pick the columns a data compare can trust. `check schema` reports
// the differences; `check full` compares structure first and checks data on commonColumns().
import pLimit from 'p-limit';
import type { Ctx } from '../context.js';
import type { ResolvedNode } from '../config/load.js';
import type { Db } from '../db/connect.js';
import { foreignKeysWhere, SYSTEM_SCHEMAS } from '../db/introspect.js';
import { compilePatterns, type TableMatcher } from '../config/patterns.js';
import { compileRules } from '../cluster/rules.js';
import { badInput } from '../exit.js';

export interface ColumnShape {
  name: string;
  /** 1-based, as ORDINAL_POSITION */
  position: number;
  /** lower case, e.g. "decimal" */
  dataType: string;
  /** lower case full type without integer display width, e.g. "decimal(12,2)", "int unsigned" */
  columnType: string;
  nullable: boolean;
  /** the default as the server prints it; null when there is none (or it is NULL) */
  default: string | null;
  charset: string | null;
  collation: string | null;
  /** "virtual as (expr)" / "stored as (expr)", null for a plain column */
  generated: string | null;
  /** what else the column does: "auto_increment", "on update current_timestamp(3)", "invisible" */
  extra: string;
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

export type ShapeDiffKind =
  | 'table-missing'
  | 'column-missing'
  | 'column-type'
  | 'column-nullable'
  | 'column-default'
  | 'column-charset'
  | 'column-collation'
  | 'column-extra'
  | 'column-generated'
  | 'column-order'
  | 'primary-key'
  | 'index-missing'
  | 'index-different'
  | 'foreign-key-missing'
  | 'foreign-key-different'
  | 'engine'
  | 'table-collation';

/**
 * One difference between two shapes. `left` is the value in the first shape given to
 * compareShapes (the reference), `right` the value in the second; null means "not there"
 * (for the *-missing kinds: a null side lacks the object).
 */
export interface ShapeDiff {
  kind: ShapeDiffKind;
  /** column, index or foreign key name; "db.table" for table-level kinds */
  object: string;
  left: string | null;
  right: string | null;
}

// ---------------------------------------------------------------------------------------------
// Reading

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
  const tableRows = await db.query<{ s: string; t: string; engine: string | null; coll: string | null; est: string | number | null }>(
    `SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t, ENGINE AS engine, TABLE_COLLATION AS coll, TABLE_ROWS AS est
       FROM information_schema.TABLES
      WHERE TABLE_TYPE IN (${placeholders(TABLE_TYPES.length)}) AND TABLE_SCHEMA NOT IN (${placeholders(SYSTEM_SCHEMAS.length)})
      ORDER BY TABLE_SCHEMA, TABLE_NAME`,
    [...TABLE_TYPES, ...SYSTEM_SCHEMAS],
  );
  const shapes = new Map<string, TableShape>();
  for (const r of tableRows) {
    if (filter && !filter(r.s, r.t)) continue;
    shapes.set(`${r.s}.${r.t}`, { schema: r.s, table: r.t, engine: r.engine, collation: r.coll, rowsEstimate: Number(r.est ?? 0), columns: [], primaryKey: [], indexes: [], foreignKeys: [] });
  }
  if (shapes.size === 0) return shapes;
  const schemas = [...new Set([...shapes.values()].map((s) => s.schema))];
  const inSchemas = `TABLE_SCHEMA IN (${placeholders(schemas.length)})`;

  const columnRows = await db.query<{
    s: string; t: string; name: string; pos: string | number; dt: string; ct: string; nul: string; def: string | null; extra: string | null; cs: string | null; coll: string | null; gen: string | null;
  }>(
    `SELECT TABLE_SCHEMA AS s, TABLE_NAME AS t, COLUMN_NAME AS name, ORDINAL_POSITION AS pos, DATA_TYPE AS dt, COLUMN_TYPE AS ct,
            IS_NULLABLE AS nul, COLUMN_DEFAULT AS def, EXTRA AS extra, CHARACTER_SET_NAME AS cs, COLLATION_NAME AS coll,
            GENERATION_EXPRESSION AS gen
       FROM information_schema.COLUMNS WHERE ${inSchemas}
      ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION`,
    schemas,
  );
  for (const c of columnRows) {
    const shape = shapes.get(`${c.s}.${c.t}`);
    if (!shape) continue; // a view's column, or a table the filter left out
    shape.columns.push(columnShape(c));
  }

  // SELECT *: MySQL 8 has EXPRESSION (functional index parts) and IS_VISIBLE, MariaDB has
  // IGNORED; naming any of them would fail on the other server.
  const statRows = await db.query<Record<string, unknown>>(
    `SELECT * FROM information_schema.STATISTICS WHERE ${inSchemas} ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX`,
    schemas,
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

  for (const fk of await foreignKeysWhere(db, `k.${inSchemas}`, schemas)) {
    const shape = shapes.get(`${fk.schema}.${fk.table}`);
    if (!shape) continue;
    shape.foreignKeys.push({ name: fk.name, columns: fk.columns, references: `${fk.refSchema}.${fk.refTable}`, refColumns: fk.refColumns, onUpdate: fk.onUpdate, onDelete: fk.onDelete });
  }
  return shapes;
}

function columnShape(c: { name: string; pos: string | number; dt: string; ct: string; nul: string; def: string | null; extra: string | null; cs: string | null; coll: string | null; gen: string | null }): ColumnShape {
  const extraRaw = (c.extra ?? '').toLowerCase();
  // MariaDB leaves GENERATION_EXPRESSION NULL for plain columns, MySQL an empty string.
  const generated = c.gen ? `${/stored|persistent/.test(extraRaw) ? 'stored' : 'virtual'} as (${c.gen})` : null;
  return {
    name: c.name,
    position: Number(c.pos),
    dataType: c.dt.toLowerCase(),
    columnType: normalizeColumnType(c.ct),
    nullable: c.nul === 'YES',
    default: generated ? null : normalizeDefault(c.def),
    charset: c.cs,
    collation: c.coll,
    generated,
    extra: normalizeExtra(extraRaw),
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

// ---------------------------------------------------------------------------------------------
// Comparing

export function indexDefinition(ix: IndexShape): string {
  const parts = ix.parts.map((p) => `${p.column}${p.subPart !== null ? `(${p.subPart})` : ''}${p.descending ? ' DESC' : ''}`).join(', ');
  const kind = ix.name === 'PRIMARY' ? 'PRIMARY KEY' : ix.type === 'FULLTEXT' || ix.type === 'SPATIAL' ? ix.type : ix.unique ? 'UNIQUE' : 'KEY';
  const using = ix.type === 'HASH' ? ' USING HASH' : '';
  return `${kind} (${parts})${using}${ix.visible ? '' : ' IGNORED'}`;
}

export function foreignKeyDefinition(fk: ForeignKeyShape): string {
  return `(${fk.columns.join(', ')}) REFERENCES ${fk.references} (${fk.refColumns.join(', ')}) ON UPDATE ${fk.onUpdate} ON DELETE ${fk.onDelete}`;
}

/** A column as a one-line definition, for diffs that show a whole column. */
export function columnDefinition(c: ColumnShape): string {
  const bits = [c.columnType];
  if (c.generated) bits.push(c.generated);
  else {
    bits.push(c.nullable ? 'NULL' : 'NOT NULL');
    if (c.default !== null) bits.push(`DEFAULT ${c.default}`);
  }
  if (c.extra) bits.push(c.extra);
  return bits.join(' ');
}

function placeOf(columns: readonly ColumnShape[], name: string): string {
  const i = columns.findIndex((c) => c.name === name);
  return i <= 0 ? 'first' : `after ${columns[i - 1]!.name}`;
}

/** Longest common subsequence of two name lists (the columns that did not move). */
function longestCommonSubsequence(a: readonly string[], b: readonly string[]): Set<string> {
  const dp: number[][] = Array.from({ length: a.length + 1 }, () => new Array<number>(b.length + 1).fill(0));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) {
      dp[i]![j] = a[i] === b[j] ? dp[i + 1]![j + 1]! + 1 : Math.max(dp[i + 1]![j]!, dp[i]![j + 1]!);
    }
  }
  const keep = new Set<string>();
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    if (a[i] === b[j]) {
      keep.add(a[i]!);
      i++;
      j++;
    } else if (dp[i + 1]![j]! >= dp[i]![j + 1]!) i++;
    else j++;
  }
  return keep;
}

/**
 * Every structural difference between two shapes of the same table; [] when they match.
 * `a` is the reference: each diff's left is a's value, right is b's.
 */
export function compareShapes(a: TableShape, b: TableShape): ShapeDiff[] {
  const diffs: ShapeDiff[] = [];
  const tableName = `${a.schema}.${a.table}`;
  const add = (kind: ShapeDiffKind, object: string, left: string | null, right: string | null) => diffs.push({ kind, object, left, right });

  if ((a.engine ?? '').toLowerCase() !== (b.engine ?? '').toLowerCase()) add('engine', tableName, a.engine, b.engine);
  if (a.collation !== b.collation) add('table-collation', tableName, a.collation, b.collation);

  const bColumns = new Map(b.columns.map((c) => [c.name, c]));
  const aNames = new Set(a.columns.map((c) => c.name));
  for (const ca of a.columns) {
    const cb = bColumns.get(ca.name);
    if (!cb) {
      add('column-missing', ca.name, columnDefinition(ca), null);
      continue;
    }
    if (ca.columnType !== cb.columnType) add('column-type', ca.name, ca.columnType, cb.columnType);
    if (ca.nullable !== cb.nullable) add('column-nullable', ca.name, ca.nullable ? 'NULL' : 'NOT NULL', cb.nullable ? 'NULL' : 'NOT NULL');
    if (ca.default !== cb.default) add('column-default', ca.name, ca.default, cb.default);
    // A column that is not text on one side has its type difference already; a charset change
    // always changes the collation too, so the collation is reported only within one charset.
    if (ca.charset !== null && cb.charset !== null) {
      if (ca.charset !== cb.charset) add('column-charset', ca.name, ca.charset, cb.charset);
      else if (ca.collation !== cb.collation) add('column-collation', ca.name, ca.collation, cb.collation);
    }
    if (ca.extra !== cb.extra) add('column-extra', ca.name, ca.extra || null, cb.extra || null);
    if (ca.generated !== cb.generated) add('column-generated', ca.name, ca.generated, cb.generated);
  }
  for (const cb of b.columns) if (!aNames.has(cb.name)) add('column-missing', cb.name, null, columnDefinition(cb));

  // Order: only columns both sides have count; the ones outside the longest common
  // subsequence are the ones that moved (one diff per moved column, not one per shifted one).
  const commonA = a.columns.filter((c) => bColumns.has(c.name)).map((c) => c.name);
  const commonB = b.columns.filter((c) => aNames.has(c.name)).map((c) => c.name);
  if (commonA.join('\0') !== commonB.join('\0')) {
    const stayed = longestCommonSubsequence(commonA, commonB);
    for (const name of commonA) if (!stayed.has(name)) add('column-order', name, placeOf(a.columns, name), placeOf(b.columns, name));
  }

  const aPrimary = a.indexes.find((i) => i.name === 'PRIMARY');
  const bPrimary = b.indexes.find((i) => i.name === 'PRIMARY');
  const aPk = aPrimary ? indexDefinition(aPrimary) : null;
  const bPk = bPrimary ? indexDefinition(bPrimary) : null;
  if (aPk !== bPk) add('primary-key', 'PRIMARY', aPk, bPk);

  const bIndexes = new Map(b.indexes.filter((i) => i.name !== 'PRIMARY').map((i) => [i.name, indexDefinition(i)]));
  const aIndexes = new Map(a.indexes.filter((i) => i.name !== 'PRIMARY').map((i) => [i.name, indexDefinition(i)]));
  for (const [name, def] of aIndexes) {
    const other = bIndexes.get(name);
    if (other === undefined) add('index-missing', name, def, null);
    else if (other !== def) add('index-different', name, def, other);
  }
  for (const [name, def] of bIndexes) if (!aIndexes.has(name)) add('index-missing', name, null, def);

  const bFks = new Map(b.foreignKeys.map((f) => [f.name, foreignKeyDefinition(f)]));
  const aFks = new Map(a.foreignKeys.map((f) => [f.name, foreignKeyDefinition(f)]));
  for (const [name, def] of aFks) {
    const other = bFks.get(name);
    if (other === undefined) add('foreign-key-missing', name, def, null);
    else if (other !== def) add('foreign-key-different', name, def, other);
  }
  for (const [name, def] of bFks) if (!aFks.has(name)) add('foreign-key-missing', name, null, def);
  return diffs;
}

/**
 * Which values print the same, so that a checksum over their text agrees whenever the values
 * do: int and bigint do (a widened key), decimal(12,2) and decimal(14,2) do, decimal(12,2) and
 * decimal(12,3) do not ("1.50" vs "1.500"), nor datetime(3) and datetime(6), nor text in
 * latin1 and in utf8mb4 (other bytes for the same character).
 */
export function typeClass(c: Pick<ColumnShape, 'dataType' | 'columnType' | 'charset'>): string {
  const t = c.dataType.toLowerCase();
  const args = /\(([^)]*)\)/.exec(c.columnType)?.[1]?.trim();
  // utf8 (utf8mb3) is utf8mb4 restricted to 3 bytes: the same bytes for every character it holds.
  const charset = c.charset === 'utf8' || c.charset === 'utf8mb3' ? 'utf8mb4' : (c.charset ?? '');
  switch (t) {
    case 'tinyint':
    case 'smallint':
    case 'mediumint':
    case 'int':
    case 'integer':
    case 'bigint':
      return /zerofill/.test(c.columnType) ? `integer zerofill(${args ?? ''})` : 'integer';
    case 'decimal':
    case 'numeric':
      return `decimal scale ${args?.split(',')[1]?.trim() ?? '0'}`;
    case 'real':
    case 'double':
      return 'double';
    case 'char':
    case 'varchar':
    case 'tinytext':
    case 'text':
    case 'mediumtext':
    case 'longtext':
      return `text ${charset}`;
    case 'enum':
    case 'set':
      return `${t} ${charset}`;
    case 'binary':
      return `binary(${args ?? '1'})`; // zero-padded to its length
    case 'varbinary':
    case 'tinyblob':
    case 'blob':
    case 'mediumblob':
    case 'longblob':
      return 'bytes';
    case 'datetime':
    case 'timestamp':
    case 'time':
      return `${t}(${args ?? '0'})`;
    case 'bit':
      return `bit(${args ?? '1'})`;
    default:
      return t; // float, date, year, json, geometry…: only the same type compares
  }
}

/**
 * The columns a data compare can use across these shapes of one table: present in every shape
 * with the same type class and the same generation rule, in the first shape's order. Every
 * other column is excluded with the reason. `names` label the shapes in reasons (node names).
 */
export function commonColumns(shapes: TableShape[], names?: string[]): { columns: string[]; excluded: { column: string; why: string }[] } {
  const columns: string[] = [];
  const excluded: { column: string; why: string }[] = [];
  if (shapes.length === 0) return { columns, excluded };
  const label = (i: number) => names?.[i] ?? `shape ${i + 1}`;
  const byName = shapes.map((s) => new Map(s.columns.map((c) => [c.name, c])));
  const allNames: string[] = [];
  for (const s of shapes) for (const c of s.columns) if (!allNames.includes(c.name)) allNames.push(c.name);

  for (const name of allNames) {
    const found = byName.map((m) => m.get(name));
    const missingOn = found.flatMap((c, i) => (c ? [] : [label(i)]));
    if (missingOn.length) {
      excluded.push({ column: name, why: `missing on ${missingOn.join(', ')}` });
      continue;
    }
    const cols = found as ColumnShape[];
    const classes = new Set(cols.map(typeClass));
    if (classes.size > 1) {
      excluded.push({ column: name, why: `type differs: ${describeSpread(cols.map((c) => c.columnType + (c.charset ? ` ${c.charset}` : '')), label)}` });
      continue;
    }
    if (new Set(cols.map((c) => c.generated ?? '')).size > 1) {
      excluded.push({ column: name, why: `generated differently: ${describeSpread(cols.map((c) => c.generated ?? 'not generated'), label)}` });
      continue;
    }
    columns.push(name);
  }
  return { columns, excluded };
}

/** "decimal(12,2) on bj-master, decimal(12,3) on sh-master, sh-replica1" */
function describeSpread(values: string[], label: (i: number) => string): string {
  const where = new Map<string, string[]>();
  values.forEach((v, i) => where.set(v, [...(where.get(v) ?? []), label(i)]));
  return [...where].map(([v, on]) => `${v} on ${on.join(', ')}`).join('; ');
}

// ---------------------------------------------------------------------------------------------
// check schema

export interface SchemaDiff {
  /** the node whose structure differs */
  node: string;
  /** the node it was compared against (the reference master, or the replica's own master) */
  against: string;
  kind: ShapeDiffKind;
  object: string;
  /** the value on `against`; null when `against` lacks the object */
  left: string | null;
  /** the value on `node`; null when `node` lacks the object */
  right: string | null;
}

export interface SchemaReport {
  consistent: boolean;
  cluster: string;
  /** the master every other zone's master is compared against */
  reference: string;
  nodes: string[];
  comparisons: { node: string; against: string }[];
  /** distinct tables seen on any node (after the filters) */
  tablesCompared: number;
  /** only the tables that differ, in name order */
  tables: Array<{ table: string; diffs: SchemaDiff[] }>;
}

export interface CheckSchemaOptions {
  cluster?: string;
  zones?: string[];
  tables?: string;
  exclude?: string;
  /** false: masters only */
  replicas?: boolean;
}

/** What a structure check covers: what DRC replicates (the cluster's databases and drc rules), narrowed by --tables/--exclude. */
export function tableFilter(cluster: { databases?: string[] | undefined; drc?: { include?: string[] | undefined; exclude?: string[] | undefined } | undefined }, o: { tables?: string; exclude?: string }): TableMatcher {
  const replicated = compileRules({ databases: cluster.databases, include: cluster.drc?.include, exclude: cluster.drc?.exclude });
  const include = compilePatterns(o.tables);
  const exclude = compilePatterns(o.exclude);
  return (s, t) => replicated(s, t) && (!include || include(s, t)) && !(exclude && exclude(s, t));
}

export async function checkSchema(ctx: Ctx, opts: CheckSchemaOptions): Promise<SchemaReport> {
  // Everything the user typed is checked before any server is contacted.
  const topo = await ctx.topology();
  const cluster = topo.cluster(opts.cluster);
  topo.zonesChosen(cluster.name, opts.zones);
  const known = topo.zonesOf(cluster.name);
  const filter = tableFilter(cluster.config, opts);
  // The reference: the first zone asked for, else a global cluster's writer zone, else the first zone.
  const writer = cluster.config.writerZone;
  const zones = opts.zones ?? (writer && known.includes(writer) ? [writer, ...known.filter((z) => z !== writer)] : known);
  const all = topo.nodes(cluster.name);
  const masters = zones.map((z) => topo.master(cluster.name, z));
  const replicas = opts.replicas === false ? [] : zones.flatMap((z) => all.filter((n) => n.zone === z && n.role === 'replica'));
  const reference = masters[0]!;
  const comparisons: { node: ResolvedNode; against: ResolvedNode }[] = [
    ...masters.slice(1).map((m) => ({ node: m, against: reference })),
    ...replicas.map((r) => ({ node: r, against: masters.find((m) => m.zone === r.zone)! })),
  ];
  if (comparisons.length === 0) {
    throw badInput(`nothing to compare: only ${reference.name} is selected`, { hint: 'name two zones with --zones, or leave out --no-replicas' });
  }
  const nodes = masters.flatMap((m) => [m, ...replicas.filter((r) => r.zone === m.zone)]);

  ctx.log.info(`reading table structure on ${nodes.map((n) => n.name).join(', ')}`);
  const limit = pLimit(8);
  const shapesByNode = new Map<string, Map<string, TableShape>>();
  await Promise.all(nodes.map((node) => limit(async () => {
    const started = Date.now();
    const db = await ctx.connect(node);
    try {
      const shapes = await readShapes(db, filter);
      shapesByNode.set(node.name, shapes);
      ctx.log.debug(`${node.name}: ${shapes.size} tables in ${Date.now() - started} ms`);
    } finally {
      await db.close();
    }
  })));

  const allTables = new Set<string>();
  for (const shapes of shapesByNode.values()) for (const t of shapes.keys()) allTables.add(t);
  const byTable = new Map<string, SchemaDiff[]>();
  for (const { node, against } of comparisons) {
    const mine = shapesByNode.get(node.name)!;
    const theirs = shapesByNode.get(against.name)!;
    const push = (table: string, d: ShapeDiff) => {
      const list = byTable.get(table) ?? [];
      list.push({ node: node.name, against: against.name, ...d });
      byTable.set(table, list);
    };
    for (const table of allTables) {
      const a = theirs.get(table);
      const b = mine.get(table);
      if (!a && !b) continue;
      if (!a || !b) push(table, { kind: 'table-missing', object: table, left: a ? 'table' : null, right: b ? 'table' : null });
      else for (const d of compareShapes(a, b)) push(table, d);
    }
  }
  if (allTables.size === 0) ctx.log.warn('no table matched: check --tables/--exclude and the cluster\'s databases');
  const tables = [...byTable].sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)).map(([table, diffs]) => ({ table, diffs }));
  return {
    consistent: tables.length === 0,
    cluster: cluster.name,
    reference: reference.name,
    nodes: nodes.map((n) => n.name),
    comparisons: comparisons.map((c) => ({ node: c.node.name, against: c.against.name })),
    tablesCompared: allTables.size,
    tables,
  };
}

// ---------------------------------------------------------------------------------------------
// Rendering

const show = (v: string | null) => v ?? '(none)';

/** One diff as text, read as "on the node, compared with the reference": "column amount type decimal(12,2) → decimal(14,2)". */
export function describeDiff(d: Pick<ShapeDiff, 'kind' | 'object' | 'left' | 'right'>, against = 'the reference'): string {
  const presence = (what: string) => (d.right === null ? `${what} missing (${against} has ${d.left})` : `${what} extra: ${d.right} (not on ${against})`);
  switch (d.kind) {
    case 'table-missing':
      return d.right === null ? `table missing (${against} has it)` : `table extra (not on ${against})`;
    case 'column-missing':
      return presence(`column ${d.object}`);
    case 'index-missing':
      return presence(`index ${d.object}`);
    case 'foreign-key-missing':
      return presence(`foreign key ${d.object}`);
    case 'column-type':
    case 'column-nullable':
    case 'column-default':
    case 'column-charset':
    case 'column-collation':
    case 'column-extra':
    case 'column-generated':
    case 'column-order': {
      const what = { 'column-type': 'type', 'column-nullable': 'nullable', 'column-default': 'default', 'column-charset': 'charset', 'column-collation': 'collation', 'column-extra': 'extra', 'column-generated': 'generated', 'column-order': 'position' }[d.kind];
      return `column ${d.object} ${what} ${show(d.left)} → ${show(d.right)}`;
    }
    case 'index-different':
      return `index ${d.object} ${d.left} → ${d.right}`;
    case 'foreign-key-different':
      return `foreign key ${d.object} ${d.left} → ${d.right}`;
    case 'primary-key':
      return `primary key ${show(d.left)} → ${show(d.right)}`;
    case 'engine':
      return `engine ${show(d.left)} → ${show(d.right)}`;
    case 'table-collation':
      return `table collation ${show(d.left)} → ${show(d.right)}`;
  }
}

export function renderSchemaReport(r: SchemaReport): string {
  const plural = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`;
  if (r.consistent) return `consistent: ${plural(r.tablesCompared, 'table')} identical on ${plural(r.nodes.length, 'node')} (reference ${r.reference})`;
  const lines: string[] = [];
  for (const t of r.tables) {
    lines.push(t.table);
    for (const d of t.diffs) lines.push(`  ${d.node} vs ${d.against}: ${describeDiff(d, d.against)}`);
  }
  lines.push(`${plural(r.tables.length, 'table')} differ${r.tables.length === 1 ? 's' : ''} out of ${r.tablesCompared} compared (reference ${r.reference})`);
  return lines.join('\n');
}
