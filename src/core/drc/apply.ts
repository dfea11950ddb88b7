// The applier: source transactions become one target transaction, with the checkpoint as its
// first write, so that a crash at any instant neither loses nor repeats anything.
//
// Conflicts are resolved row by row by last writer wins on the DRC timestamp column:
//   - the rows a batch touches are read and locked first (SELECT ... FOR UPDATE);
//   - events are folded in source order against that state: an insert or update takes effect
//     when the target row is the version the source changed, or when the incoming timestamp is
//     newer; equal timestamps go to the zone listed first in the topology, in every zone alike;
//     a delete wins over concurrent updates (it removes the row whatever its version, and an
//     update of a row deleted here is dropped), the one rule for deletes that converges
//     without tombstones;
//   - the net effect per row is written with one DELETE and one upsert per table.
// If the net effect is refused (a unique or foreign key the reordering upsets), the same
// transactions are applied again one at a time in exact source order.
import { toParam } from '../binlog/values.js';
import { keyText, type KeyValue } from '../chunk/keys.js';
import type { Db, Param } from '../db/connect.js';
import { QueryError } from '../db/connect.js';
import { quoteId, quoteTable } from '../db/quote.js';
import { readShape, rowKey, type RowKey, type TableShape } from '../db/introspect.js';
import { STATE_SCHEMA } from '../state/schema.js';
import type { BinlogTx, Row, RowChange } from '../binlog/stream.js';
import { EzError, ExitCode } from '../exit.js';
import { CHECKPOINT_TABLE, CONFLICTS_TABLE, EVENTS_TABLE, HEARTBEAT_TABLE, ILLEGAL_WRITES_TABLE, ownDdlMarker } from '../cluster/tables.js';
import { writeAsDrc } from '../cluster/session.js';
import { retryOnLockConflict } from '../apply/applier.js';
import type { StopReason, StoppedOn } from './client.js';
import type { Routes } from '../routes/index.js';
import { judgeWrite, type IllegalWhy } from './routes-judge.js';

export interface TableMeta {
  schema: string;
  table: string;
  columns: Set<string>;
  pk: string[];
  hasTs: boolean;
  /** when the structure was read: re-read when rows bring a column it did not have */
  readAt: number;
}

/**
 * The key DRC applies a table's rows by: the shared row key (db/introspect rowKey, the one the
 * checks and osc use), of which DRC takes only a primary key (what DRC needs, README); undefined
 * for a table without one, which DRC refuses.
 */
export function drcRowKey(shape: TableShape): RowKey | undefined {
  const key = rowKey(shape);
  return key?.index === 'PRIMARY' ? key : undefined;
}

export interface ApplierConfig {
  pipeline: string;
  sourceZone: string;
  targetZone: string;
  /** position of each zone in the topology's zones list: the lower wins a timestamp tie */
  sourceRank: number;
  targetRank: number;
  tsColumn: string;
  /** version 0 (no routing table row): the topology file's routes; its shard tables are the fallback of a document without them */
  fileRoutes: Routes;
  blockIllegal: boolean;
  /** told of each lock conflict retried in place (the direction counts them for status and metrics) */
  onLockRetry?: (reason: LockRetryReason) => void;
  /** called in each attempt once the batch's rows are read and locked, before it writes (tests: another session's write in between) */
  afterLockingRead?: () => Promise<void>;
}

export interface QueuedTx {
  tx: BinlogTx;
  /** the full source position once this transaction is processed */
  positionAfter: string;
  /** the routing table in effect where the source committed it (default: the file's, version 0) */
  routes?: Routes;
  /** the routing table version in the source's binlog once this transaction is read (stored with the checkpoint) */
  streamVersion?: number;
}

export interface ConflictRecord {
  schema: string;
  table: string;
  key: Record<string, unknown>;
  kind: 'insert-exists' | 'update-changed' | 'update-missing' | 'delete-changed';
  sourceTs: string | null;
  targetTs: string | null;
  winner: 'source' | 'target';
  gtid: string;
}

export interface IllegalRecord {
  schema: string;
  table: string;
  key: Record<string, unknown>;
  shardId: number | null;
  ownerZone: string | null;
  blocked: boolean;
  gtid: string;
  /** why it is illegal: another zone's shard, a blocked route, no owner, not the write zone */
  why: IllegalWhy;
  /** the routing table version it was judged by (0: the topology file) */
  routesVersion: number;
}

export interface BatchResult {
  transactions: number;
  rows: number;
  conflicts: ConflictRecord[];
  illegal: IllegalRecord[];
  /** heartbeats of the source zone applied in this batch: when each was written */
  heartbeatsWrittenAtMs: number[];
  /** the batch was refused as a net effect and applied transaction by transaction */
  ordered: boolean;
}

/** A failure that retrying will not cure: the direction stops (or skips, with --skip-errors). */
/** A transaction the target refuses: the direction stops on it (status says why, as stoppedOn). */
export class ApplyError extends EzError {
  constructor(
    message: string,
    readonly gtid: string,
    readonly table: string | null,
    cause: unknown,
    readonly reason: StopReason = 'refused',
    /** the column the table lacks (reason no-timestamp-column) */
    readonly column?: string,
  ) {
    super(ExitCode.runtime, message, { cause });
  }

  get stoppedOn(): StoppedOn {
    return { reason: this.reason, table: this.table, gtid: this.gtid, ...(this.column === undefined ? {} : { column: this.column }) };
  }
}

/** why a batch was applied again on its session: a deadlock, a lock wait timeout, a row that appeared between its read and its write */
export type LockRetryReason = 'deadlock' | 'lockWait' | 'rowAppeared';

/** A key the batch read as absent was inserted at the target before the batch wrote it. */
class RowAppeared extends EzError {
  readonly code = 'EZ_ROW_APPEARED';
  constructor(m: TableMeta, cause: QueryError) {
    super(ExitCode.runtime, `a row of ${m.schema}.${m.table} was inserted at the target while DRC applied it: ${cause.message}`, { cause });
  }
}

const RETRYABLE_CODES = new Set([
  'EZ_ROW_APPEARED',
  'ER_LOCK_DEADLOCK', 'ER_LOCK_WAIT_TIMEOUT', 'PROTOCOL_CONNECTION_LOST', 'ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE',
  'ER_SERVER_SHUTDOWN', 'ER_CONNECTION_KILLED', 'ER_QUERY_INTERRUPTED', 'PROTOCOL_SEQUENCE_TIMEOUT', 'ER_CON_COUNT_ERROR',
  // the target master is read_only (Applier.checkpoint): a switch under way
  'EZ_TARGET_READ_ONLY',
]);

/** Lock conflicts retried in place before they count as a retryable failure of the session. */
const LOCK_CONFLICT_ATTEMPTS = 8;

/** Connection losses, and lock conflicts that outlasted their retries in place: the session restarts from the checkpoint. */
export function isRetryable(err: unknown): boolean {
  const e = err as { code?: string; cause?: { code?: string }; fatal?: boolean };
  const code = e.code ?? e.cause?.code;
  if (code && RETRYABLE_CODES.has(code)) return true;
  if (/connection (is in closed state|lost)|closed state|Can't add new command when connection is in closed state/i.test((err as Error)?.message ?? '')) return true;
  return Boolean((e.cause as { fatal?: boolean } | undefined)?.fatal);
}

// Errors a net-effect batch can cause by reordering rows, which exact source order avoids.
const REORDER_CODES = new Set(['ER_DUP_ENTRY', 'ER_NO_REFERENCED_ROW_2', 'ER_ROW_IS_REFERENCED_2', 'ER_NO_REFERENCED_ROW', 'ER_ROW_IS_REFERENCED']);

function tsOf(row: Row | undefined, col: string): string | null {
  const v = row?.[col];
  return v === null || v === undefined ? null : String(v);
}

interface KeyState {
  table: TableMeta;
  key: unknown[];
  existedAtStart: boolean;
  exists: boolean;
  ts: string | null;
  /** the row to write when the final state exists and was changed by this batch */
  row: Row | null;
  changed: boolean;
  /** this transaction has written the key (it holds the row's lock from then on) */
  written?: boolean;
}

export class Applier {
  private tables = new Map<string, TableMeta>();

  constructor(
    readonly cfg: ApplierConfig,
    private readonly db: Db,
  ) {}

  forget(schema: string, table: string): void {
    this.tables.delete(`${schema}.${table}`);
  }

  /**
   * Run a replicated DDL. Its marker comment keeps the peer's replicator from sending it back
   * (MySQL has no session domain; on MariaDB the DRC domain does it too). Table structure is
   * read again afterwards.
   */
  async execStatement(schema: string, query: string, originZone: string): Promise<void> {
    if (schema) await this.db.exec(`USE ${quoteId(schema)}`);
    await this.db.exec(`${ownDdlMarker(`origin=${originZone}`)}${query}`);
    this.tables.clear();
  }

  async meta(schema: string, table: string, gtid: string): Promise<TableMeta> {
    const k = `${schema}.${table}`;
    let m = this.tables.get(k);
    if (!m) {
      let info = await readShape(this.db, schema, table);
      // The structure is read in four queries; an online schema change's RENAME between them
      // makes the table look missing, columnless or keyless for a moment: read it again before
      // stopping the direction over it.
      for (let i = 0; i < 10 && (!info || info.columns.length === 0 || !drcRowKey(info)); i++) {
        await new Promise((r) => setTimeout(r, 100));
        info = await readShape(this.db, schema, table);
      }
      if (!info) {
        throw new ApplyError(`zone ${this.cfg.targetZone} refused transaction ${gtid}: table ${k} does not exist there`, gtid, k, null, 'no-table');
      }
      m = { schema, table, columns: new Set(info.columns.map((c) => c.name)), pk: drcRowKey(info)?.columns ?? [], hasTs: info.columns.some((c) => c.name === this.cfg.tsColumn), readAt: Date.now() };
      if (m.pk.length === 0) throw new ApplyError(`zone ${this.cfg.targetZone} refused transaction ${gtid}: table ${k} has no primary key there; DRC needs one to identify rows`, gtid, k, null, 'no-primary-key');
      if (!m.hasTs) throw new ApplyError(`zone ${this.cfg.targetZone} refused transaction ${gtid}: table ${k} has no ${this.cfg.tsColumn} column there; last-writer-wins needs it (ezctl migrate drc-ts)`, gtid, k, null, 'no-timestamp-column', this.cfg.tsColumn);
      this.tables.set(k, m);
    }
    return m;
  }

  /**
   * The target table's structure for a change. A row bringing a column the cached structure
   * lacks means the table changed (an online schema change cut over here or at the source):
   * read it again, at most once a second, so a new column's values are written as soon as the
   * target has the column. Until then they cannot be, and are left out (see the README).
   */
  private async metaFor(c: RowChange, gtid: string): Promise<TableMeta> {
    const m = await this.meta(c.schema, c.table, gtid);
    const row = c.after ?? c.before;
    if (row && Date.now() - m.readAt > 1000 && Object.keys(row).some((col) => !m.columns.has(col))) {
      this.tables.delete(`${c.schema}.${c.table}`);
      return this.meta(c.schema, c.table, gtid);
    }
    return m;
  }

  /** Session settings of the applier connection, run once per connection. */
  static async prepareSession(db: Db, drcDomain: number | undefined): Promise<void> {
    // Row images are applied as they are: no auto-increment for an explicit 0, no strict-mode
    // refusal of a value the source accepted.
    await db.exec("SET SESSION sql_mode = 'NO_AUTO_VALUE_ON_ZERO'");
    await db.exec("SET SESSION binlog_format = 'ROW'");
    await db.exec('SET SESSION innodb_lock_wait_timeout = 10');
    // READ COMMITTED: the locking read of a batch's keys locks the rows that exist and nothing
    // else. Under REPEATABLE READ a key not there yet (every insert) took a gap lock, and two
    // zones' appliers writing one master both held a gap lock on the same gap (the tail of a table,
    // where every zone's new ids go) and then each waited for the other's to insert into it:
    // measured at 200 tx/s per zone, 527 of 528 deadlocks on three masters in 30 s were two DRC
    // appliers, not the zones' own writers. Without the gap lock a key absent at the read is
    // written by a plain INSERT (see upsert), which a row that appeared meanwhile refuses.
    await db.exec('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
    // What this session writes is logged under DRC's own GTID domain: the replicator of this
    // zone forwards only the zone's own domain, so nothing DRC applies travels back.
    await writeAsDrc(db, drcDomain);
  }

  /**
   * Apply a batch as one transaction. When the target refuses the net effect (a key the
   * reordering upsets, or a bad transaction somewhere in the batch), the same transactions are
   * applied one at a time in source order: those before a bad one commit, and the error names
   * the bad one's own GTID. Retryable failures (connection, deadlock) are thrown as they are.
   */
  async apply(batch: QueuedTx[], onCommitted?: (q: QueuedTx, r: BatchResult) => void, structureReread = false): Promise<BatchResult> {
    try {
      return await this.inPlace(() => this.applyOne(batch, 'net'));
    } catch (e) {
      await this.db.exec('ROLLBACK').catch(() => undefined);
      if (isRetryable(e)) throw e;
      // A column the cached structure had is gone (a schema change cut over here): read the
      // structures again and apply the same batch once more, by the columns the table has now.
      if (!structureReread && e instanceof QueryError && e.code === 'ER_BAD_FIELD_ERROR') {
        this.tables.clear();
        return this.apply(batch, onCommitted, true);
      }
      if (batch.length === 1 && !(e instanceof QueryError && e.code && REORDER_CODES.has(e.code))) throw this.classify(e, batch);
    }
    const total: BatchResult = { transactions: 0, rows: 0, conflicts: [], illegal: [], heartbeatsWrittenAtMs: [], ordered: true };
    for (const q of batch) {
      let r: BatchResult;
      try {
        r = await this.inPlace(() => this.applyOne([q], 'ordered'));
      } catch (e) {
        await this.db.exec('ROLLBACK').catch(() => undefined);
        throw isRetryable(e) ? e : this.classify(e, [q]);
      }
      onCommitted?.(q, r);
      total.transactions += r.transactions;
      total.rows += r.rows;
      total.conflicts.push(...r.conflicts);
      total.illegal.push(...r.illegal);
      total.heartbeatsWrittenAtMs.push(...r.heartbeatsWrittenAtMs);
    }
    return total;
  }

  /**
   * A deadlock or lock wait timeout (a peer zone's applier or the zone's own application on the
   * same rows: three zones make it common) is retried at once on this session: rolled back, the
   * same batch applied again, a few ms apart. Thrown out instead, it ended the whole session (both
   * ends reconnected, the binlog read again from the checkpoint, after a backoff from 0.5 s that
   * doubled on every repeat): seconds of lag for a conflict InnoDB had already resolved. The
   * checkpoint is written in the same transaction, so a batch applied again is applied once.
   */
  private async inPlace<T>(fn: () => Promise<T>): Promise<T> {
    for (let i = 1; ; i++) {
      try {
        return await retryOnLockConflict(fn, async () => {
          await this.db.exec('ROLLBACK');
        }, LOCK_CONFLICT_ATTEMPTS, this.cfg.onLockRetry);
      } catch (e) {
        // a row inserted at the target between the batch's read and its write: read it again
        if (!(e instanceof RowAppeared) || i >= LOCK_CONFLICT_ATTEMPTS) throw e;
        this.cfg.onLockRetry?.('rowAppeared');
        await this.db.exec('ROLLBACK');
      }
    }
  }

  /** Move the checkpoint past a transaction without applying it (--skip-errors). */
  async skip(q: QueuedTx, reason: string): Promise<void> {
    await this.db.exec('BEGIN');
    await this.checkpoint(q.positionAfter, q.tx.gtid, 0, q.streamVersion);
    await this.db.exec(`INSERT INTO ${quoteTable(STATE_SCHEMA, EVENTS_TABLE)} (pipeline, kind, gtid, detail) VALUES (?, 'skipped', ?, ?)`, [this.cfg.pipeline, q.tx.gtid, reason.slice(0, 60000)]);
    await this.db.exec('COMMIT');
  }

  /** Move the checkpoint to a position whose transactions were all filtered out. */
  async advance(positionAfter: string, lastGtid: string, routesVersion?: number): Promise<void> {
    await this.db.exec('BEGIN');
    await this.checkpoint(positionAfter, lastGtid, 0, routesVersion);
    await this.db.exec('COMMIT');
  }

  private classify(e: unknown, batch: QueuedTx[]): unknown {
    if (e instanceof ApplyError || isRetryable(e)) return e;
    const q = batch.length === 1 ? batch[0]! : undefined;
    const gtid = q?.tx.gtid ?? `${batch[0]?.tx.gtid}..${batch.at(-1)?.tx.gtid}`;
    const m = /in: (?:INSERT INTO|DELETE FROM|UPDATE|SELECT .*? FROM) (`[^`]+`\.`[^`]+`)/.exec((e as Error).message);
    const table = m ? m[1]!.replace(/`/g, '') : null;
    return new ApplyError(`zone ${this.cfg.targetZone} refused transaction ${gtid}${table ? ` on ${table}` : ''}: ${(e as Error).message}`, gtid, table, e);
  }

  /**
   * Upsert the checkpoint: the first write of every applied transaction, and only on a writable
   * target. DRC connects as the admin user, whom read_only does not stop: a master being switched
   * (emha switch) is read_only with its writes blocked, and when the switch's process dies the
   * block goes with it; a statement of ours that waited behind the block would then write into
   * the old master, a transaction the new master never has (measured: kill -9 of `emha switch`
   * after its point of no return left 5 DRC-applied transactions on the demoted master). The
   * read_only test is in the statement itself, so it is evaluated after any wait for the block.
   */
  /** `routesVersion`: the routing table version in the source's binlog at `position` (undefined: unknown, stored NULL) */
  private async checkpoint(position: string, lastGtid: string, count: number, routesVersion?: number): Promise<void> {
    const r = await this.db.exec(
      `INSERT INTO ${quoteTable(STATE_SCHEMA, CHECKPOINT_TABLE)} (pipeline, source_position, last_gtid, applied_tx, routes_version) SELECT ?, ?, ?, ?, ? FROM DUAL WHERE @@global.read_only = 0
       ON DUPLICATE KEY UPDATE source_position = VALUES(source_position), last_gtid = VALUES(last_gtid), applied_tx = applied_tx + VALUES(applied_tx), routes_version = VALUES(routes_version)`,
      [this.cfg.pipeline, position, lastGtid, count, routesVersion ?? null],
    );
    // 0 rows also when the update changed nothing: only read_only says why
    if (r.affectedRows === 0 && Number(await this.db.value('SELECT @@global.read_only')) === 1) {
      throw Object.assign(new Error(`zone ${this.cfg.targetZone}'s master is read_only (a master switch under way, or an old master): nothing applied; retrying until the zone's master is writable or repointed`), { code: 'EZ_TARGET_READ_ONLY' });
    }
  }

  private wins(incoming: string | null, current: string | null): boolean {
    const a = incoming ?? '';
    const b = current ?? '';
    if (a !== b) return a > b;
    return this.cfg.sourceRank < this.cfg.targetRank;
  }

  private async applyOne(batch: QueuedTx[], mode: 'net' | 'ordered'): Promise<BatchResult> {
    const last = batch.at(-1)!;
    const res: BatchResult = { transactions: batch.length, rows: 0, conflicts: [], illegal: [], heartbeatsWrittenAtMs: [], ordered: mode === 'ordered' };
    await this.db.exec('BEGIN');
    await this.checkpoint(last.positionAfter, last.tx.gtid, batch.length, last.streamVersion);

    // Every table and key this batch touches, read and locked up front.
    const changes: Array<{ c: RowChange; gtid: string; m: TableMeta; routes: Routes }> = [];
    for (const q of batch) {
      for (const c of q.tx.changes) changes.push({ c, gtid: q.tx.gtid, m: await this.metaFor(c, q.tx.gtid), routes: q.routes ?? this.cfg.fileRoutes });
    }
    const state = new Map<string, KeyState>();
    const keyOf = (m: TableMeta, row: Row) => m.pk.map((k) => row[k]);
    const sk = (m: TableMeta, key: unknown[]) => `${m.schema}.${m.table}|${keyText(key as KeyValue)}`;
    const wanted = new Map<TableMeta, Map<string, unknown[]>>();
    for (const { c, m } of changes) {
      const keys = wanted.get(m) ?? new Map<string, unknown[]>();
      wanted.set(m, keys);
      for (const row of [c.before, c.after]) {
        if (!row) continue;
        const key = keyOf(m, row);
        keys.set(keyText(key as KeyValue), key);
      }
    }
    // Tables in name order (each table's keys are locked in key order by the IN range scan): two
    // appliers writing one zone take their row locks in one order and cannot deadlock each other on it.
    const byName = [...wanted].sort(([a], [b]) => (`${a.schema}.${a.table}` < `${b.schema}.${b.table}` ? -1 : `${a.schema}.${a.table}` > `${b.schema}.${b.table}` ? 1 : 0));
    for (const [m, keys] of byName) await this.lockRows(m, [...keys.values()], state, sk);
    await this.cfg.afterLockingRead?.();

    const ts = this.cfg.tsColumn;
    const stateOf = (m: TableMeta, key: unknown[]): KeyState => {
      const id = sk(m, key);
      let s = state.get(id);
      if (!s) {
        s = { table: m, key, existedAtStart: false, exists: false, ts: null, row: null, changed: false };
        state.set(id, s);
      }
      return s;
    };
    const conflict = (m: TableMeta, key: unknown[], kind: ConflictRecord['kind'], sourceTs: string | null, targetTs: string | null, winner: 'source' | 'target', gtid: string) => {
      // heartbeats are DRC's own rows, not data: a missing one after a restart is no conflict
      if (m.schema === STATE_SCHEMA) return;
      res.conflicts.push({ schema: m.schema, table: m.table, key: Object.fromEntries(m.pk.map((k, i) => [k, key[i]])), kind, sourceTs, targetTs, winner, gtid });
    };
    const put = (s: KeyState, row: Row) => {
      s.exists = true;
      s.ts = tsOf(row, ts);
      s.row = row;
      s.changed = true;
    };
    const drop = (s: KeyState) => {
      s.exists = false;
      s.ts = null;
      s.row = null;
      s.changed = true;
    };

    for (const { c, gtid, m, routes } of changes) {
      res.rows++;
      if (m.schema === STATE_SCHEMA && m.table === HEARTBEAT_TABLE && c.after && String(c.after.zone) === this.cfg.sourceZone) {
        res.heartbeatsWrittenAtMs.push(Number(c.after.written_at_ms));
      }
      if (this.illegal(c, m, gtid, routes, res)) continue;
      const before = c.before ? stateOf(m, keyOf(m, c.before)) : undefined;
      const after = c.after ? stateOf(m, keyOf(m, c.after)) : undefined;
      const aTs = tsOf(c.after, ts);
      const bTs = tsOf(c.before, ts);
      // ordered mode writes each event right away: remember whether its rows existed before it
      const touched = [...new Set([before, after])].filter((s): s is KeyState => s !== undefined);
      const stepStart = mode === 'ordered' ? new Map(touched.map((s) => [s, { exists: s.exists }])) : undefined;
      if (c.kind === 'insert') {
        const s = after!;
        if (!s.exists) put(s, c.after!);
        else if (s.ts !== aTs) {
          const win = this.wins(aTs, s.ts);
          conflict(m, s.key, 'insert-exists', aTs, s.ts, win ? 'source' : 'target', gtid);
          if (win) put(s, c.after!);
        } else put(s, c.after!); // the same version again: harmless
      } else if (c.kind === 'update') {
        const b = before!;
        const a = after!;
        if (!b.exists) {
          // Deleted here meanwhile: the delete wins (it also wins in the zone that updated,
          // where it arrives later), so both zones end without the row.
          conflict(m, b.key, 'update-missing', aTs, null, 'target', gtid);
        } else if (b.ts === bTs || this.wins(aTs, b.ts)) {
          if (b.ts !== bTs) conflict(m, b.key, 'update-changed', aTs, b.ts, 'source', gtid);
          if (a !== b) drop(b);
          put(a, c.after!);
        } else {
          conflict(m, b.key, 'update-changed', aTs, b.ts, 'target', gtid);
        }
      } else {
        const b = before!;
        if (!b.exists) continue;
        // A delete removes the row even when it was updated here meanwhile: a delete carries
        // only the version it deleted, not when it happened, so "the newer one wins" cannot be
        // decided for it the same way in both zones; "the delete wins" can.
        if ((b.ts ?? '') > (bTs ?? '')) conflict(m, b.key, 'delete-changed', bTs, b.ts, 'source', gtid);
        drop(b);
      }
      if (stepStart) await this.writeStep(stepStart);
    }
    if (mode === 'net') await this.writeNet(state);
    await this.logReports(res);
    await this.db.exec('COMMIT');
    return res;
  }

  /**
   * The routing table where the source committed it: report (and with --block-illegal, skip) a
   * write to a shard another zone owns or a blocked one, or, in a global cluster, a write at a
   * zone other than the write zone (routes-judge.ts).
   */
  private illegal(c: RowChange, m: TableMeta, gtid: string, routes: Routes, res: BatchResult): boolean {
    const row = c.after ?? c.before!;
    const j = judgeWrite(routes, this.cfg.sourceZone, m.schema, m.table, row, this.cfg.fileRoutes.tables);
    if (!j) return false;
    res.illegal.push({
      schema: m.schema, table: m.table, key: Object.fromEntries(m.pk.map((k) => [k, row[k]])), shardId: j.shardId, ownerZone: j.ownerZone, blocked: this.cfg.blockIllegal, gtid,
      why: j.why, routesVersion: routes.version,
    });
    return this.cfg.blockIllegal;
  }

  private async lockRows(m: TableMeta, keys: unknown[][], state: Map<string, KeyState>, sk: (m: TableMeta, key: unknown[]) => string): Promise<void> {
    const ts = this.cfg.tsColumn;
    const cols = [...m.pk, ts].map(quoteId).join(', ');
    for (let i = 0; i < keys.length; i += 500) {
      const part = keys.slice(i, i + 500);
      const rows = await this.db.query(`SELECT ${cols} FROM ${quoteTable(m.schema, m.table)} WHERE ${keysWhere(m.pk, part.length)} FOR UPDATE`, part.flat().map(toParam));
      for (const r of rows) {
        const key = m.pk.map((k) => r[k]);
        state.set(sk(m, key), { table: m, key, existedAtStart: true, exists: true, ts: tsOf(r, ts), row: null, changed: false });
      }
    }
  }

  /**
   * Every column the row brings, those the cached structure lacks too: the target may have gained
   * them since it was read (a schema change cut over there a moment ago), and upsert finds out.
   */
  private rowColumns(row: Row): string[] {
    return Object.keys(row);
  }

  /** Net effect: per table one DELETE of the rows gone, one upsert of the rows changed. */
  private async writeNet(state: Map<string, KeyState>): Promise<void> {
    const deletes = new Map<TableMeta, unknown[][]>();
    const upserts = new Map<string, { m: TableMeta; cols: string[]; rows: Row[]; fresh: boolean }>();
    for (const s of state.values()) {
      if (!s.changed) continue;
      if (!s.exists) {
        if (s.existedAtStart) deletes.set(s.table, [...(deletes.get(s.table) ?? []), s.key]);
        continue;
      }
      const cols = this.rowColumns(s.row!);
      const fresh = !s.existedAtStart;
      const id = `${s.table.schema}.${s.table.table}|${cols.join(',')}|${fresh}`;
      const u = upserts.get(id) ?? { m: s.table, cols, rows: [], fresh };
      u.rows.push(s.row!);
      upserts.set(id, u);
    }
    for (const [m, keys] of deletes) {
      for (let i = 0; i < keys.length; i += 500) {
        const part = keys.slice(i, i + 500);
        await this.db.exec(`DELETE FROM ${quoteTable(m.schema, m.table)} WHERE ${keysWhere(m.pk, part.length)}`, part.flat().map(toParam));
      }
    }
    for (const { m, cols, rows, fresh } of upserts.values()) {
      for (let i = 0; i < rows.length; i += 200) await this.upsert(m, cols, rows.slice(i, i + 200), fresh);
    }
  }

  /**
   * Write rows. `fresh`: their keys were not there at the batch's locking read, which under READ
   * COMMITTED locks nothing for them; a plain INSERT, so that a row inserted meanwhile (the zone's
   * own writer, committed or not) is not overwritten without last-writer-wins having seen it: the
   * duplicate is refused, and the batch is applied again, its read now finding (and locking) the row.
   */
  private async upsert(m: TableMeta, cols: string[], rows: Row[], fresh = false): Promise<void> {
    const unknown = cols.filter((c) => !m.columns.has(c));
    if (!unknown.length) return this.write(m, cols, rows, fresh);
    // Columns the cached structure lacks are tried first: leaving them out on the cache's word
    // lost a new column's value written right after both zones had cut over, when the structure
    // had been read just before this zone's cut-over (re-reads are at most once a second). A
    // column the target does not have fails the statement alone (before it writes anything; the
    // transaction goes on), and the row is written without it, as the README says.
    try {
      await this.write(m, cols, rows, fresh);
      for (const c of unknown) m.columns.add(c);
    } catch (e) {
      if (!(e instanceof QueryError && e.code === 'ER_BAD_FIELD_ERROR')) throw e;
      await this.write(m, cols.filter((c) => m.columns.has(c)), rows, fresh);
    }
  }

  private async write(m: TableMeta, cols: string[], rows: Row[], fresh: boolean): Promise<void> {
    const one = `(${cols.map(() => '?').join(', ')})`;
    if (fresh) {
      try {
        await this.db.exec(`INSERT INTO ${quoteTable(m.schema, m.table)} (${cols.map(quoteId).join(', ')}) VALUES ${rows.map(() => one).join(', ')}`, rows.flatMap((r) => cols.map((c) => toParam(r[c]))));
      } catch (e) {
        if (e instanceof QueryError && e.code === 'ER_DUP_ENTRY' && /for key '(?:[^']*\.)?PRIMARY'/.test(e.message)) throw new RowAppeared(m, e);
        throw e;
      }
      return;
    }
    // The DRC timestamp is written explicitly (it is one of the columns), so the target's
    // ON UPDATE does not re-stamp it.
    const update = cols.filter((c) => !m.pk.includes(c)).map((c) => `${quoteId(c)} = VALUES(${quoteId(c)})`);
    const sql = `INSERT INTO ${quoteTable(m.schema, m.table)} (${cols.map(quoteId).join(', ')}) VALUES ${rows.map(() => one).join(', ')}` +
      (update.length ? ` ON DUPLICATE KEY UPDATE ${update.join(', ')}` : ` ON DUPLICATE KEY UPDATE ${quoteId(m.pk[0]!)} = ${quoteId(m.pk[0]!)}`);
    await this.db.exec(sql, rows.flatMap((r) => cols.map((c) => toParam(r[c]))));
  }

  /** Ordered mode: write what one event changed, right away, in source order. */
  private async writeStep(touched: Map<KeyState, { exists: boolean }>): Promise<void> {
    // deletes first (a key change frees its old key), then writes
    for (const [s, before] of touched) {
      if (before.exists && !s.exists) {
        const m = s.table;
        await this.db.exec(`DELETE FROM ${quoteTable(m.schema, m.table)} WHERE ${m.pk.map((k) => `${quoteId(k)} = ?`).join(' AND ')}`, s.key.map(toParam));
      }
    }
    for (const [s] of touched) {
      if (s.exists && s.row && s.changed) {
        await this.upsert(s.table, this.rowColumns(s.row), [s.row], !s.existedAtStart && !s.written);
        s.changed = false;
        s.written = true;
      }
    }
  }

  private async logReports(res: BatchResult): Promise<void> {
    if (res.conflicts.length) {
      const rows = res.conflicts.slice(0, 1000);
      await this.db.exec(
        `INSERT INTO ${quoteTable(STATE_SCHEMA, CONFLICTS_TABLE)} (pipeline, db, tbl, row_key, kind, source_ts, target_ts, winner, gtid) VALUES ${rows.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
        rows.flatMap((c) => [this.cfg.pipeline, c.schema, c.table, JSON.stringify(c.key, keyReplacer), c.kind, c.sourceTs, c.targetTs, c.winner, c.gtid]),
      );
    }
    if (res.illegal.length) {
      const rows = res.illegal.slice(0, 1000);
      await this.db.exec(
        `INSERT INTO ${quoteTable(STATE_SCHEMA, ILLEGAL_WRITES_TABLE)} (pipeline, zone, owner_zone, db, tbl, shard_id, row_key, blocked, gtid, why, routes_version) VALUES ${rows.map(() => '(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)').join(', ')}`,
        rows.flatMap((r) => [this.cfg.pipeline, this.cfg.sourceZone, r.ownerZone, r.schema, r.table, r.shardId, JSON.stringify(r.key, keyReplacer), r.blocked ? 1 : 0, r.gtid, r.why, r.routesVersion]),
      );
    }
  }
}

/**
 * WHERE for `n` keys of primary key `pk` (values bound in key order): `id IN (?, ?)`, or for a
 * composite key `(a, b) IN ((?, ?), (?, ?))`, except one composite key, which is `a = ? AND b = ?`:
 * MariaDB 10.11 reads a one-row `(a, b) IN ((?, ?))` as a row equality, which a single-table DELETE
 * does not look up by the key but by a full table scan (EXPLAIN: type ALL over every row; two or
 * more rows: range on PRIMARY), taking a lock on every row it passes: the demo's order_items delete
 * of one order blocked every writer of the table, and two appliers deleting that way deadlocked.
 */
export function keysWhere(pk: string[], n: number): string {
  if (pk.length === 1) return `${quoteId(pk[0]!)} IN (${Array.from({ length: n }, () => '?').join(', ')})`;
  if (n === 1) return pk.map((k) => `${quoteId(k)} = ?`).join(' AND ');
  const one = `(${pk.map(() => '?').join(', ')})`;
  return `(${pk.map(quoteId).join(', ')}) IN (${Array.from({ length: n }, () => one).join(', ')})`;
}

function keyReplacer(_k: string, v: unknown): unknown {
  if (v && typeof v === 'object' && (v as { type?: string }).type === 'Buffer') return `0x${Buffer.from((v as { data: number[] }).data).toString('hex')}`;
  return typeof v === 'bigint' ? v.toString() : v;
}
