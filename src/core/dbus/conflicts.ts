// Unique-key collisions across merged shards (two shards, one email under a target UNIQUE key):
// the row that would overwrite another source's row is not written; it is recorded here, on the
// target in `_ezctl.dbus_conflicts`, with the row the target kept, in the transaction of the copy
// chunk or apply batch that met it. `dbus status` shows the count and the last one. One row per
// source row (by its key): a row met again (updated, or its chunk copied again) updates its record.
import { createHash } from 'node:crypto';
import type { Db } from '../db/connect.js';
import { quoteTable } from '../db/quote.js';
import type { Collision } from '../apply/collisions.js';
import { keyOfRow, ownsTargetRow } from '../apply/mapping.js';
import { keyText } from '../chunk/keys.js';
import type { DbusMapping } from './plan.js';

const TABLE = quoteTable('_ezctl', 'dbus_conflicts');

export interface DbusConflict {
  at: string;
  target: string;
  uniqueKey: string[];
  /** label:db.table of the row left out, and that row (source columns) */
  source: string;
  sourceRow: Record<string, unknown>;
  /** label:db.table of the row the target holds, when its shard column or key says so */
  existingSource: string | null;
  existingRow: Record<string, unknown>;
  /** times this source row met the collision */
  seen: number;
}

export async function ensureConflictTable(db: Db): Promise<void> {
  await db.exec('CREATE DATABASE IF NOT EXISTS `_ezctl`');
  await db.exec(`CREATE TABLE IF NOT EXISTS ${TABLE} (
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    move VARCHAR(64) NOT NULL,
    row_hash CHAR(40) NOT NULL,
    at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    target_table VARCHAR(129) NOT NULL,
    unique_key VARCHAR(1024) NOT NULL,
    source VARCHAR(255) NOT NULL,
    source_row LONGTEXT NOT NULL,
    existing_source VARCHAR(255) NULL,
    existing_row LONGTEXT NOT NULL,
    seen INT UNSIGNED NOT NULL DEFAULT 1,
    UNIQUE KEY move_row (move, row_hash)
  ) ENGINE=InnoDB`);
}

const json = (r: Record<string, unknown>) => JSON.stringify(r, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer' ? { hex: Buffer.from((v as { data: number[] }).data).toString('hex') } : v));

/** Which source a target row came from: the mapping whose shard constant it carries (or whose offset key range holds it); null when it cannot be told. */
function sourceOf(mappings: readonly DbusMapping[], c: Collision): string | null {
  const same = mappings.filter((m) => m.target.schema === c.mapping.target.schema && m.target.table === c.mapping.target.table);
  const hit = same.filter((m) => ownsTargetRow(m, c.existing));
  return hit.length === 1 ? `${hit[0]!.label}:${hit[0]!.source.schema}.${hit[0]!.source.table}` : null;
}

/** Record a collision (in the caller's transaction on the target). */
export async function recordConflict(db: Db, move: string, mappings: readonly DbusMapping[], c: Collision): Promise<void> {
  const m = c.mapping as DbusMapping;
  const source = `${m.label}:${m.source.schema}.${m.source.table}`;
  const hash = createHash('sha1').update(`${source}\0${keyText(keyOfRow(m, c.sourceRow))}`).digest('hex');
  await db.exec(
    `INSERT INTO ${TABLE} (move, row_hash, target_table, unique_key, source, source_row, existing_source, existing_row) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON DUPLICATE KEY UPDATE at = CURRENT_TIMESTAMP(6), unique_key = VALUES(unique_key), source_row = VALUES(source_row), existing_source = VALUES(existing_source), existing_row = VALUES(existing_row), seen = seen + 1`,
    [move, hash, `${m.target.schema}.${m.target.table}`, c.uniqueKey.join(','), source, json(c.sourceRow), sourceOf(mappings, c), json(c.existing)],
  );
}

function conflictOf(r: Record<string, unknown>): DbusConflict {
  return {
    at: String(r.at),
    target: String(r.target_table),
    uniqueKey: String(r.unique_key).split(','),
    source: String(r.source),
    sourceRow: JSON.parse(String(r.source_row)) as Record<string, unknown>,
    existingSource: r.existing_source === null ? null : String(r.existing_source),
    existingRow: JSON.parse(String(r.existing_row)) as Record<string, unknown>,
    seen: Number(r.seen),
  };
}

const COLUMNS = 'CAST(at AS CHAR) AS at, target_table, unique_key, source, source_row, existing_source, existing_row, seen';

/** A move's recorded conflicts (at most `limit`, newest first); none while the table does not exist. */
export async function listConflicts(db: Db, move: string, limit = 10_000): Promise<DbusConflict[]> {
  try {
    const rows = await db.query<Record<string, unknown>>(`SELECT ${COLUMNS} FROM ${TABLE} WHERE move = ? ORDER BY at DESC, id DESC LIMIT ${Math.max(1, Math.floor(limit))}`, [move]);
    return rows.map(conflictOf);
  } catch (e) {
    if ((e as { code?: string }).code === 'ER_NO_SUCH_TABLE') return [];
    throw e;
  }
}

/** The count of a move's conflicts and the last one; 0 and none while the table does not exist. */
export async function conflictSummary(db: Db, move: string): Promise<{ count: number; last: DbusConflict | null }> {
  try {
    const count = Number(await db.value(`SELECT COUNT(*) FROM ${TABLE} WHERE move = ?`, [move]));
    if (!count) return { count, last: null };
    const r = await db.one<Record<string, unknown>>(`SELECT ${COLUMNS} FROM ${TABLE} WHERE move = ? ORDER BY at DESC, id DESC LIMIT 1`, [move]);
    return { count, last: r ? conflictOf(r) : null };
  } catch (e) {
    if ((e as { code?: string }).code === 'ER_NO_SUCH_TABLE') return { count: 0, last: null };
    throw e;
  }
}
