// A merge's change made once on the target (ddl.ts) is DDL: it commits on its own, before any
// stream's checkpoint passes the shards' statements. A run killed in between reads those statements
// again on --resume and would make the change a second time (ERROR 1060, duplicate column). So the
// change is recorded on the target before it is made, with the table's shape before, and after it
// with the shape it made: a later run finding the table in that made shape passes the statement.
import { createHash } from 'node:crypto';
import type { Db } from '../db/connect.js';
import { quoteTable } from '../db/quote.js';
import type { TableRef } from '../apply/mapping.js';

const TABLE = quoteTable('_ezctl', 'dbus_ddl');

export async function ensureDdlRecord(db: Db): Promise<void> {
  await db.exec('CREATE DATABASE IF NOT EXISTS `_ezctl`');
  await db.exec(`CREATE TABLE IF NOT EXISTS ${TABLE} (
    move VARCHAR(64) NOT NULL,
    target_table VARCHAR(129) NOT NULL,
    statement_hash CHAR(40) NOT NULL,
    statement LONGTEXT NOT NULL,
    shape_before LONGTEXT NOT NULL,
    columns_before LONGTEXT NOT NULL,
    shape_after LONGTEXT NULL,
    at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (move, target_table, statement_hash)
  ) ENGINE=InnoDB`);
}

/** A record's key: the move, the target table, the statement's hash. */
function recordKey(move: string, t: TableRef, statement: string): [string, string, string] {
  return [move, `${t.schema}.${t.table}`, createHash('sha1').update(statement).digest('hex')];
}

export interface MadeBefore {
  /** the target's columns before the change (what the mappings had) */
  columnsBefore: string[];
}

/**
 * Was this statement made on the target by an earlier run of the move? Yes when the table is in
 * the shape that run recorded after it, or (killed between the ALTER and that record) no longer in
 * the shape recorded before it; otherwise the change is recorded as about to be made (undefined).
 */
export async function madeBefore(db: Db, move: string, t: TableRef, statement: string, shapeNow: string, columnsNow: string[]): Promise<MadeBefore | undefined> {
  const key = recordKey(move, t, statement);
  const rec = await db.one<{ shape_before: string; columns_before: string; shape_after: string | null }>(
    `SELECT shape_before, columns_before, shape_after FROM ${TABLE} WHERE move = ? AND target_table = ? AND statement_hash = ?`, key);
  if (rec && (rec.shape_after === shapeNow || (rec.shape_after === null && rec.shape_before !== shapeNow))) return { columnsBefore: JSON.parse(rec.columns_before) as string[] };
  await db.exec(
    `INSERT INTO ${TABLE} (move, target_table, statement_hash, statement, shape_before, columns_before) VALUES (?, ?, ?, ?, ?, ?)
     ON DUPLICATE KEY UPDATE statement = VALUES(statement), shape_before = VALUES(shape_before), columns_before = VALUES(columns_before), shape_after = NULL, at = CURRENT_TIMESTAMP(6)`,
    [...key, statement, shapeNow, JSON.stringify(columnsNow)]);
  return undefined;
}

/** The change was made: the shape it left. */
export async function recordMade(db: Db, move: string, t: TableRef, statement: string, shapeAfter: string): Promise<void> {
  await db.exec(`UPDATE ${TABLE} SET shape_after = ? WHERE move = ? AND target_table = ? AND statement_hash = ?`, [shapeAfter, ...recordKey(move, t, statement)]);
}

/** A move's records go with its checkpoints (abort). */
export async function clearDdlRecords(db: Db, move: string): Promise<void> {
  const there = Number(await db.value("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = '_ezctl' AND TABLE_NAME = 'dbus_ddl'"));
  if (there) await db.exec(`DELETE FROM ${TABLE} WHERE move = ?`, [move]);
}
