// A move's route record: which side takes the moved tables' writes (`home`: the sources, or the
// target) and whether it takes them now (`active`) or they wait (`blocked`: a cut-over or rollback
// between its block and its flip). One row per move in `_ezctl.dbus_routes` at every source and at
// the target; a client reads every side and follows the highest version (as gz's routing table):
// the flip is one write at the new home first, so a client that reads either side finds it.
// Written with sql_log_bin = 0: the row must not be a transaction in the binlog the move's streams
// read (their final positions would move with it), nor reach the servers' replicas as a table
// that a later switch brings up stale.
import type { Db } from '../db/connect.js';
import { quoteId, quoteTable } from '../db/quote.js';
import { STATE_SCHEMA } from '../state/schema.js';

export const ROUTES_TABLE = 'dbus_routes';
const T = () => quoteTable(STATE_SCHEMA, ROUTES_TABLE);

export interface DbusServerRef {
  label: string;
  host: string;
  port: number;
}

export interface DbusRoute {
  move: string;
  /** 0: never published (the move's start state: home the sources, active) */
  version: number;
  home: 'sources' | 'target';
  state: 'active' | 'blocked';
  target: DbusServerRef;
  sources: DbusServerRef[];
  /** the job that published it, and why */
  job: string | null;
  reason: string;
  /** the reverse stream (target -> sources) once a cut-over started it: where it runs */
  reverse?: { host: string; pid: number; from: string; streams: string[] } | null;
  publishedAt?: string;
}

/** Where the route says a table's writes go: the target, or the source it came from. */
export function writesGoTo(r: Pick<DbusRoute, 'home' | 'state' | 'target' | 'sources'>, sourceLabel: string): { server: DbusServerRef | null; wait: boolean } {
  const server = r.home === 'target' ? r.target : (r.sources.find((s) => s.label === sourceLabel) ?? null);
  return { server, wait: r.state === 'blocked' };
}

/** connections that have seen the table (a kept connection asks once) */
const seen = new WeakSet<Db>();

export async function ensureRouteTable(db: Db): Promise<void> {
  if (seen.has(db)) return;
  const have = await db.value<number>('SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [STATE_SCHEMA, ROUTES_TABLE]);
  if (Number(have) > 0) {
    seen.add(db);
    return;
  }
  await db.exec('SET SESSION sql_log_bin = 0');
  try {
    await db.exec(`CREATE DATABASE IF NOT EXISTS ${quoteId(STATE_SCHEMA)} DEFAULT CHARACTER SET utf8mb4`);
    await db.exec(`CREATE TABLE IF NOT EXISTS ${T()} (
      move VARCHAR(191) NOT NULL PRIMARY KEY,
      version BIGINT NOT NULL,
      doc JSON NOT NULL,
      published_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
    ) ENGINE=InnoDB`);
    seen.add(db);
  } finally {
    await db.exec('SET SESSION sql_log_bin = 1').catch(() => undefined);
  }
}

/** The move's route at this server; undefined when none was ever written there. */
export async function readRouteAt(db: Db, move: string): Promise<DbusRoute | undefined> {
  let row: { version: number | string; doc: string; at: string } | undefined;
  try {
    row = await db.one<{ version: number | string; doc: string; at: string }>(`SELECT version, doc, CAST(published_at AS CHAR) AS at FROM ${T()} WHERE move = ?`, [move]);
  } catch (e) {
    // no table yet: nothing was ever published there
    if ((e as { code?: string }).code === 'ER_NO_SUCH_TABLE') return undefined;
    throw e;
  }
  if (!row) return undefined;
  const doc = (typeof row.doc === 'string' ? JSON.parse(row.doc) : row.doc) as DbusRoute;
  return { ...doc, move, version: Number(row.version), publishedAt: row.at };
}

/**
 * Write the route at this server when its stored version is lower (a higher one always wins).
 * Returns 'written', 'same' (this version is there) or 'newer' (a higher one is: nothing written).
 */
export async function writeRouteAt(db: Db, r: DbusRoute): Promise<'written' | 'same' | 'newer'> {
  await ensureRouteTable(db);
  const { publishedAt: _, ...doc } = r;
  await db.exec('SET SESSION sql_log_bin = 0');
  try {
    await db.exec('SET @ezctl_dbus_route_was = NULL');
    // the stored version captured first; each column assigned from the version as stored before it
    await db.exec(
      `INSERT INTO ${T()} (move, version, doc, published_at) VALUES (?, ?, ?, NOW(3))
       ON DUPLICATE KEY UPDATE doc = IF((@ezctl_dbus_route_was := version) < VALUES(version), VALUES(doc), doc),
         published_at = IF(version < VALUES(version), VALUES(published_at), published_at),
         version = IF(version < VALUES(version), VALUES(version), version)`,
      [r.move, r.version, JSON.stringify(doc)],
    );
    const was = await db.value<number | string | null>('SELECT @ezctl_dbus_route_was');
    if (was === null || was === undefined) return 'written';
    const w = Number(was);
    return w < r.version ? 'written' : w === r.version ? 'same' : 'newer';
  } finally {
    await db.exec('SET SESSION sql_log_bin = 1').catch(() => undefined);
  }
}

/** The highest version among the sides read (undefined entries: unreachable or never written). */
export function newestRoute(routes: ReadonlyArray<DbusRoute | undefined>): DbusRoute | undefined {
  let best: DbusRoute | undefined;
  for (const r of routes) if (r && (!best || r.version > best.version)) best = r;
  return best;
}
