// The change stream over @vlasky/zongji: whole transactions with their GTID, resumable from a
// position. Values decode with the same options as query results (exact decimals and big
// integers, date/time as the server prints them), so a row read here compares with a row
// SELECTed elsewhere. Needs binlog_format=ROW and, for column names without schema queries,
// binlog_row_metadata=FULL.
import ZongJi from '@vlasky/zongji';
import { mysqlOptions, type Endpoint } from '../db/connect.js';
import type { Flavor } from '../db/gtid.js';
import { parseGtid } from './position.js';

export type Row = Record<string, unknown>;
export type ChangeKind = 'insert' | 'update' | 'delete';

export interface RowChange {
  kind: ChangeKind;
  schema: string;
  table: string;
  /** primary-key column names, from the binlog's table map (empty when it has none) */
  pk: string[];
  before?: Row;
  after?: Row;
}

export interface BinlogTx {
  gtid: string;
  /** MariaDB GTID domain (who wrote it, for loop avoidance); undefined on MySQL */
  domain?: number;
  serverId?: number;
  uuid?: string;
  seq: bigint;
  /** binlog event time (the server stamps whole seconds), ms since epoch */
  timestampMs: number;
  changes: RowChange[];
  /** a DDL or other statement logged as a query */
  statement?: { schema: string; query: string };
}

export interface StreamOptions {
  endpoint: Endpoint;
  flavor: Flavor;
  /** resume after this position ('' = from the oldest binlog) */
  from: string;
  /** the replica server id this reader announces; unique per reader on a source */
  serverId: number;
  connectTimeoutMs?: number;
  /**
   * Only the row events of tables this accepts are decoded; the rest are skipped undecoded, their
   * transactions still delivered (GTID, no changes) so positions advance. Decoding is most of a
   * reader's CPU, and a schema change's copy writes millions of rows nobody here needs.
   */
  decodeTable?: (schema: string, table: string) => boolean;
  onTx: (tx: BinlogTx) => void;
  onError: (err: Error) => void;
}

type ZEvent = Record<string, any> & { getEventName(): string };

const MYSQL_TYPE_BLOB = 252;
const MYSQL_TYPE_GEOMETRY = 255;

/**
 * zongji decodes a geometry into {x, y} objects: its SRID and its type (a LINESTRING and a
 * MULTIPOINT come out alike) are lost, and no statement can carry it back. Read as a BLOB (the
 * same length-prefixed layout in a row event) it is the server's own bytes, SRID and WKB, which a
 * GEOMETRY column takes as they are. Done on the table map, which zongji emits before it decodes
 * the rows that use it.
 */
function rawGeometry(columns: Array<{ type: number; charset: string | null }> | undefined): void {
  for (const c of columns ?? []) {
    if (c.type === MYSQL_TYPE_GEOMETRY) {
      c.type = MYSQL_TYPE_BLOB;
      c.charset = null;
    }
  }
}

export class BinlogStream {
  private z: ZongJi | undefined;
  private cur: BinlogTx | undefined;
  /** the current group is a standalone statement (DDL) rather than a BEGIN...COMMIT transaction */
  private standalone = false;
  private pkByTable = new Map<number, string[]>();
  private failed = false;
  /** after stop(), zongji may still decode what it had buffered: ignore all of it */
  private stopped = false;
  lastEventAt = Date.now();

  constructor(private readonly o: StreamOptions) {}

  /** Resolves once the server accepted the dump request (or rejects with its error). */
  start(): Promise<void> {
    const z = new ZongJi(mysqlOptions(this.o.endpoint, this.o.connectTimeoutMs ?? 5000) as any);
    this.z = z;
    const decodeTable = this.o.decodeTable;
    if (decodeTable) {
      // zongji asks this of every table map event; its own filters take fixed names only, and
      // the tables to skip (a schema change's helpers) come and go while the stream runs
      const zz = z as unknown as { _skipSchema?: (schema: string, table: string) => boolean };
      if (typeof zz._skipSchema !== 'function') return Promise.reject(new Error('this @vlasky/zongji has no table filter hook (_skipSchema): install the version package-lock.json pins'));
      zz._skipSchema = (schema, table) => !decodeTable(schema, table);
    }
    return new Promise((resolve, reject) => {
      let ready = false;
      z.on('ready', () => {
        ready = true;
        this.lastEventAt = Date.now();
        resolve();
      });
      z.on('error', (err: Error) => {
        if (this.stopped) return;
        if (!ready) return reject(err);
        this.fail(err);
      });
      z.on('binlog', (e: ZEvent) => {
        if (this.stopped) return;
        try {
          this.onEvent(e);
        } catch (err) {
          this.fail(err as Error);
        }
      });
      z.start({
        serverId: this.o.serverId,
        gtidSet: this.o.from,
        includeEvents: ['tablemap', 'writerows', 'updaterows', 'deleterows', 'query', 'xid', 'mariadbgtid', 'gtid', 'heartbeat'],
      } as any);
    });
  }

  private fail(err: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.o.onError(err);
  }

  pause(): void {
    (this.z as any)?.connection?.pause?.();
  }

  resume(): void {
    (this.z as any)?.connection?.resume?.();
  }

  stop(): Promise<void> {
    this.stopped = true;
    const z = this.z;
    this.z = undefined;
    if (!z) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, 2000);
      z.once('stopped', () => {
        clearTimeout(t);
        resolve();
      });
      z.stop();
    });
  }

  private begin(gtid: string, e: ZEvent): BinlogTx {
    const g = parseGtid(this.o.flavor, gtid);
    const tx: BinlogTx = { gtid, seq: g.seq, timestampMs: Number(e.timestamp) || Date.now(), changes: [] };
    if (g.domain !== undefined) tx.domain = g.domain;
    if (g.serverId !== undefined) tx.serverId = g.serverId;
    if (g.uuid !== undefined) tx.uuid = g.uuid;
    return tx;
  }

  private finish(): void {
    const tx = this.cur;
    this.cur = undefined;
    if (tx) this.o.onTx(tx);
  }

  private onEvent(e: ZEvent): void {
    this.lastEventAt = Date.now();
    const name = e.getEventName();
    switch (name) {
      case 'mariadbgtid':
      case 'gtid':
        if (this.cur) this.finish(); // a transaction without a commit marker (should not happen)
        this.cur = this.begin(String(e.gtid), e);
        // MariaDB says so in the GTID event; on MySQL a transaction is what a BEGIN follows
        this.standalone = name === 'mariadbgtid' ? Boolean(e.standalone) : true;
        return;
      case 'tablemap':
        this.pkByTable.set(e.tableId, (e.primaryKey ?? []).map((i: number) => e.columnNames?.[i]).filter(Boolean));
        rawGeometry(e.tableMap?.[e.tableId]?.columns);
        return;
      case 'writerows':
      case 'updaterows':
      case 'deleterows': {
        if (!this.cur) throw new Error(`row event outside a transaction (GTID ${e.gtid ?? 'unknown'})`);
        const map = e.tableMap[e.tableId];
        const pk = this.pkByTable.get(e.tableId) ?? [];
        for (const r of e.rows as any[]) {
          if (name === 'writerows') this.cur.changes.push({ kind: 'insert', schema: map.parentSchema, table: map.tableName, pk, after: r });
          else if (name === 'deleterows') this.cur.changes.push({ kind: 'delete', schema: map.parentSchema, table: map.tableName, pk, before: r });
          else this.cur.changes.push({ kind: 'update', schema: map.parentSchema, table: map.tableName, pk, before: r.before, after: r.after });
        }
        return;
      }
      case 'xid':
        this.finish();
        return;
      case 'query': {
        const q = String(e.query ?? '');
        if (/^\s*BEGIN\s*$/i.test(q)) {
          this.standalone = false;
          return;
        }
        if (/^\s*COMMIT\s*$/i.test(q)) return this.finish();
        if (!this.cur) {
          this.cur = this.begin(String(e.gtid), e);
          this.standalone = true;
        }
        // DDL and other standalone statements have no commit marker of their own; a statement
        // inside a transaction (SAVEPOINT) is not a change of its own.
        if (this.standalone) {
          this.cur.statement = { schema: String(e.schema ?? ''), query: q };
          this.finish();
        }
        return;
      }
      default:
        return;
    }
  }
}
