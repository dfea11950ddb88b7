// Where a copy-and-apply job between servers is, kept in the target (`_ezctl.apply_checkpoint`):
// the binlog position its applier reached, written in each batch's own transaction (so the target
// and its checkpoint never disagree, kill -9 included), and each source table's copy frontier
// (the key its copy reached, or done), written after the chunks it covers are committed.
import type { Db } from '../db/connect.js';
import { quoteId, quoteTable } from '../db/quote.js';
import { STATE_SCHEMA } from '../state/schema.js';
import { decodeKey, encodeKey, type KeyValue } from '../chunk/keys.js';
import type { TableRef } from './mapping.js';

const TABLE = quoteTable(STATE_SCHEMA, 'apply_checkpoint');
/** the part that holds the applier's binlog position */
const APPLIED = '';

export interface ApplyState {
  /** the binlog position the target has every change up to */
  position: string;
  /** per source table (schema.table): undefined = not started, 'done', or the key copied up to */
  copied: Map<string, KeyValue | 'done'>;
}

export async function ensureApplyCheckpoint(db: Db): Promise<void> {
  await db.exec(`CREATE DATABASE IF NOT EXISTS ${quoteId(STATE_SCHEMA)} DEFAULT CHARACTER SET utf8mb4`);
  await db.exec(`CREATE TABLE IF NOT EXISTS ${TABLE} (
    name VARCHAR(191) NOT NULL,
    part VARCHAR(191) NOT NULL,
    position TEXT NOT NULL,
    updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    PRIMARY KEY (name, part)
  ) ENGINE=InnoDB`);
}

/** The saved state of the job `name`; undefined when it never started. */
export async function loadApplyState(db: Db, name: string): Promise<ApplyState | undefined> {
  const rows = await db.query<{ part: string; position: string }>(`SELECT part, position FROM ${TABLE} WHERE name = ?`, [name]);
  const applied = rows.find((r) => r.part === APPLIED);
  if (!applied) return undefined;
  const copied = new Map<string, KeyValue | 'done'>();
  for (const r of rows) if (r.part !== APPLIED) copied.set(r.part, r.position === 'done' ? 'done' : decodeKey(r.position));
  return { position: applied.position, copied };
}

/** The applier's position: call it inside the batch's transaction (BatchApplierOptions.checkpoint). */
export async function saveAppliedPosition(db: Db, name: string, position: string): Promise<void> {
  await db.exec(`INSERT INTO ${TABLE} (name, part, position) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE position = VALUES(position)`, [name, APPLIED, position]);
}

/** A source table's copy frontier (after: undefined with done = the copy is complete). */
export async function saveCopyFrontier(db: Db, name: string, source: TableRef, after: KeyValue | undefined, done: boolean): Promise<void> {
  const position = done ? 'done' : after ? encodeKey(after) : null;
  if (position === null) return; // nothing finished in order yet
  await db.exec(`INSERT INTO ${TABLE} (name, part, position) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE position = VALUES(position)`, [name, `${source.schema}.${source.table}`, position]);
}

export async function clearApplyState(db: Db, name: string): Promise<void> {
  await db.exec(`DELETE FROM ${TABLE} WHERE name = ?`, [name]);
}
