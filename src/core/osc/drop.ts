// Dropping a schema change's helper table (the old table kept as <t>_ezdel, a ghost left behind):
// one DROP TABLE, let through by the throttle first (replica lag, --max-load, a pause window: the
// DROP waits for them as a copy chunk would), with a bounded lock wait.
//
// Why not empty it in chunks first (measured on MariaDB 10.11 here, a writer inserting into
// another table meanwhile): the DROP's cost is the file, and DELETE does not shrink it. A plain
// DROP of a 2 GB table took 0.9 s, the writer's p99 116 ms and worst 202 ms (p99 5 ms before);
// after 116 s of chunked deletes and 28 s of purge, the DROP of the same, now empty, table took
// 1.26 s with the same worst write, 202 ms; at 0.4-0.5 GB, 0.2-0.25 s plain against 0.4-1.1 s
// after emptying. Emptying only added minutes of deletes, their binlog, and replica lag. Other
// sessions' writes went on throughout (hundreds during each DROP): no server-wide stall, a
// slowdown that grows with the file (about 0.45 s per GB here). So, like gh-ost
// (--ok-to-drop-table) and pt-online-schema-change, the table is dropped as it is; what a DBA
// controls is when: kept by default, dropped by --drop-old-table after the cut-over or by
// `ezctl osc cleanup --execute` at a quiet time (its throttle flags, --pause-window included).
// The DROP is logged (the zone's replicas hold the table too and follow); DRC never carries a
// helper table's DDL to another zone (cluster/helper-tables.ts).
import type { Ctx } from '../context.js';
import type { ResolvedNode } from '../config/load.js';
import type { Db } from '../db/connect.js';
import { quoteTable } from '../db/quote.js';
import { DEFAULT_LOCK_WAIT_S, withLockWait } from '../db/lockwait.js';
import type { Throttler } from '../throttle/throttler.js';
import { oscHelperNames } from '../cluster/helper-tables.js';

export interface DropOptions {
  throttler?: Throttler | undefined;
  /** a table that only this server has (created unlogged): the DROP unlogged too */
  unlogged?: boolean;
  /** how long the DROP waits for the table's metadata lock (default 10 s) */
  lockWaitS?: number;
  signal?: AbortSignal;
  /** the zone, for the messages */
  zone?: string;
}

/**
 * Wait at the throttle, then DROP the table, waiting at most lockWaitS for its metadata lock; a
 * wait that runs out names the session holding the table (withLockWait) and the table stays.
 */
export async function dropHelperTable(db: Db, schema: string, table: string, o: DropOptions = {}): Promise<void> {
  await o.throttler?.gate(o.signal);
  // a helper table's foreign keys (an old family table whose job died before dropping them)
  // must not refuse the DROP
  await db.exec('SET SESSION foreign_key_checks = 0');
  if (o.unlogged) await db.exec('SET SESSION sql_log_bin = 0');
  try {
    await withLockWait(db, { seconds: o.lockWaitS ?? DEFAULT_LOCK_WAIT_S, schema, tables: [table], what: `${o.zone ? `zone ${o.zone}: ` : ''}dropping ${schema}.${table}`, fix: 'and drop it again (`ezctl osc cleanup --execute`)' }, () =>
      db.exec(`DROP TABLE IF EXISTS ${quoteTable(schema, table)}`));
  } finally {
    await db.exec('SET SESSION foreign_key_checks = DEFAULT').catch(() => undefined);
    if (o.unlogged) await db.exec('SET SESSION sql_log_bin = 1').catch(() => undefined);
  }
}

/** After a cut-over: the old tables (<t>_ezdel) dropped in every zone at once, each zone's one after another. */
export async function dropOldTables(
  ctx: Ctx, zones: Array<{ zone: string; node: ResolvedNode }>, schema: string, tables: string[], o: DropOptions = {},
): Promise<Array<{ zone: string; table: string }>> {
  const done: Array<{ zone: string; table: string }> = [];
  await Promise.all(zones.map(async (z) => {
    const db = await ctx.connect(z.node);
    try {
      for (const t of tables) {
        const old = oscHelperNames(t).old;
        ctx.log.info(`osc: zone ${z.zone}: dropping the old table ${schema}.${old}`);
        await dropHelperTable(db, schema, old, { ...o, zone: z.zone });
        done.push({ zone: z.zone, table: old });
      }
    } finally {
      await db.close();
    }
  }));
  return done;
}
