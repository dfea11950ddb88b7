// What an online schema change will do, decided before anything changes: the new shape (the
// ALTER is tried on an empty twin of the table created with sql_log_bin=0, so neither the zone's
// replicas nor DRC ever see it),
// the key the copy walks that both shapes share, the columns carried over, and every reason to
// refuse (exit 4): no shared unique key, a new unique key, foreign keys, a rename without a
// mapping, a table that differs between zones, helper tables left by an earlier job.
import type { Db } from '../db/connect.js';
import { quoteId, quoteTable, tableArgument } from '../db/quote.js';
import { badInput } from '../exit.js';
import { readShapes, rowKey, showCreateTable, type TableShape } from '../db/introspect.js';
import { compareShapes, commonColumns, describeDiff } from '../db/shape-compare.js';
import { oscHelperNames, oscProbeName } from '../cluster/helper-tables.js';
import { deferrableIndexes, type DeferredIndex } from '../copy/indexes.js';
export { deferrableIndexes, leaveOutIndexesSql, buildIndexesSql, type DeferredIndex } from '../copy/indexes.js';

export interface OscNames {
  ghost: string;
  /** the sentry during cut-over, then the old table's name after it */
  old: string;
}

export interface OscPlan {
  schema: string;
  table: string;
  alter: string;
  names: OscNames;
  before: TableShape;
  after: TableShape;
  /** the unique key the copy walks: the same columns, unique in both shapes */
  key: { index: string; columns: string[]; integer: boolean };
  /** old column → new column, for every column carried over */
  columns: Array<{ from: string; to: string }>;
  /** columns the ALTER drops (their data goes) */
  dropped: string[];
  /** columns the ALTER adds (they get their default) */
  added: string[];
  /** columns whose type changes (compared by value only where the text form stays the same) */
  retyped: string[];
  /** columns the pre-cut-over checksum compares */
  verifyColumns: string[];
  rowsEstimate: number;
  /** `ALTER TABLE ... ALGORITHM=INSTANT` is possible (probed on the temporary copy) */
  instant: boolean;
  /**
   * The new shape's plain secondary indexes, which the ghost can do without during the copy and
   * get afterwards in one online ALTER (a sorted build instead of an insert into each index per
   * row): empty where foreign keys or full-text/spatial indexes are involved.
   */
  deferrableIndexes: DeferredIndex[];
  /** the table's triggers (carried to the new table at the cut-over with --include-triggers) */
  triggers: TriggerDef[];
  refusals: string[];
  notes: string[];
}

export interface TriggerDef {
  name: string;
  timing: string;
  event: string;
  /** the body as information_schema.TRIGGERS keeps it (ACTION_STATEMENT) */
  body: string;
  /** user@host */
  definer: string;
  sqlMode: string;
  order: number;
}

/**
 * The name a trigger has on the ghost, and so on the new table after the cut-over: trigger names
 * are unique in a schema, and the original keeps its own until then. The suffix comes off again
 * at the next change (gh-ost's --trigger-suffix and --remove-trigger-suffix-if-exists), so names
 * take turns instead of growing.
 */
export function ghostTriggerName(name: string): string {
  return name.endsWith(TRIGGER_SUFFIX) ? name.slice(0, -TRIGGER_SUFFIX.length) : `${name}${TRIGGER_SUFFIX}`;
}
export const TRIGGER_SUFFIX = '_ezosc';

/** CREATE TRIGGER for a trigger on another table, under another name; the definer kept. */
export function createTriggerSql(schema: string, table: string, t: TriggerDef, name: string): string {
  const at = t.definer.lastIndexOf('@');
  const definer = at > 0 ? `DEFINER = ${quoteId(t.definer.slice(0, at))}@${quoteId(t.definer.slice(at + 1))} ` : '';
  const timing = t.timing.toUpperCase();
  const event = t.event.toUpperCase();
  if (!['BEFORE', 'AFTER'].includes(timing) || !['INSERT', 'UPDATE', 'DELETE'].includes(event)) throw new Error(`trigger ${t.name}: unknown timing or event ${timing} ${event}`);
  return `CREATE ${definer}TRIGGER ${quoteTable(schema, name)} ${timing} ${event} ON ${quoteTable(schema, table)} FOR EACH ROW ${t.body}`;
}

/** Why the triggers cannot be carried over as they are (the ALTER takes away a column they use, a name clash). */
export function triggerRefusals(triggers: TriggerDef[], dropped: string[], renamed: string[], taken: ReadonlySet<string> = new Set()): string[] {
  const out: string[] = [];
  const names = new Set([...triggers.map((t) => t.name), ...taken]);
  for (const t of triggers) {
    const ghostName = ghostTriggerName(t.name);
    if (ghostName.length > 64) out.push(`trigger ${t.name}: its name on the new table, ${ghostName}, is longer than 64 characters`);
    if (names.has(ghostName)) out.push(`trigger ${t.name}: its name on the new table, ${ghostName}, is taken by another trigger in the schema`);
    for (const c of [...dropped, ...renamed]) {
      const esc = c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
      if (new RegExp(`\\b(NEW|OLD)\\s*\\.\\s*(\`${esc}\`|${esc}\\b)`, 'i').test(t.body)) {
        out.push(`trigger ${t.name} uses column ${c}, which the ALTER ${dropped.includes(c) ? 'drops' : 'renames'}: it would fail on every write after the cut-over; change the trigger first`);
      }
    }
  }
  return out;
}

/** The indexes the ghost goes without during the copy (--no-defer-indexes: none). */
export function indexesLeftOut(plan: Pick<OscPlan, 'deferrableIndexes'>, defer: boolean | undefined): DeferredIndex[] {
  return defer === false ? [] : plan.deferrableIndexes;
}

/** "old:new" pairs from --map, for columns the ALTER renames. */
export function parseColumnMap(list: readonly string[] | undefined): Map<string, string> {
  const out = new Map<string, string>();
  for (const item of list ?? []) {
    const m = /^([^:\s`]+):([^:\s`]+)$/.exec(item.trim());
    if (!m) throw badInput(`--map ${JSON.stringify(item)} is not old_column:new_column`);
    out.set(m[1]!, m[2]!);
  }
  return out;
}

/** Statements an --alter must not smuggle in: it is one ALTER TABLE's list of changes. */
export function checkAlterText(alter: string): void {
  const a = alter.trim();
  if (!a) throw badInput('--alter is empty');
  if (/;/.test(a.replace(/'[^']*'|"[^"]*"|`[^`]*`/g, ''))) throw badInput('--alter holds a ";": give the changes of one ALTER TABLE, not statements');
  if (/^\s*alter\s+table\b/i.test(a)) throw badInput('--alter takes only the changes ("ADD COLUMN c INT"), not "ALTER TABLE t ..."');
  if (/\brename\s+(to|as)\b|^\s*rename\s+\S+\s*$/i.test(a)) throw badInput('--alter cannot rename the table');
}

/** Columns the ALTER text renames: CHANGE [COLUMN] a b ..., RENAME COLUMN a TO b. */
export function renamedColumns(alter: string): Array<{ from: string; to: string }> {
  const out: Array<{ from: string; to: string }> = [];
  const ident = '(`(?:[^`]|``)+`|[A-Za-z0-9_$]+)';
  const unq = (s: string) => (s.startsWith('`') ? s.slice(1, -1).replace(/``/g, '`') : s);
  for (const m of alter.matchAll(new RegExp(`\\bchange\\s+(?:column\\s+)?${ident}\\s+${ident}`, 'gi'))) {
    if (unq(m[1]!) !== unq(m[2]!)) out.push({ from: unq(m[1]!), to: unq(m[2]!) });
  }
  for (const m of alter.matchAll(new RegExp(`\\brename\\s+column\\s+${ident}\\s+to\\s+${ident}`, 'gi'))) out.push({ from: unq(m[1]!), to: unq(m[2]!) });
  return out;
}

/**
 * Build the plan on one zone master: the ALTER applied to a TEMPORARY copy shows the new shape
 * (and fails early on a bad ALTER, exit 2) without writing anything to the binlog.
 */
export async function planOnMaster(
  db: Db, schema: string, table: string, alter: string, map: Map<string, string>, resuming = false,
  /** part of a family changed together (runOscFamily): foreign keys are its business, not refusals */
  family = false,
  o: { includeTriggers?: boolean } = {},
): Promise<OscPlan> {
  // a family table can be rebuilt unchanged (a foreign key of it must follow its parent)
  const rebuildOnly = family && !alter.trim();
  if (!rebuildOnly) checkAlterText(alter);
  const names = oscHelperNames(table);
  const shapes = await readShapes(db, (s, t) => s === schema && (t === table || t === names.ghost || t === names.old));
  const before = shapes.get(`${schema}.${table}`);
  if (!before) throw badInput(`table ${schema}.${table} does not exist`);
  const refusals: string[] = [];
  const notes: string[] = [];
  if (!resuming && shapes.has(`${schema}.${names.ghost}`)) {
    refusals.push(`${schema}.${names.ghost} exists: the ghost of another change of ${table}; \`ezctl osc abort --table ${tableArgument(schema, table)}\` drops it and its saved state if its job died (--resume continues that job instead), and \`ezctl osc cleanup\` says whether a job still runs`);
  }
  if (shapes.has(`${schema}.${names.old}`)) {
    refusals.push(`${schema}.${names.old} exists: the original kept by an earlier change of ${table}; \`ezctl osc cleanup --execute\` drops it (or give that change --drop-old-table)`);
  }
  // The new shape, from an empty twin of the table that the binlog never sees (sql_log_bin=0):
  // first asked to change instantly (so the plan knows whether a copy is needed at all), then,
  // if that is refused, changed the ordinary way; a bad ALTER fails here, before anything.
  const twin = oscProbeName(process.pid);
  let after: TableShape | undefined;
  let afterDdl = '';
  let instant = false;
  await db.exec('SET SESSION sql_log_bin = 0');
  try {
    await db.exec(`DROP TABLE IF EXISTS ${quoteTable(schema, twin)}`);
    await db.exec(`CREATE TABLE ${quoteTable(schema, twin)} LIKE ${quoteTable(schema, table)}`);
    instant = rebuildOnly ? false : await db.exec(`ALTER TABLE ${quoteTable(schema, twin)} ${alter}, ALGORITHM=INSTANT`).then(() => true, () => false);
    if (!instant && !rebuildOnly) {
      try {
        await db.exec(`ALTER TABLE ${quoteTable(schema, twin)} ${alter}`);
      } catch (e) {
        throw badInput(`the ALTER is refused by the server: ${(e as Error).message.replace(/ in: .*/s, '')}`);
      }
    }
    const read = await readShapes(db, (s, t) => s === schema && t === twin);
    const shape = read.get(`${schema}.${twin}`);
    if (!shape) throw new Error('the new shape could not be read');
    after = { ...shape, table };
    afterDdl = (await showCreateTable(db, schema, twin)) ?? '';
  } finally {
    await db.exec(`DROP TABLE IF EXISTS ${quoteTable(schema, twin)}`).catch(() => undefined);
    await db.exec('SET SESSION sql_log_bin = 1').catch(() => undefined);
  }

  if (!family && before.foreignKeys.length) refusals.push(`${schema}.${table} has foreign keys (${before.foreignKeys.map((f) => f.name).join(', ')}): the cut-over would leave them pointing at the old table; widen keys with \`ezctl migrate int2bigint\``);
  const children = await db.query<{ n: string }>(
    'SELECT CONSTRAINT_NAME AS n FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE UNIQUE_CONSTRAINT_SCHEMA = ? AND REFERENCED_TABLE_NAME = ?',
    [schema, table],
  );
  if (!family && children.length) refusals.push(`${schema}.${table} is referenced by foreign keys (${children.map((c) => c.n).join(', ')})`);

  // Triggers move with the original at the RENAME: left there, they would stop firing silently
  const triggers = (await db.query<{ name: string; timing: string; event: string; body: string; definer: string; sqlMode: string; ord: number }>(
    `SELECT TRIGGER_NAME AS name, ACTION_TIMING AS timing, EVENT_MANIPULATION AS event, ACTION_STATEMENT AS body, DEFINER AS definer, SQL_MODE AS sqlMode, ACTION_ORDER AS ord
       FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ? ORDER BY EVENT_MANIPULATION, ACTION_TIMING, ACTION_ORDER`,
    [schema, table],
  )).map((r) => ({ name: r.name, timing: r.timing, event: r.event, body: r.body, definer: r.definer, sqlMode: r.sqlMode, order: Number(r.ord) }));
  if (triggers.length && !o.includeTriggers) {
    refusals.push(`${schema}.${table} has triggers (${triggers.map((t) => t.name).join(', ')}): they would stay on the old table and stop firing; --include-triggers carries them to the new table at the cut-over`);
  }

  const renames = renamedColumns(alter);
  for (const r of renames) {
    if (map.get(r.from) !== r.to) refusals.push(`the ALTER renames column ${r.from} to ${r.to}: say so with --map ${r.from}:${r.to} (otherwise its data would be dropped)`);
  }
  const columns: Array<{ from: string; to: string }> = [];
  const dropped: string[] = [];
  for (const c of before.columns) {
    const to = map.get(c.name) ?? c.name;
    if (after.columns.some((x) => x.name === to) && !after.columns.find((x) => x.name === to)?.generated && !c.generated) columns.push({ from: c.name, to });
    else if (!after.columns.some((x) => x.name === to)) dropped.push(c.name);
  }
  const carried = new Set(columns.map((c) => c.to));
  const added = after.columns.filter((c) => !carried.has(c.name) && !before.columns.some((b) => b.name === c.name)).map((c) => c.name);
  const retyped = columns.filter((c) => {
    const a = before.columns.find((x) => x.name === c.from)!;
    const b = after.columns.find((x) => x.name === c.to)!;
    return a.columnType !== b.columnType;
  }).map((c) => c.from);

  const { key, refusals: keyRefusals } = copyKey(before, after, map);
  refusals.push(...keyRefusals);
  // A unique key the table did not have: a row that duplicates another under it would be dropped
  // by the copy, and the binlog applier's REPLACE would delete the other row instead; pt-osc
  // refuses these too (--check-unique-key-change).
  const uniqueSets = (s: TableShape) => new Set(s.indexes.filter((ix) => ix.unique).map((ix) => ix.parts.map((p) => p.column).join('\0')));
  const hadUnique = uniqueSets(renameShape(before, map));
  for (const ix of after.indexes.filter((x) => x.unique && !hadUnique.has(x.parts.map((p) => p.column).join('\0')))) {
    refusals.push(`the ALTER adds unique key ${ix.name} (${ix.parts.map((p) => p.column).join(', ')}): a row duplicating another under it would be lost silently in the copy; check for duplicates and add it in place (ALTER TABLE ... ADD UNIQUE ..., ALGORITHM=INPLACE, LOCK=NONE) in every zone`);
  }
  if (triggers.length && o.includeTriggers) {
    // trigger names are unique in a schema (the ghost's own, left by a killed cut-over, go with it)
    const taken = new Set((await db.query<{ n: string }>('SELECT TRIGGER_NAME AS n FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ? AND EVENT_OBJECT_TABLE <> ?', [schema, names.ghost])).map((r) => r.n));
    refusals.push(...triggerRefusals(triggers, dropped, [...map.keys()], taken));
  }
  const verify = commonColumns([renameShape(before, map), after]);
  if (verify.excluded.length) notes.push(`not compared before cut-over (their values change form): ${verify.excluded.map((e) => e.column).join(', ')}`);
  if (added.length) notes.push(`new columns get their default in every zone: ${added.join(', ')}`);
  if (dropped.length) notes.push(`dropped columns lose their data: ${dropped.join(', ')}`);
  return {
    schema, table, alter, names, before, after,
    key: key ?? { index: 'PRIMARY', columns: [], integer: false },
    columns, dropped, added, retyped,
    verifyColumns: verify.columns.filter((c) => carried.has(c)),
    rowsEstimate: before.rowsEstimate,
    instant, triggers, refusals, notes,
    // a foreign key from or to the table may need one of its indexes while the ghosts are linked
    deferrableIndexes: before.foreignKeys.length || children.length ? [] : deferrableIndexes(afterDdl),
  };
}

/**
 * The key the copy walks: the table's row key (db/introspect rowKey, the one DRC and the checks
 * key rows by), which must identify rows in the new shape too; else the refusals.
 */
export function copyKey(before: TableShape, after: TableShape, map: ReadonlyMap<string, string>): { key?: OscPlan['key']; refusals: string[] } {
  const refusals: string[] = [];
  const oldKey = rowKey(before);
  const newKeyOk = (cols: string[]) => {
    const mapped = cols.map((c) => map.get(c) ?? c);
    return (after.primaryKey.length && after.primaryKey.join('\0') === mapped.join('\0')) || after.indexes.some((ix) => ix.unique && ix.parts.map((p) => p.column).join('\0') === mapped.join('\0'));
  };
  if (!oldKey) refusals.push(`${before.schema}.${before.table} has no primary key or unique key on NOT NULL columns to copy by`);
  else if (!newKeyOk(oldKey.columns)) refusals.push(`the new shape has no unique key on (${oldKey.columns.join(', ')}): the key the copy walks must identify rows in both shapes (dropping it is refused)`);
  else {
    const kc = before.columns.find((c) => c.name === oldKey.columns[0]);
    const key = { index: oldKey.index, columns: oldKey.columns, integer: oldKey.columns.length === 1 && !!kc && /int$/.test(kc.dataType) };
    if (oldKey.columns.some((c) => map.has(c))) refusals.push('renaming a key column is not supported');
    return { key, refusals };
  }
  return { refusals };
}

function renameShape(s: TableShape, map: Map<string, string>): TableShape {
  return { ...s, columns: s.columns.map((c) => ({ ...c, name: map.get(c.name) ?? c.name })) };
}

/** Every zone must hold the same table before the change (the change keeps them alike). */
export function sameShapeEverywhere(plans: { zone: string; plan: OscPlan }[]): string[] {
  const [first, ...rest] = plans;
  if (!first) return [];
  return rest.flatMap((p) => compareShapes(first.plan.before, p.plan.before).map((d) => `zone ${p.zone}: ${describeDiff(d, `zone ${first.zone}`)}`));
}
