// One zone's part of an online schema change, gh-ost's way and without triggers:
//  - the ghost table (_t_gho) is created with the change applied;
//  - the table's binlog changes from that moment on are applied to the ghost (REPLACE / DELETE
//    of the final state per key, in batches), including what DRC writes into the table here;
//  - rows are copied in key order through the shared chunker (INSERT ... SELECT as a consistent
//    read: no locks on the original, so the application's writes never wait for the copy; a row
//    the binlog applier already wrote is kept, being newer; see copy() for why that is exact);
//  - the ghost's plain secondary indexes are left out while rows are copied and built afterwards
//    in one online ALTER (a sorted build, not an insert into every index per row);
//  - before the cut-over, original and ghost are compared chunk by chunk and a differing chunk
//    is copied again (REPLACE), which is safe because later binlog changes still follow;
//  - the cut-over (cutover.ts, for all the tables of a change in a zone at once) locks the table,
//    waits here until the ghost has every change up to the lock, and renames.
// Only the ghost is ever written; the original is read, never changed.
import type { Ctx } from '../context.js';
import type { Db } from '../db/connect.js';
import type { ResolvedNode } from '../config/load.js';
import { quoteId, quoteTable } from '../db/quote.js';
import { Chunker, chunkRange } from '../chunk/chunker.js';
import { decodeKey, encodeKey, type KeyValue, type SqlPart } from '../chunk/keys.js';
import { ensureStateSchema, STATE_SCHEMA } from '../state/schema.js';
import { chunkChecksumSql, type CompareColumn, type TableTarget } from '../compare/checksum.js';
import type { Throttler } from '../throttle/throttler.js';
import type { Logger } from '../ui/log.js';
import { createTriggerSql, ghostTriggerName, indexesLeftOut, leaveOutIndexesSql, type OscPlan } from './plan.js';
import { addIndexes, missingIndexes } from '../copy/indexes.js';
import { DEFAULT_LOCK_WAIT_S, isLockWaitTimeout, lockWaitError, withLockWait } from '../db/lockwait.js';
import { ownDdlMarker } from '../cluster/tables.js';
import { retryOnLockConflict } from '../apply/applier.js';
import { runCopyLoop } from '../copy/loop.js';
import { chunkWhere, insertSelectSql, type CopySpec } from '../copy/strategy.js';
import { DEFAULT_CHUNK_TIME_MS, type CopySettings } from '../copy/settings.js';
import type { ApplierTable, ZoneApplier } from './applier.js';

/** The largest chunk the verification compares (see verify). */
const VERIFY_MAX_ROWS = 5000;

export interface ZoneProgress {
  zone: string;
  phase: 'starting' | 'copying' | 'indexing' | 'verifying' | 'ready' | 'cutting-over' | 'done' | 'failed' | 'aborted';
  rowsCopied: number;
  chunks: number;
  chunksRecopied: number;
  eventsApplied: number;
  backlog: number;
  cutOverAt?: number;
  /** how long building the indexes left out of the copy took */
  indexBuildMs?: number;
}

export class ZoneOsc {
  readonly progress: ZoneProgress;
  private readonly settings: CopySettings;
  private copyDb!: Db;
  /** more copy sessions with --copy-threads: chunks copied side by side */
  private extraCopyDbs: Db[] = [];
  /** the zone's binlog applier, shared by every table of the change there */
  private applier: ZoneApplier | undefined;

  constructor(
    private readonly ctx: Ctx,
    readonly zone: string,
    readonly node: ResolvedNode,
    readonly plan: OscPlan,
    private readonly o: {
      /** the copy's settings (chunk time, threads, deferred indexes), as the flags gave them */
      copy: CopySettings; throttler?: Throttler | undefined; log: Logger; job: string;
      /** the bound on every metadata lock wait of the ghost's DDL and the copy (default DEFAULT_LOCK_WAIT_S) */
      lockWaitS?: number | undefined;
      /** every table of the change this table is part of (a family's: all of them), saved with the state so `osc abort` ends the whole change */
      changeTables?: string[] | undefined;
    },
  ) {
    // its own copy: `osc set chunk-time=...` changes this job's
    this.settings = { ...o.copy };
    this.progress = { zone, phase: 'starting', rowsCopied: 0, chunks: 0, chunksRecopied: 0, eventsApplied: 0, backlog: 0 };
  }

  private get t(): string {
    return quoteTable(this.plan.schema, this.plan.table);
  }

  private get ghost(): string {
    return quoteTable(this.plan.schema, this.plan.names.ghost);
  }

  private chunkers: Chunker[] = [];
  /** stop() ends a copy that waits on the throttle, too */
  private readonly halt = new AbortController();

  /** `osc set chunk-time=...`: the running copy and verify adapt to the new target. */
  setChunkTime(ms: number): void {
    this.settings.chunkTimeMs = ms;
    for (const c of this.chunkers) c.setTargetMs(ms);
  }

  /** The ghost table, and the binlog applier from the position at which it was created. */
  /** The state a crashed run of this job saved here, if any (for --resume). */
  static async savedState(db: Db, job: string, zone: string): Promise<{ alter: string; lastKey: KeyValue | undefined; appliedPos: string; rowsCopied: number } | undefined> {
    const r = await db
      .one<{ alter_text: string; last_key: string | null; applied_pos: string; rows_copied: string | number }>(`SELECT alter_text, last_key, applied_pos, rows_copied FROM ${quoteTable(STATE_SCHEMA, 'osc_state')} WHERE job = ? AND zone = ?`, [job, zone])
      .catch(() => undefined);
    if (!r) return undefined;
    return { alter: r.alter_text, lastKey: r.last_key ? decodeKey(r.last_key) : undefined, appliedPos: r.applied_pos, rowsCopied: Number(r.rows_copied) };
  }

  private lastSave = 0;
  /** the saved state exists in this zone: a stopped job can be resumed (or aborted) from it */
  stateSaved = false;

  private get lockWaitS(): number {
    return this.o.lockWaitS ?? DEFAULT_LOCK_WAIT_S;
  }

  /** A DDL or lock on the ghost (or the original) with the lock wait bound; a wait that runs out names the holder. */
  private bounded<T>(db: Db, what: string, tables: string[], fn: () => Promise<T>, seconds = this.lockWaitS, fix = 'or wait'): Promise<T> {
    return withLockWait(db, { seconds, schema: this.plan.schema, tables, what: `zone ${this.zone}: ${what}`, fix }, fn);
  }

  /** Where the copy and the binlog apply are: what --resume starts from after a crash. */
  private async saveState(lastKey: KeyValue | undefined, force = false): Promise<void> {
    if (!force && Date.now() - this.lastSave < 1000) return;
    this.lastSave = Date.now();
    await this.copyDb.exec(
      `INSERT INTO ${quoteTable(STATE_SCHEMA, 'osc_state')} (job, zone, alter_text, last_key, applied_pos, rows_copied, phase, change_tables) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON DUPLICATE KEY UPDATE last_key = VALUES(last_key), applied_pos = VALUES(applied_pos), rows_copied = VALUES(rows_copied), phase = VALUES(phase), change_tables = VALUES(change_tables)`,
      [this.o.job, this.zone, this.plan.alter, lastKey ? encodeKey(lastKey) : null, this.applier?.appliedPos ?? '', this.progress.rowsCopied, this.progress.phase, JSON.stringify(this.o.changeTables ?? [this.plan.table])],
    );
    this.stateSaved = true;
  }

  async clearState(): Promise<void> {
    const db = await this.ctx.connect(this.node);
    try {
      await db.exec(`DELETE FROM ${quoteTable(STATE_SCHEMA, 'osc_state')} WHERE job = ? AND zone = ?`, [this.o.job, this.zone]).catch(() => undefined);
    } finally {
      await db.close();
    }
  }

  /**
   * The ghost (left as it is on --resume) and the copy session. The zone's applier starts after
   * every table's ghost exists, from the position then (or the saved one), and is attached.
   */
  async prepare(resume?: { lastKey: KeyValue | undefined; appliedPos: string; rowsCopied: number }): Promise<void> {
    this.copyDb = await this.copySession();
    for (let i = 1; i < (this.settings.copyThreads ?? 1); i++) this.extraCopyDbs.push(await this.copySession());
    await ensureStateSchema(this.copyDb);
    if (resume) {
      // the ghost is there: the binlog is applied again from the saved position (REPLACE and
      // DELETE of final states are idempotent) and the copy goes on from the saved key
      this.resumeAfter = resume.lastKey;
      this.progress.rowsCopied = resume.rowsCopied;
      // a cut-over killed after giving the ghost its triggers: the applier must not fire them
      await this.dropGhostTriggers(this.copyDb, true);
    } else {
      const p = this.plan;
      await this.bounded(this.copyDb, 'creating the ghost table', [p.table, p.names.ghost], async () => {
        await this.copyDb.exec(`CREATE TABLE ${this.ghost} LIKE ${this.t}`);
        if (p.alter.trim()) await this.copyDb.exec(`ALTER TABLE ${this.ghost} ${p.alter}`);
        const later = indexesLeftOut(p, this.settings.deferIndexes);
        if (later.length) await this.copyDb.exec(leaveOutIndexesSql(this.ghost, later));
      }, this.lockWaitS, 'or wait, and start the change again');
    }
  }

  private async copySession(): Promise<Db> {
    const db = await this.ctx.connect(this.node);
    // strict like the server's own default, so a value the new shape cannot hold fails the job
    // instead of being cut short; ROW binlogs for the ghost writes; no foreign key checks in the
    // ghosts (a child row may be copied before its parent; the applier follows cascades itself)
    await db.exec('SET SESSION sql_mode = @@GLOBAL.sql_mode');
    await db.exec("SET SESSION binlog_format = 'ROW'");
    await db.exec('SET SESSION innodb_lock_wait_timeout = 10');
    await db.exec('SET SESSION foreign_key_checks = 0');
    // the copy's own metadata locks (the original read, the ghost written) wait no longer either
    await db.exec('SET SESSION lock_wait_timeout = ?', [this.lockWaitS]);
    // INSERT ... SELECT reads the original without locking it only below REPEATABLE READ
    await db.exec('SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED');
    return db;
  }

  /** What the zone's applier needs to know of this table. */
  applierTable(): ApplierTable {
    return { table: this.plan.table, ghost: this.plan.names.ghost, columns: this.plan.columns, key: this.plan.key.columns, progress: this.progress };
  }

  async attach(applier: ZoneApplier): Promise<void> {
    this.applier = applier;
    await this.saveState(this.resumeAfter, true);
  }

  private resumeAfter: KeyValue | undefined;

  private check(): void {
    this.applier?.check();
  }

  /**
   * Copy every row of the original into the ghost, in chunks sized to the time target; with
   * --copy-threads N, N chunks of disjoint key ranges at once (never beside an applier batch).
   * The checkpoint is the end of the chunks finished in key order, so a resume copies nothing
   * twice and misses nothing however they finished.
   */
  async copy(): Promise<void> {
    this.progress.phase = 'copying';
    const p = this.plan;
    const target = this.checksumTarget(p.table);
    const chunker = await this.chunker(target, this.resumeAfter);
    const spec = this.copySpec();
    await runCopyLoop({
      chunker,
      sessions: [this.copyDb, ...this.extraCopyDbs],
      after: this.resumeAfter,
      throttle: this.o.throttler,
      signal: this.halt.signal,
      check: () => this.check(),
      // A consistent read, no locks: a copy statement never runs beside an applier batch
      // (ghostCopy), so a change committed before it started is either read here or was applied
      // before (the row kept: ON DUPLICATE KEY), and one committed after is applied after it,
      // over what was copied. The exception is a change whose binlog event arrived before its
      // commit became visible to this read (microseconds): a deleted row can then be copied
      // back. verify() compares every chunk before the cut-over and copies such a chunk again
      // under locks.
      copyChunk: async (db, chunk) => {
        const ins = insertSelectSql(spec, chunkWhere(spec, chunk), { keepExisting: true });
        const r = await this.ghostCopy(() => retryOnLockConflict(() => db.exec(ins.sql, ins.params))).catch(async (e) => {
          // still waiting after the retries: say on what (a metadata lock: who holds it)
          if (!isLockWaitTimeout(e)) throw e;
          throw await lockWaitError(db, { seconds: this.lockWaitS, schema: p.schema, tables: [p.table, p.names.ghost], what: `zone ${this.zone}: copying rows`, fix: 'or wait' }, e);
        });
        return Number(r.affectedRows ?? 0);
      },
      onChunk: (rows) => {
        this.progress.rowsCopied += rows;
        this.progress.chunks++;
      },
      // saveState keeps the state at most once a second itself (its clock is shared with attach)
      checkpointMs: 0,
      checkpoint: (after, done) => this.saveState(after, done),
    });
  }

  /** The ghost's copy: the original's rows by its key, old column names to new. */
  private copySpec(): CopySpec {
    const p = this.plan;
    return { source: { schema: p.schema, table: p.table, key: p.key }, target: { schema: p.schema, table: p.names.ghost }, columns: p.columns };
  }

  /**
   * Build the indexes the copy went without (OscPlan.deferrableIndexes) in one online ALTER; the
   * binlog applier goes on meanwhile. After a --resume only those still missing are built.
   */
  async buildIndexes(): Promise<void> {
    const p = this.plan;
    if (!p.deferrableIndexes.length) return;
    const missing = await missingIndexes(this.copyDb, p.schema, p.names.ghost, p.deferrableIndexes);
    if (!missing.length) return;
    this.progress.phase = 'indexing';
    this.check();
    await this.o.throttler?.gate(this.halt.signal);
    const t0 = Date.now();
    // bounded: a session holding the ghost's metadata lock (a reader) would hold this up
    await this.bounded(this.copyDb, `building index ${missing.map((ix) => ix.name).join(', ')} on the ghost`, [p.names.ghost], () => addIndexes(this.copyDb, p.schema, p.names.ghost, missing));
    const lacking = (await missingIndexes(this.copyDb, p.schema, p.names.ghost, p.deferrableIndexes)).map((ix) => ix.name);
    if (lacking.length) throw new Error(`zone ${this.zone}: the ghost ${p.names.ghost} still lacks index ${lacking.join(', ')} after building it`);
    this.progress.indexBuildMs = Date.now() - t0;
  }

  /** The compared columns of the original (old names) or of the ghost (new names). */
  private checksumTarget(table: string): TableTarget {
    const p = this.plan;
    const original = table === p.table;
    const columns: CompareColumn[] = p.verifyColumns.map((name) => {
      const c = p.after.columns.find((x) => x.name === name)!;
      const from = p.columns.find((x) => x.to === name)!.from;
      const old = p.before.columns.find((x) => x.name === from);
      // one NULL bitmap for both tables: nullable if either shape allows NULL
      return { name: original ? from : name, dataType: c.dataType, nullable: c.nullable || !!old?.nullable };
    });
    return { schema: p.schema, table, index: p.key.index, keyColumns: p.key.columns, columns, hash: 'crc64' };
  }

  private async chunker(target: TableTarget, after?: KeyValue, maxRows?: number): Promise<Chunker> {
    const p = this.plan;
    const opts: ConstructorParameters<typeof Chunker>[4] = { targetMs: this.settings.chunkTimeMs ?? DEFAULT_CHUNK_TIME_MS, ...(maxRows ? { maxRows } : {}) };
    if (after) opts.after = p.key.integer ? [BigInt(String(after[0]))] : after;
    if (p.key.integer) {
      const col = quoteId(p.key.columns[0]!);
      const b = await this.copyDb.one<{ lo: string | null; hi: string | null }>(`SELECT CAST(MIN(${col}) AS CHAR) AS lo, CAST(MAX(${col}) AS CHAR) AS hi FROM ${this.t}`);
      opts.numericMin = b?.lo ? BigInt(b.lo) : null;
      opts.numericMax = b?.hi ? BigInt(b.hi) : null;
    }
    const c = new Chunker(this.copyDb, target.schema, p.table, p.key, opts);
    this.chunkers.push(c);
    return c;
  }

  /** Compare original and ghost chunk by chunk on the carried-over columns; copy a differing chunk again. */
  async verify(): Promise<void> {
    this.progress.phase = 'verifying';
    await this.caughtUp(60_000);
    const p = this.plan;
    const orig = this.checksumTarget(p.table);
    const ghost = { ...this.checksumTarget(p.names.ghost), index: p.key.index };
    // Small chunks: the original moves under the application while the two checksums are read,
    // and a large chunk (a verify chunk grew to 150,000 rows) then differs on every try under a
    // steady load and was copied again whole, holding shared locks on all its rows for seconds:
    // the application's p95 went to a second and the binlog doubled.
    const chunker = await this.chunker(orig, undefined, VERIFY_MAX_ROWS);
    // the ghost's checksums are read on a session of their own, beside the original's: on two
    // cores the time after a 1M-row copy went from 3.3-3.6 s to 2.3-2.4 s, and the two reads of a
    // chunk land closer together
    const ghostDb = await this.ctx.connect(this.node);
    try {
      await this.verifyChunks(chunker, orig, ghost, ghostDb);
    } finally {
      await ghostDb.close().catch(() => undefined);
    }
    this.progress.phase = 'ready';
  }

  private async verifyChunks(chunker: Chunker, orig: TableTarget, ghost: TableTarget, ghostDb: Db): Promise<void> {
    const p = this.plan;
    for (;;) {
      this.check();
      await this.o.throttler?.gate(this.halt.signal);
      const chunk = await chunker.next();
      if (!chunk) break;
      const range = chunkRange(p.key, chunk);
      const t0 = Date.now();
      const first = await this.compareChunk(orig, ghost, range, ghostDb);
      // the applier may just be behind, or a write landed between the two reads: let it catch
      // up and look again, a few times, before copying the chunk again
      let same = first.same;
      for (let i = 0; !same && i < 3; i++) {
        await this.caughtUp(10_000);
        same = (await this.compareChunk(orig, ghost, range, ghostDb)).same;
      }
      if (!same) {
        await this.recopy(range);
        this.progress.chunksRecopied++;
      }
      // the rows really there: an empty stretch of a sparse key must widen the next steps
      chunker.record(Math.max(first.rows, 1), Date.now() - t0);
    }
  }

  private async compareChunk(orig: TableTarget, ghost: TableTarget, range: SqlPart, ghostDb: Db): Promise<{ same: boolean; rows: number }> {
    const a = chunkChecksumSql(orig, range, false);
    const b = chunkChecksumSql(ghost, range, false);
    const [x, y] = await Promise.all([this.copyDb.one(a.sql, a.params), ghostDb.one(b.sql, b.params)]);
    return { same: String(x?.cnt) === String(y?.cnt) && String(x?.crc) === String(y?.crc), rows: Number(x?.cnt ?? 0) };
  }

  private async recopy(range: SqlPart): Promise<void> {
    // the original's rows, locked while they are read
    const ins = insertSelectSql(this.copySpec(), range, { lockInShareMode: true });
    await this.ghostWrite(() => retryOnLockConflict(async () => {
      await this.copyDb.exec('BEGIN');
      // rows the ghost has that the original no longer has go too
      await this.copyDb.exec(`DELETE FROM ${this.ghost} WHERE ${range.sql}`, range.params);
      await this.copyDb.exec(ins.sql, ins.params);
      await this.copyDb.exec('COMMIT');
    }, () => this.copyDb.exec('ROLLBACK').then(() => undefined)));
  }

  /** A write to the ghost, taken in turn with the zone's binlog applier (see ZoneApplier.exclusive). */
  private ghostWrite<T>(fn: () => Promise<T>): Promise<T> {
    return this.applier ? this.applier.exclusive(fn) : fn();
  }

  /** A copy chunk: beside other copy chunks, never beside an applier batch (see ZoneApplier.shared). */
  private ghostCopy<T>(fn: () => Promise<T>): Promise<T> {
    return this.applier ? this.applier.shared(fn) : fn();
  }

  /** Wait until the applier has applied everything the binlog held when this was called. */
  async caughtUp(timeoutMs: number): Promise<void> {
    await this.applier!.caughtUp(this.copyDb, timeoutMs);
  }

  /** Carry the original's AUTO_INCREMENT to the ghost, read under the cut-over lock (lockDb holds it). */
  async carryAutoIncrement(lockDb: Db, lockWaitS: number): Promise<void> {
    // The ghost's counter only knows the ids copied into it; the original's may be higher (rows
    // at the end deleted): carry it over, so no id is handed out twice.
    const next = await lockDb.value<string | number | null>('SELECT AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', [this.plan.schema, this.plan.table]);
    if (next === null || next === undefined) return;
    // bounded: the tables are locked meanwhile, and a session reading the ghost would hold this up
    await this.bounded(this.copyDb, 'carrying AUTO_INCREMENT to the ghost', [this.plan.names.ghost], () =>
      this.copyDb.exec(`ALTER TABLE ${this.ghost} AUTO_INCREMENT = ${BigInt(String(next)).toString()}`), lockWaitS);
  }

  /**
   * The original's triggers on the ghost, under their ghost names (plan.ghostTriggerName), in
   * their order. Called under the cut-over lock, once the ghost caught up and with the zone's
   * applier held: from here on only the application writes the ghost (after the RENAME), so a
   * trigger fires once per write. During the copy and the binlog apply the ghost has none: the
   * copy would fire them, and the applier writes rows whose trigger effects are already in the
   * binlog as row events of their own.
   */
  async createGhostTriggers(lockWaitS: number): Promise<void> {
    const p = this.plan;
    if (!p.triggers.length) return;
    const mode = await this.copyDb.value<string>('SELECT @@SESSION.sql_mode');
    try {
      await this.bounded(this.copyDb, 'creating the triggers on the ghost', [p.names.ghost], async () => {
        for (const t of p.triggers) {
          // as the trigger was created: its body is parsed and run with its own sql_mode
          await this.copyDb.exec('SET SESSION sql_mode = ?', [t.sqlMode]);
          await this.copyDb.exec(`${ownDdlMarker('osc')}${createTriggerSql(p.schema, p.names.ghost, t, ghostTriggerName(t.name))}`);
          this.ghostTriggers.push(ghostTriggerName(t.name));
        }
      }, lockWaitS);
    } finally {
      await this.copyDb.exec('SET SESSION sql_mode = ?', [mode ?? '']).catch(() => undefined);
    }
  }

  /** the triggers createGhostTriggers made on the ghost so far (an undone attempt drops just these) */
  private ghostTriggers: string[] = [];

  /**
   * Drop the ghost's triggers: those this job created (a cut-over attempt undone), or with any,
   * every one it has (a resumed job whose cut-over was killed).
   */
  async dropGhostTriggers(db: Db = this.copyDb, any = false): Promise<void> {
    const p = this.plan;
    const names = any
      ? (await db.query<{ n: string }>('SELECT TRIGGER_NAME AS n FROM information_schema.TRIGGERS WHERE EVENT_OBJECT_SCHEMA = ? AND EVENT_OBJECT_TABLE = ?', [p.schema, p.names.ghost])).map((r) => r.n)
      : [...this.ghostTriggers];
    if (!names.length) return;
    await this.bounded(db, 'dropping the triggers of the ghost', [p.names.ghost], async () => {
      for (const n of names) {
        await db.exec(`${ownDdlMarker('osc')}DROP TRIGGER IF EXISTS ${quoteTable(p.schema, n)}`);
        this.ghostTriggers = this.ghostTriggers.filter((x) => x !== n);
      }
    });
  }

  /**
   * After the cut-over: the original's triggers, now on the old table (t_ezdel), go; nothing
   * writes that table, and their names are then free. The new table has them under their ghost names.
   */
  async dropOldTriggers(db: Db): Promise<void> {
    const p = this.plan;
    if (!p.triggers.length) return;
    await this.bounded(db, 'dropping the triggers of the old table', [p.names.old], async () => {
      for (const t of p.triggers) await db.exec(`${ownDdlMarker('osc')}DROP TRIGGER IF EXISTS ${quoteTable(p.schema, t.name)}`);
    });
  }

  /** the ghost could not be dropped (a session held it): stop() said so */
  ghostLeft = false;
  /** stop() closed the copy session (a second stop, e.g. the family's after an abort's, needs a new one) */
  private copyDbClosed = false;

  /** Stop the applier and close everything; with dropHelpers, the ghost goes too (abort). */
  async stop(dropHelpers: boolean): Promise<void> {
    this.halt.abort(new Error(`zone ${this.zone}: stopped`));
    await this.applier?.stop();
    if (dropHelpers && this.progress.phase !== 'done') {
      const drop = (db: Db) => this.bounded(db, 'dropping the ghost table', [this.plan.names.ghost], () => db.exec(`DROP TABLE IF EXISTS ${this.ghost}`), this.lockWaitS, 'then `ezctl osc abort` drops it');
      // the copy session may be gone (closed by an earlier stop, or killed: `osc abort` from
      // another process kills the sessions that hold the ghost): then the drop goes on a new one
      let db = this.copyDb && !this.copyDbClosed ? this.copyDb : await this.ctx.connect(this.node);
      try {
        try {
          await drop(db);
        } catch (e) {
          if (db !== this.copyDb || !/closed state|connection.*(lost|closed)|PROTOCOL_CONNECTION_LOST/i.test(`${(e as Error).message} ${(e as { code?: string }).code ?? ''}`)) throw e;
          db = await this.ctx.connect(this.node);
          await drop(db);
        }
        this.progress.phase = 'aborted';
        // dropped by a later stop after an earlier one could not: nothing is left
        this.ghostLeft = false;
      } catch (e) {
        // the original is untouched; the ghost stays, with what holds it named
        this.o.log.warn(`osc: ${(e as Error).message}; the ghost ${this.plan.schema}.${this.plan.names.ghost} is left: \`ezctl osc abort\` drops it later`);
        this.ghostLeft = true;
      } finally {
        if (db !== this.copyDb) await db.close();
      }
    }
    await this.copyDb?.close().catch(() => undefined);
    this.copyDbClosed = true;
    await Promise.all(this.extraCopyDbs.map((db) => db.close().catch(() => undefined)));
  }
}
