// Two shapes of one table compared (pure): every structural difference, its text, and the
// columns a data compare can trust across shapes. `check schema` and `check full` compare zones
// with it; osc compares the ghost with the original.
import type { ColumnShape, ForeignKeyShape, IndexShape, TableShape } from './introspect.js';

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
