// Dropping a schema change's helper table (the old table kept as <t>_ezdel, a ghost left behind)
// without stalling the server: the rows are deleted first, in chunks walked by the table's key
// (the shared chunker, sized to a time target, each chunk behind the throttle), then the empty
// table is dropped. A DROP of a large table frees its pages and unlinks its file while it holds
// the dictionary; emptied first, the DROP has nothing left to free but the file, and the
// deletes pace themselves to replica lag and load like the copy does. The deletes are logged
// (the zone's replicas hold the table too and follow) with only the key in each row image, and
// DRC never carries a helper table's rows or DDL to another zone (drc/filter.ts).
import type { Ctx } from '../context.js';
import type { ResolvedNode } from '../config/load.js';
import type { Db } from '../db/connect.js';
import { quoteId, quoteTable } from '../db/quote.js';
import { Chunker, chunkRange } from '../chunk/chunker.js';
import { readShapes } from '../dcp/structure.js';
import { keyOf } from '../dcp/check-full.js';
import type { Throttler } from '../throttle/throttler.js';
import { helperNames } from './plan.js';

export interface DropOptions {
  throttler?: Throttler | undefined;
  /** target time per delete chunk (default 500 ms) */
  chunkTimeMs?: number;
  /** a table that only this server has (created unlogged): deletes and DROP unlogged too */
  unlogged?: boolean;
  signal?: AbortSignal;
}

/** Empty the table in throttled chunks, then DROP it. Returns the rows deleted. */
export async function dropInChunks(db: Db, schema: string, table: string, o: DropOptions = {}): Promise<number> {
  // a helper table's foreign keys (an old family table whose job died before dropping them)
  // must neither cascade into other tables nor refuse the DROP
  await db.exec('SET SESSION foreign_key_checks = 0');
  await db.exec("SET SESSION binlog_format = 'ROW'");
  await db.exec("SET SESSION binlog_row_image = 'MINIMAL'");
  if (o.unlogged) await db.exec('SET SESSION sql_log_bin = 0');
  try {
    let deleted = 0;
    const shape = (await readShapes(db, (s, t) => s === schema && t === table)).get(`${schema}.${table}`);
    const key = shape ? keyOf([shape]) : undefined;
    if (shape && key) {
      const first = shape.columns.find((c) => c.name === key.columns[0]);
      const integer = key.columns.length === 1 && !!first && /int$/.test(first.dataType);
      const t = quoteTable(schema, table);
      const opts: ConstructorParameters<typeof Chunker>[4] = { targetMs: o.chunkTimeMs ?? 500 };
      if (integer) {
        const col = quoteId(key.columns[0]!);
        const b = await db.one<{ lo: string | null; hi: string | null }>(`SELECT CAST(MIN(${col}) AS CHAR) AS lo, CAST(MAX(${col}) AS CHAR) AS hi FROM ${t}`);
        opts.numericMin = b?.lo ? BigInt(b.lo) : null;
        opts.numericMax = b?.hi ? BigInt(b.hi) : null;
      }
      const chunker = new Chunker(db, schema, table, { index: key.index, columns: key.columns, integer }, opts);
      for (;;) {
        await o.throttler?.gate(o.signal);
        const chunk = await chunker.next();
        if (!chunk) break;
        const range = chunkRange({ index: key.index, columns: key.columns }, chunk);
        const t0 = Date.now();
        const r = await db.exec(`DELETE FROM ${t} WHERE ${range.sql}`, range.params);
        const n = Number(r.affectedRows ?? 0);
        deleted += n;
        chunker.record(Math.max(n, 1), Date.now() - t0);
      }
    }
    // a table without a key to walk by is dropped as it is (helper tables always have one)
    await db.exec(`DROP TABLE IF EXISTS ${quoteTable(schema, table)}`);
    return deleted;
  } finally {
    await db.exec('SET SESSION foreign_key_checks = DEFAULT').catch(() => undefined);
    await db.exec('SET SESSION binlog_row_image = DEFAULT').catch(() => undefined);
    if (o.unlogged) await db.exec('SET SESSION sql_log_bin = 1').catch(() => undefined);
  }
}

/** After a cut-over: the old tables (<t>_ezdel) dropped in every zone at once, each zone's one after another. */
export async function dropOldTables(
  ctx: Ctx, zones: Array<{ zone: string; node: ResolvedNode }>, schema: string, tables: string[], o: DropOptions = {},
): Promise<Array<{ zone: string; table: string; rows: number }>> {
  const done: Array<{ zone: string; table: string; rows: number }> = [];
  await Promise.all(zones.map(async (z) => {
    const db = await ctx.connect(z.node);
    try {
      for (const t of tables) {
        const old = helperNames(t).old;
        ctx.log.info(`osc: zone ${z.zone}: dropping the old table ${schema}.${old} (emptied in chunks first)`);
        done.push({ zone: z.zone, table: old, rows: await dropInChunks(db, schema, old, o) });
      }
    } finally {
      await db.close();
    }
  }));
  return done;
}
