// The `_ezctl` schema: job state, checkpoints and reports, kept in the servers themselves so any
// host can see and resume a job. Created idempotently; DRC never replicates it, except the
// heartbeat table, which travels through DRC on purpose to measure true lag.
import type { Db } from '../db/connect.js';
import { quoteId } from '../db/quote.js';

export const STATE_SCHEMA = '_ezctl';

const TABLES: Record<string, string> = {
  drc_checkpoint: `(
    pipeline VARCHAR(191) NOT NULL PRIMARY KEY,
    source_position TEXT NOT NULL,
    last_gtid VARCHAR(191) NULL,
    applied_tx BIGINT UNSIGNED NOT NULL DEFAULT 0,
    updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
    routes_version BIGINT NULL
  ) ENGINE=InnoDB`,
  drc_heartbeat: `(
    zone VARCHAR(64) NOT NULL PRIMARY KEY,
    seq BIGINT UNSIGNED NOT NULL,
    written_at_ms BIGINT UNSIGNED NOT NULL,
    drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)
  ) ENGINE=InnoDB`,
  drc_conflicts: `(
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    pipeline VARCHAR(191) NOT NULL,
    detected_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    db VARCHAR(64) NOT NULL,
    tbl VARCHAR(64) NOT NULL,
    row_key JSON NOT NULL,
    kind VARCHAR(32) NOT NULL,
    source_ts VARCHAR(32) NULL,
    target_ts VARCHAR(32) NULL,
    winner ENUM('source','target') NOT NULL,
    gtid VARCHAR(191) NOT NULL,
    KEY idx_table (db, tbl, detected_at)
  ) ENGINE=InnoDB`,
  drc_illegal_writes: `(
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    pipeline VARCHAR(191) NOT NULL,
    detected_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    zone VARCHAR(64) NOT NULL,
    owner_zone VARCHAR(64) NULL,
    db VARCHAR(64) NOT NULL,
    tbl VARCHAR(64) NOT NULL,
    shard_id BIGINT NULL,
    row_key JSON NOT NULL,
    blocked TINYINT(1) NOT NULL,
    gtid VARCHAR(191) NOT NULL,
    why VARCHAR(32) NULL,
    routes_version BIGINT NULL,
    KEY idx_table (db, tbl, detected_at)
  ) ENGINE=InnoDB`,
  drc_events: `(
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    pipeline VARCHAR(191) NOT NULL,
    detected_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    kind VARCHAR(32) NOT NULL,
    gtid VARCHAR(191) NULL,
    detail TEXT NOT NULL,
    KEY idx_kind (kind, detected_at)
  ) ENGINE=InnoDB`,
  // the change feed (ezctl drc feed): per feed name, the position up to which its sink has
  // acknowledged every event; a restart resumes after it
  drc_feed_position: `(
    feed VARCHAR(191) NOT NULL PRIMARY KEY,
    cluster VARCHAR(64) NOT NULL,
    zone VARCHAR(64) NOT NULL,
    position TEXT NOT NULL,
    last_gtid VARCHAR(191) NULL,
    events BIGINT UNSIGNED NOT NULL DEFAULT 0,
    updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)
  ) ENGINE=InnoDB`,
  // consistency checks (ezctl check): one row per run, per table of a run, per difference found
  check_runs: `(
    run_id VARCHAR(64) NOT NULL PRIMARY KEY,
    cluster VARCHAR(64) NOT NULL,
    kind VARCHAR(16) NOT NULL,
    status VARCHAR(16) NOT NULL,
    started_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    finished_at TIMESTAMP(3) NULL,
    host VARCHAR(255) NOT NULL,
    options TEXT NOT NULL,
    consistent TINYINT(1) NULL,
    summary TEXT NULL,
    KEY idx_cluster (cluster, kind, started_at)
  ) ENGINE=InnoDB`,
  check_tables: `(
    run_id VARCHAR(64) NOT NULL,
    db VARCHAR(64) NOT NULL,
    tbl VARCHAR(64) NOT NULL,
    status VARCHAR(16) NOT NULL,
    last_key TEXT NULL,
    rows_checked BIGINT UNSIGNED NOT NULL DEFAULT 0,
    chunks INT UNSIGNED NOT NULL DEFAULT 0,
    missing INT UNSIGNED NOT NULL DEFAULT 0,
    changed INT UNSIGNED NOT NULL DEFAULT 0,
    reason TEXT NULL,
    detail TEXT NULL,
    elapsed_ms BIGINT UNSIGNED NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, db, tbl)
  ) ENGINE=InnoDB`,
  check_diffs: `(
    id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    run_id VARCHAR(64) NOT NULL,
    db VARCHAR(64) NOT NULL,
    tbl VARCHAR(64) NOT NULL,
    kind VARCHAR(16) NOT NULL,
    row_key TEXT NOT NULL,
    zones TEXT NOT NULL,
    columns_differing TEXT NULL,
    found_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    repaired_at TIMESTAMP(3) NULL,
    KEY idx_run (run_id, db, tbl)
  ) ENGINE=InnoDB`,
  check_incr_position: `(
    cluster VARCHAR(64) NOT NULL,
    zone VARCHAR(64) NOT NULL,
    position TEXT NOT NULL,
    updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    PRIMARY KEY (cluster, zone)
  ) ENGINE=InnoDB`,
  // an online schema change's progress in this zone: where its copy and its binlog apply are, so
  // --resume continues after a crash
  osc_state: `(
    job VARCHAR(191) NOT NULL,
    zone VARCHAR(64) NOT NULL,
    alter_text TEXT NOT NULL,
    last_key TEXT NULL,
    applied_pos TEXT NOT NULL,
    rows_copied BIGINT UNSIGNED NOT NULL DEFAULT 0,
    phase VARCHAR(16) NOT NULL,
    updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    change_tables TEXT NULL,
    PRIMARY KEY (job, zone)
  ) ENGINE=InnoDB`,
  // the routing table (GZS, core/routes/): one row per cluster, the highest version winning; written
  // in every zone by ezctl with the binlog on (the zone's replicas get it, DRC's reader sees it in
  // the stream; DRC never applies `_ezctl`)
  gz_routes: `(
    cluster VARCHAR(64) NOT NULL PRIMARY KEY,
    version BIGINT UNSIGNED NOT NULL,
    doc LONGTEXT NOT NULL,
    published_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)
  ) ENGINE=InnoDB`,
  // every version published in this zone, for audit (`gz routes --history`)
  gz_routes_log: `(
    cluster VARCHAR(64) NOT NULL,
    version BIGINT UNSIGNED NOT NULL,
    doc LONGTEXT NOT NULL,
    job VARCHAR(64) NULL,
    reason TEXT NOT NULL,
    published_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    recorded_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (cluster, version)
  ) ENGINE=InnoDB`,
  // the routing table's clients (the workload, an SDK): the version each acknowledged (no write
  // begun under an older one in flight), written unbinlogged at the client's zone master
  gz_clients: `(
    cluster VARCHAR(64) NOT NULL,
    client VARCHAR(191) NOT NULL,
    zone VARCHAR(64) NOT NULL,
    version BIGINT UNSIGNED NOT NULL,
    in_flight INT UNSIGNED NOT NULL DEFAULT 0,
    host VARCHAR(255) NOT NULL,
    pid INT UNSIGNED NOT NULL,
    seen_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    PRIMARY KEY (cluster, client)
  ) ENGINE=InnoDB`,
  // multi-step operations (steps/): every job's events in order, written before and after each
  // step runs; seq 1 is the job's header (kind, parameters, steps, point of no return)
  job_steps: `(
    job_id VARCHAR(64) NOT NULL,
    seq INT UNSIGNED NOT NULL,
    step VARCHAR(191) NOT NULL,
    state VARCHAR(16) NOT NULL,
    at_ms BIGINT UNSIGNED NOT NULL,
    recorded_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    host VARCHAR(255) NOT NULL,
    pid INT UNSIGNED NOT NULL,
    detail JSON NOT NULL,
    PRIMARY KEY (job_id, seq)
  ) ENGINE=InnoDB`,
  // every long job (osc, migrate, check full, repair, switches): one row per job in every zone
  // it touches, kept after it ends (status done/failed/aborted); `ezctl jobs` merges them by id
  jobs: `(
    id VARCHAR(64) NOT NULL PRIMARY KEY,
    cluster VARCHAR(64) NOT NULL,
    kind VARCHAR(32) NOT NULL,
    target VARCHAR(300) NOT NULL,
    targets TEXT NOT NULL,
    zones TEXT NOT NULL,
    phase VARCHAR(32) NOT NULL,
    status VARCHAR(16) NOT NULL,
    host VARCHAR(255) NOT NULL,
    pid INT UNSIGNED NOT NULL,
    user VARCHAR(128) NOT NULL,
    holder VARCHAR(128) NOT NULL,
    lease_ms INT UNSIGNED NOT NULL,
    started_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    resumed_at TIMESTAMP(3) NULL,
    updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
    finished_at TIMESTAMP(3) NULL,
    progress TEXT NULL,
    last_error TEXT NULL,
    control_socket TEXT NULL,
    KEY idx_cluster (cluster, status, started_at),
    KEY idx_target (cluster, target)
  ) ENGINE=InnoDB`,
  // who holds what: one row per (cluster, target) while a job holds it, its expiry by this
  // server's clock; taken under a lock of the cluster's rows, renewed while the job runs,
  // deleted when it ends (a row whose expiry has passed is a job that died)
  job_leases: `(
    cluster VARCHAR(64) NOT NULL,
    target VARCHAR(300) NOT NULL,
    job_id VARCHAR(64) NOT NULL,
    holder VARCHAR(128) NOT NULL,
    host VARCHAR(255) NOT NULL,
    pid INT UNSIGNED NOT NULL,
    taken_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
    expires_at TIMESTAMP(3) NOT NULL,
    PRIMARY KEY (cluster, target),
    KEY idx_job (job_id)
  ) ENGINE=InnoDB`,
};

export const STATE_TABLES = Object.keys(TABLES);

/** Columns added to a table after its first release: added where a server has the older table. */
const ADDED_COLUMNS: Array<{ table: string; column: string; definition: string }> = [
  // osc: every table of the change (a family's several), so `osc abort` of any ends them all
  { table: 'osc_state', column: 'change_tables', definition: 'TEXT NULL' },
  // DRC's illegal writes judged by the routing table (gz): why, and the version it judged by
  { table: 'drc_illegal_writes', column: 'why', definition: 'VARCHAR(32) NULL' },
  { table: 'drc_illegal_writes', column: 'routes_version', definition: 'BIGINT NULL' },
  // the routing table version in the source's binlog at the checkpoint (a restart judges from it; NULL: unknown)
  { table: 'drc_checkpoint', column: 'routes_version', definition: 'BIGINT NULL' },
];

/**
 * Create `_ezctl` and its tables where missing. The caller decides how the DDL is logged (the
 * DRC applier runs it under its own GTID domain so it is never replicated back).
 */
/** Connections whose server was found to have every state table and column: not looked at again. */
const ensured = new WeakSet<Db>();

export async function ensureStateSchema(db: Db): Promise<void> {
  // a connection kept across the steps of a job (a zone switch's window) asks once, not at every
  // write (publishAt ensured it at each of them: two information_schema queries per zone)
  if (ensured.has(db)) return;
  // one look first, instead of a dozen CREATE ... IF NOT EXISTS round trips (each opening its
  // table under a metadata lock) at every check, osc and DRC start; the same look finds the
  // columns added since a table was first created
  const [tables, columns] = await Promise.all([
    db.query<{ t: string }>('SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?', [STATE_SCHEMA]),
    db.query<{ t: string; c: string }>('SELECT TABLE_NAME AS t, COLUMN_NAME AS c FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ?', [STATE_SCHEMA]),
  ]);
  const have = new Set(tables.map((r) => r.t));
  const haveColumn = new Set(columns.map((r) => `${r.t}.${r.c}`));
  const missing = Object.entries(TABLES).filter(([name]) => !have.has(name));
  // a table created below has its added columns in its body already
  const missingColumns = ADDED_COLUMNS.filter((c) => have.has(c.table) && !haveColumn.has(`${c.table}.${c.column}`));
  if (missing.length === 0 && missingColumns.length === 0) {
    ensured.add(db);
    return;
  }
  if (missing.length) await db.exec(`CREATE DATABASE IF NOT EXISTS ${quoteId(STATE_SCHEMA)} DEFAULT CHARACTER SET utf8mb4`);
  for (const [name, body] of missing) {
    await db.exec(`CREATE TABLE IF NOT EXISTS ${quoteId(STATE_SCHEMA)}.${quoteId(name)} ${body}`);
  }
  for (const c of missingColumns) {
    await db.exec(`ALTER TABLE ${quoteId(STATE_SCHEMA)}.${quoteId(c.table)} ADD COLUMN IF NOT EXISTS ${quoteId(c.column)} ${c.definition}`);
  }
  ensured.add(db);
}
