// The stream runner and `dbus start`. A stream: one source's binlog, from a GTID position,
// applied to a target through the move's mappings (final state per key, the checkpoint in the
// target's own transaction: apply/). `dbus start` takes each source's position before its copy,
// runs one stream per source, copies every table chunk by chunk (copy/, a chunk never beside a
// batch of its source's stream), then follows live until `dbus abort` or a cut-over ends it.
// `dbus cutover` (C3) runs the same stream reversed (target -> sources).
import { hostname } from 'node:os';
import type { Server } from 'node:net';
import type { Ctx } from '../context.js';
import { connect, type Db, type Endpoint } from '../db/connect.js';
import { quoteId, quoteTable } from '../db/quote.js';
import { gtidCovers } from '../db/gtid.js';
import { rowKey, readShape, showCreateTable } from '../db/introspect.js';
import { EzError, refused, runtimeError } from '../exit.js';
import { isLostConnection } from '../db/lost.js';
import { BatchApplier, retryOnLockConflict } from '../apply/applier.js';
import { clearApplyState, ensureApplyCheckpoint, loadApplyState, saveAppliedPosition, saveCopyFrontier, type ApplyState } from '../apply/checkpoint.js';
import { tableId, type TableRef } from '../apply/mapping.js';
import type { BinlogTx } from '../binlog/stream.js';
import { Chunker, type ChunkKey } from '../chunk/chunker.js';
import type { KeyValue } from '../chunk/keys.js';
import { runCopyLoop } from '../copy/loop.js';
import { chunkWhere, copyChunkBetween, insertSelectSql, type CopySpec } from '../copy/strategy.js';
import { DEFAULT_CHUNK_TIME_MS } from '../copy/settings.js';
import { acquireJob, type JobHandle } from '../job/job.js';
import { withLockWait } from '../db/lockwait.js';
import { addIndexes, missingIndexes } from '../copy/indexes.js';
import { progressOf } from '../job/lease.js';
import { serveJob } from '../control/commands.js';
import { onInterrupt } from '../signals.js';
import { Throttler, flagFileSignal, windowSignal, loadSignal, parseLoadSpec, throttlerFor, type ThrottleOptions, type ThrottleSignal } from '../throttle/index.js';
import { planMove, openMove, type DbusMapping, type DbusPlan } from './plan.js';
import { describeRef, loadMove, type DbusMove, type DbusState, type DbusStatus } from './spec.js';
import { forgetDdl, onSourceDdl, peekSourceDdl, type SourceDdl } from './ddl.js';
import { admitApplier } from './fence.js';
import { conflictSummary, ensureConflictTable, recordConflict } from './conflicts.js';
import { clearDdlRecords, ensureDdlRecord, madeBefore, recordMade } from './ddl-record.js';
import { splitCollisions } from '../apply/collisions.js';
import { DBUS_CLUSTER, dbusJob, serverIdOf, socketFor, streamName } from './job.js';
import { retentionWarning, binlogStart } from './status.js';

export interface StreamSpec {
  /** the stream's name: its checkpoint row (`_ezctl.apply_checkpoint.name`) on the target */
  name: string;
  /** the move it belongs to (the DDL hook and messages name it) */
  move: DbusMove;
  /** the label of the server read (a move source; the move's target label for a reverse stream) */
  label: string;
  source: Endpoint;
  target: Endpoint;
  /** only the tables of this source: source table -> target table */
  mappings: DbusMapping[];
  /** the GTID position to start after when the target holds no checkpoint of `name` yet */
  from: string;
  /** the replica server id announced to the source (default: derived from name) */
  serverId?: number;
  /** every mapping of the move (all sources): a merge's collision record names the source of the row kept */
  peers?: DbusMapping[];
}

export interface StreamHandle {
  readonly name: string;
  readonly label: string;
  /** the position of the last transaction read from the source */
  readGtid(): string;
  /** the position the target has applied (and checkpointed) every change up to */
  appliedGtid(): string;
  /** ms between the oldest unapplied transaction's commit on the source and now (0 when caught up) */
  lagMs(): number | null;
  /** stop applying (the position is kept: the reader stops too); resume() goes on from it */
  pause(): Promise<void>;
  resume(): Promise<void>;
  readonly paused: boolean;
  /** true once the target applied every change up to `gtid` (a GTID position of the source); false on timeout */
  waitApplied(gtid: string, o: { timeoutMs: number; signal?: AbortSignal }): Promise<boolean>;
  /** run fn as a writer beside this stream's batches, never during one (a copy chunk) */
  shared<T>(fn: () => Promise<T>): Promise<T>;
  /** stop reading and applying; resolves once the last batch is committed or rolled back */
  stop(): Promise<void>;
  /** settles when the stream ends: resolves after stop(), rejects with why it failed (DDL, purged binlog, ...) */
  readonly done: Promise<void>;
}

/**
 * Chunks copied at once between two servers by default: each thread its own source and target
 * session, so one chunk's rows are read while another's are written and the target takes several
 * INSERTs at once. Measured (100,000 rows, load 15-25): 4 threads 1.2-1.4x one. Within one server
 * (INSERT ... SELECT) one: more gain nothing on 2 cores (MARIADB-NOTES).
 */
export const DBUS_COPY_THREADS = 4;

/** Idle transactions (other tables) move the saved position at most this often. */
const IDLE_CHECKPOINT_MS = 100;

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((r) => {
    if (signal?.aborted) return r();
    const done = () => {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      r();
    };
    const t = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });

interface Tok { w: string; quoted: boolean }

/** Words, `quoted identifiers`, and the punctuation . , ( of a statement (comments and strings dropped). */
function tokenize(q: string): Tok[] {
  const out: Tok[] = [];
  const re = /\/\*[\s\S]*?\*\/|--[^\n]*|#[^\n]*|`((?:[^`]|``)*)`|'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*"|([A-Za-z0-9_$]+)|([.,(])/g;
  for (const m of q.matchAll(re)) {
    if (m[1] !== undefined) out.push({ w: m[1].replace(/``/g, '`'), quoted: true });
    else if (m[2] !== undefined) out.push({ w: m[2], quoted: false });
    else if (m[3] !== undefined) out.push({ w: m[3], quoted: false });
  }
  return out;
}

/**
 * The tables a DDL statement changes, as schema.table (the default schema for unqualified names):
 * ALTER/RENAME/DROP/TRUNCATE/CREATE TABLE, CREATE/DROP INDEX ... ON. Undefined for any other
 * statement (DML logged as a statement, CREATE DATABASE, GRANT, OPTIMIZE: no change of shape).
 */
export function ddlTables(query: string, defaultSchema: string): TableRef[] | undefined {
  const t = tokenize(query);
  const is = (i: number, ...words: string[]) => t[i] !== undefined && !t[i]!.quoted && words.includes(t[i]!.w.toUpperCase());
  const name = (i: number): [TableRef, number] | undefined => {
    if (!t[i] || t[i]!.w === '.' || t[i]!.w === ',' || t[i]!.w === '(') return undefined;
    if (t[i + 1]?.w === '.' && t[i + 2]) return [{ schema: t[i]!.w, table: t[i + 2]!.w }, i + 3];
    return [{ schema: defaultSchema, table: t[i]!.w }, i + 1];
  };
  const skip = (i: number, ...words: string[]) => {
    while (is(i, ...words)) i++;
    return i;
  };
  const list = (i: number, sep: (j: number) => number): TableRef[] => {
    const out: TableRef[] = [];
    for (;;) {
      const n = name(i);
      if (!n) return out;
      out.push(n[0]);
      i = sep(n[1]);
      if (i < 0) return out;
    }
  };
  const onName = (): TableRef[] => {
    const at = t.findIndex((x, i) => i > 0 && !x.quoted && x.w.toUpperCase() === 'ON');
    const n = at > 0 ? name(at + 1) : undefined;
    return n ? [n[0]] : [];
  };
  if (is(0, 'ALTER')) {
    const i = skip(1, 'ONLINE', 'IGNORE');
    if (!is(i, 'TABLE')) return undefined;
    const n = name(skip(i + 1, 'IF', 'EXISTS'));
    return n ? [n[0]] : [];
  }
  if (is(0, 'RENAME') && is(1, 'TABLE', 'TABLES')) return list(2, (j) => (is(j, 'TO') ? j + 1 : t[j]?.w === ',' ? j + 1 : -1));
  if (is(0, 'DROP') && (is(1, 'TABLE', 'TABLES') || (is(1, 'TEMPORARY') && is(2, 'TABLE')))) return list(skip(skip(1, 'TEMPORARY', 'TABLE', 'TABLES'), 'IF', 'EXISTS'), (j) => (t[j]?.w === ',' ? j + 1 : -1));
  if (is(0, 'TRUNCATE')) {
    const n = name(skip(1, 'TABLE'));
    return n ? [n[0]] : [];
  }
  if (is(0, 'CREATE')) {
    const i = skip(1, 'OR', 'REPLACE', 'TEMPORARY', 'UNIQUE', 'FULLTEXT', 'SPATIAL');
    if (is(i, 'INDEX')) return onName();
    if (!is(i, 'TABLE')) return undefined;
    const n = name(skip(i + 1, 'IF', 'NOT', 'EXISTS'));
    return n ? [n[0]] : [];
  }
  if (is(0, 'DROP') && is(1, 'INDEX')) return onName();
  return undefined;
}

/** Start one stream (contract C1 -> C3: the same runner forward and reversed). */
export async function startStream(ctx: Ctx, spec: StreamSpec, o: { signal?: AbortSignal } = {}): Promise<StreamHandle> {
  const target = await connect(spec.target);
  let closedTarget = false;
  try {
    await ensureApplyCheckpoint(target);
    let state = await loadApplyState(target, spec.name);
    if (!state) {
      await saveAppliedPosition(target, spec.name, spec.from);
      state = { position: spec.from, copied: new Map() };
    }
    await assertNotPurged(spec.source, spec.label, state.position);
    const s = new Stream(ctx, spec, target, state.position);
    await s.open();
    o.signal?.addEventListener('abort', () => void s.stop(), { once: true });
    closedTarget = true;
    return s;
  } finally {
    if (!closedTarget) await target.close().catch(() => undefined);
  }
}

/** A kept position the source's binlogs no longer reach: refused (exit 4), never skipped. */
async function assertNotPurged(source: Endpoint, label: string, position: string): Promise<void> {
  const db = await connect(source);
  try {
    const start = await binlogStart(db);
    if (start && !gtidCovers('mariadb', position, start.position)) {
      throw refused(`source ${label}: the kept position ${position} is no longer in its binary logs (the oldest, ${start.file}, starts after ${start.position}): the changes in between were purged, and skipping them would lose them`, {
        hint: 'end the move (`ezctl dbus abort NAME --drop-target`) and start it again; keep binlogs longer than a pause (binlog_expire_logs_seconds / expire_logs_days)',
      });
    }
  } finally {
    await db.close();
  }
}

class Stream implements StreamHandle {
  private applier: BatchApplier | undefined;
  /** the applier last opened, kept once stopped: its turns outlive it (shared, idle) */
  private lastApplier: BatchApplier | undefined;
  private failure: Error | undefined;
  private stopped = false;
  private saved: string;
  private timer: NodeJS.Timeout | undefined;
  private settle!: { resolve: () => void; reject: (e: Error) => void };
  readonly done: Promise<void>;
  paused = false;
  private lastRead: string;

  constructor(
    private readonly ctx: Ctx,
    private readonly spec: StreamSpec,
    /** the session that writes the idle checkpoints */
    private readonly target: Db,
    position: string,
  ) {
    this.saved = position;
    this.lastRead = position;
    this.done = new Promise((resolve, reject) => (this.settle = { resolve, reject }));
    this.done.catch(() => undefined);
  }

  get name(): string {
    return this.spec.name;
  }

  get label(): string {
    return this.spec.label;
  }

  async open(): Promise<void> {
    const spec = this.spec;
    const a = new BatchApplier({
      label: `dbus ${spec.move.name}: source ${spec.label}`,
      targetsName: `the target tables of move ${spec.move.name}`,
      lockWaitFix: 'find the session that holds the target table (named above) and end it, then `ezctl dbus start NAME --execute --resume`',
      source: async () => spec.source,
      serverId: spec.serverId ?? serverIdOf(spec.name),
      // the move's own stream passes its fence (dbus cutover, fence.ts) on the target's tables
      connectTarget: () => connect(spec.target).then(async (db) => (await admitApplier(db, spec.move.name), db)),
      mappings: spec.mappings,
      checkpoint: (db, pos) => saveAppliedPosition(db, spec.name, pos),
      onStatement: (tx) => this.onStatement(tx),
      onHeldStatement: (tx) => this.onHeldStatement(tx),
      onCollision: (db, c) => recordConflict(db, spec.move.name, spec.peers ?? spec.mappings, c),
      // a merged table streamed back: a row of no shard stays at the target, where dbus verify
      // (the rollback's verify step) names it until it is given a shard's value
      onOrphan: (message) => this.ctx.log.warn(`dbus ${spec.move.name}: ${message}: left at the target; \`ezctl dbus verify ${spec.move.name}\` names it and \`dbus rollback\` refuses until it has a shard's value (the reverse stream then brings it to that shard)`),
    });
    await a.start(this.saved);
    this.applier = a;
    this.lastApplier = a;
    this.timer ??= setInterval(() => this.tick(), IDLE_CHECKPOINT_MS);
  }

  /** A batch failed, or DDL stopped it: the stream ends with that error. */
  private tick(): void {
    const a = this.applier;
    if (!a || this.stopped) return;
    this.lastRead = a.readPosition || this.lastRead;
    try {
      a.check();
    } catch (e) {
      this.end(e as Error);
      return;
    }
    // transactions on other tables moved the position: save it (between batches, never beside one)
    if (a.appliedPos !== this.saved && !this.savingIdle) {
      this.savingIdle = true;
      void a.exclusive(async () => {
        const pos = a.appliedPos;
        if (pos === this.saved) return;
        await saveAppliedPosition(this.target, this.spec.name, pos);
        this.saved = pos;
      }).catch((e: Error) => this.ctx.log.debug(`dbus ${this.spec.name}: saving the idle position: ${e.message}`)).finally(() => (this.savingIdle = false));
    }
  }

  private savingIdle = false;

  private onStatement(tx: BinlogTx): 'pass' | Error | Promise<'pass' | Error> {
    const st = tx.statement!;
    const named = ddlTables(st.query, st.schema);
    if (!named) return 'pass';
    const mine = new Map(this.spec.mappings.map((m) => [tableId(m.source), m]));
    const hit = named.filter((t) => mine.has(tableId(t)));
    if (!hit.length) return 'pass';
    const targets = [...new Set(hit.map((t) => { const m = mine.get(tableId(t))!; return `${m.target.schema}.${m.target.table}`; }))];
    const what = `source ${this.spec.label}: DDL on ${hit.map((t) => `${t.schema}.${t.table}`).join(', ')} (moved by ${this.spec.move.name} into ${targets.join(', ')}) at GTID ${tx.gtid}: ${JSON.stringify(st.query.length > 300 ? st.query.slice(0, 300) + '...' : st.query)}`;
    const stopError = (why?: string) =>
      runtimeError(`${what}: ${why ?? 'the stream stopped before it; the target was not changed, and rows of the new shape are never applied to a table of the old one'}`, {
        hint: `make the same change to ${targets.join(', ')} on the target, then either end the move (\`ezctl dbus abort ${this.spec.move.name} --drop-target\`) and start it again, or resume it past the statement with \`ezctl dbus start ${this.spec.move.name} --execute --resume --ddl-done ${tx.gtid}\``,
      });
    if (ddlDone.has(`${this.spec.name} ${tx.gtid}`)) {
      this.ctx.log.warn(`${what}: passed (--ddl-done ${tx.gtid}: the target has the change)`);
      return 'pass';
    }
    let resolve!: (v: 'pass' | Error) => void;
    const held = new Promise<'pass' | Error>((r) => (resolve = r));
    const ev: SourceDdl = {
      schema: st.schema,
      tables: hit,
      gtid: tx.gtid,
      resume: () => resolve('pass'),
      stop: (why) => resolve(stopError(why)),
      apply: (sql, target) => this.applyDdl(sql, target),
    };
    const d = onSourceDdl(this.spec.move, this.spec.label, st.query, ev);
    if (d === 'hold') {
      this.ctx.log.info(`${what}: held until every shard has it (the merge applies it once)`);
      return held;
    }
    return stopError();
  }

  /** A statement read while this stream is held (a later shard table of the same source). */
  private onHeldStatement(tx: BinlogTx): void {
    const st = tx.statement!;
    const named = ddlTables(st.query, st.schema);
    if (!named) return;
    const mine = new Set(this.spec.mappings.map((m) => tableId(m.source)));
    const hit = named.filter((t) => mine.has(tableId(t)));
    if (hit.length) peekSourceDdl(this.spec.move, this.spec.label, st.query, hit);
  }

  /**
   * A merge's change made once on the target (every shard logged it), then the mappings into that
   * table follow its new shape: a column added is carried from now on, a column dropped no more.
   */
  private async applyDdl(sql: string, target: TableRef): Promise<void> {
    const db = await connect(this.spec.target);
    try {
      await db.exec('SET SESSION lock_wait_timeout = 30');
      const columnsOf = async () => {
        const shape = await readShape(db, target.schema, target.table);
        if (!shape) throw new Error(`${target.schema}.${target.table} is gone from the target`);
        return new Set(shape.columns.filter((c) => !c.generated).map((c) => c.name));
      };
      const move = this.spec.move.name;
      await ensureDdlRecord(db);
      let before = await columnsOf();
      const earlier = await madeBefore(db, move, target, sql, (await showCreateTable(db, target.schema, target.table)) ?? '', [...before]);
      if (earlier) {
        // a killed run made it before its streams passed the shards' statements: not made twice
        before = new Set(earlier.columnsBefore);
        this.ctx.log.info(`dbus ${move}: every shard of ${target.schema}.${target.table} logged the change, which an earlier run made on the target: not made again (${sql})`);
      } else {
        await db.exec(sql);
        await recordMade(db, move, target, sql, (await showCreateTable(db, target.schema, target.table)) ?? '');
        this.ctx.log.info(`dbus ${move}: every shard of ${target.schema}.${target.table} logged the change; made once on the target: ${sql}`);
      }
      const after = await columnsOf();
      const added = [...after].filter((c) => !before.has(c));
      for (const m of this.spec.peers ?? this.spec.mappings) {
        if (tableId(m.target) !== tableId(target)) continue;
        const next = [...m.columns.filter((c) => after.has(c.to)), ...added.filter((c) => !m.columns.some((x) => x.to === c)).map((c) => ({ from: c, to: c }))];
        m.columns.splice(0, m.columns.length, ...next);
      }
    } finally {
      await db.close();
    }
  }

  readGtid(): string {
    return this.applier?.readPosition || this.lastRead;
  }

  appliedGtid(): string {
    return this.applier?.appliedPos ?? this.saved;
  }

  lagMs(): number | null {
    return this.applier && !this.paused ? this.applier.lagMs() : null;
  }

  shared<T>(fn: () => Promise<T>): Promise<T> {
    // a stopped stream's applier still keeps the turns: a chunk started after the stream ended
    // (before its restart) is waited for by the restart like the ones before it
    const a = this.applier ?? this.lastApplier;
    if (!a) return fn();
    return a.shared(fn);
  }

  /** Resolves once every copy chunk and batch that took a turn on this stream so far is done (a stopped stream's too). */
  idle(): Promise<void> {
    const a = this.applier ?? this.lastApplier;
    return a ? a.exclusive(async () => undefined) : Promise.resolve();
  }

  async pause(): Promise<void> {
    if (this.paused || this.stopped) return;
    this.paused = true;
    const a = this.applier;
    this.applier = undefined;
    if (a) {
      this.lastRead = a.readPosition || this.lastRead;
      await a.stop();
      // what it applied is committed with its checkpoint; keep the position in memory too
      this.saved = (await loadApplyState(this.target, this.spec.name))?.position ?? this.saved;
    }
  }

  async resume(): Promise<void> {
    if (!this.paused || this.stopped) return;
    await assertNotPurged(this.spec.source, this.spec.label, this.saved);
    await this.open();
    this.paused = false;
  }

  async waitApplied(gtid: string, o: { timeoutMs: number; signal?: AbortSignal }): Promise<boolean> {
    const deadline = Date.now() + o.timeoutMs;
    for (;;) {
      if (this.failure) throw this.failure;
      if (gtidCovers('mariadb', this.appliedGtid(), gtid)) return true;
      if (Date.now() >= deadline || o.signal?.aborted) return false;
      await sleep(10, o.signal);
    }
  }

  private end(e?: Error): void {
    if (e) this.failure ??= e;
    if (this.stopped) return;
    void this.stop();
  }

  async stop(): Promise<void> {
    if (this.stopped) return this.done.then(() => undefined, () => undefined);
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    const a = this.applier;
    this.applier = undefined;
    await a?.stop().catch(() => undefined);
    await this.target.close().catch(() => undefined);
    if (this.failure) this.settle.reject(this.failure);
    else this.settle.resolve();
  }
}

/** A lost connection, or a server that refuses connections for a moment (restarting). */
function transient(e: unknown): boolean {
  if (isLostConnection(e)) return true;
  for (let x = e as { code?: unknown; cause?: unknown } | undefined, n = 0; x && n < 8; x = x.cause as typeof x, n++) if (x.code === 'ECONNREFUSED') return true;
  return false;
}

/** `--ddl-done GTID`: a statement the operator made on the target too, passed once by the stream that meets it. */
const ddlDone = new Set<string>();

// ---------------------------------------------------------------------------------------------
// dbus start

export interface StartOptions {
  name: string;
  config?: string;
  spec?: string;
  execute: boolean;
  resume: boolean;
  throttle: ThrottleOptions;
  leaseMs?: number;
  chunkTimeMs?: number;
  /** chunks of disjoint key ranges copied at once between servers (default DBUS_COPY_THREADS; one server: 1) */
  copyThreads?: number;
  /** GTIDs of source DDL the operator applied to the target: the streams go past them */
  ddlDone?: string[];
  /** false: a created target table keeps its plain secondary indexes during the copy (default: built after it) */
  deferIndexes?: boolean;
  /** called once the job runs (its copy started), for tests and the progress line */
  onProgress?: (s: DbusStatus) => void;
}

export interface StartReport {
  execute: boolean;
  plan: DbusPlan;
  jobId?: string;
  state?: DbusState;
  /** why the job ended (abort, cut-over) */
  ended?: string;
  /** the target tables an abort dropped / kept */
  dropped?: string[];
  kept?: string[];
}

interface TableProgress {
  mapping: DbusMapping;
  copiedRows: number;
  estimatedRows: number;
  copyDone: boolean;
}

export async function startMove(ctx: Ctx, o: StartOptions): Promise<StartReport> {
  const move = await loadMove(ctx, { name: o.name, ...(o.config ? { config: o.config } : {}), ...(o.spec ? { spec: o.spec } : {}) });
  const dbs = await openMove(ctx, move);
  let plan: DbusPlan;
  let states: Map<string, ApplyState | undefined>;
  try {
    states = await loadStates(dbs.target, move);
    const fresh = [...states.values()].every((s) => !s);
    plan = await planMove(ctx, move, dbs, { resuming: !fresh && o.resume, ...(o.deferIndexes === false ? { deferIndexes: false } : {}) });
    if (!fresh && !o.resume) {
      plan.refusals.push(`move ${move.name} has kept positions on the target (a run that stopped): \`ezctl dbus start ${move.name} --execute --resume\` continues it, \`ezctl dbus abort ${move.name}\` ends it`);
    }
    if (fresh) {
      for (const t of plan.tables) {
        if (t.targetRows) plan.refusals.push(`${t.target}: the target table exists and holds rows: a fresh move copies into empty tables only (rows there would be kept over the source's, never compared); empty or drop it`);
      }
    }
  } finally {
    await dbs.close();
  }
  if (!o.execute) return { execute: false, plan };
  if (plan.refusals.length) throw refused(`dbus start ${move.name} refused; nothing changed`, { details: plan.refusals });
  return runMove(ctx, move, plan, states, o);
}

async function loadStates(target: Db, move: DbusMove): Promise<Map<string, ApplyState | undefined>> {
  const out = new Map<string, ApplyState | undefined>();
  const there = Number(await target.value('SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?', ['_ezctl', 'apply_checkpoint']));
  for (const s of move.sources) out.set(s.label, there ? await loadApplyState(target, streamName(move.name, s.label)) : undefined);
  return out;
}

async function runMove(ctx: Ctx, move: DbusMove, plan: DbusPlan, states: Map<string, ApplyState | undefined>, o: StartOptions): Promise<StartReport> {
  for (const g of o.ddlDone ?? []) for (const s of move.sources) ddlDone.add(`${streamName(move.name, s.label)} ${g}`);
  const sock = await socketFor(ctx, move.name);
  const job = await acquireJob(ctx, {
    cluster: DBUS_CLUSTER,
    kind: 'dbus',
    targets: [move.name],
    zones: [{ zone: move.target.label, node: move.target.node! }],
    resume: o.resume,
    ...(o.leaseMs ? { leaseMs: o.leaseMs } : {}),
    phase: 'planned',
    controlSocket: sock,
  });
  const r = new MoveRun(ctx, move, plan, job, o);
  try {
    return await r.run(states, sock);
  } catch (e) {
    await r.close();
    const aborted = (e as EzError).exitCode === 130;
    await job.fail(e, aborted ? 'aborted' : 'failed').catch(() => undefined);
    throw e;
  }
}

class MoveRun {
  state: DbusState = 'planned';
  private readonly streams = new Map<string, Stream>();
  private readonly tables: TableProgress[];
  private readonly stopCtrl = new AbortController();
  private stopWhy: string | undefined;
  private abortDrop = false;
  private pauseGate: { wait: Promise<void>; open: () => void } | undefined;
  private throttle: { gate(signal?: AbortSignal): Promise<void>; close(): Promise<void> } | undefined;
  private server: Server | undefined;
  private error: string | null = null;
  private readonly startedAt = Date.now();
  private sourceEndpoints = new Map<string, Endpoint>();
  private targetEndpoint!: Endpoint;
  private offInterrupt: (() => void) | undefined;
  private pausedAt: Map<string, number> = new Map();

  constructor(
    private readonly ctx: Ctx,
    private readonly move: DbusMove,
    private readonly plan: DbusPlan,
    private readonly job: JobHandle,
    private readonly o: StartOptions,
  ) {
    this.tables = plan.mappings.map((m) => ({
      mapping: m,
      copiedRows: 0,
      estimatedRows: plan.tables.find((t) => t.target === `${m.target.schema}.${m.target.table}`)?.estimatedRows ?? 0,
      copyDone: false,
    }));
  }

  private setState(s: DbusState): void {
    this.state = s;
    this.job.setPhase(s);
    this.flush();
  }

  private flush(): void {
    const rows = this.tables.reduce((n, t) => n + t.copiedRows, 0);
    const total = this.tables.reduce((n, t) => n + t.estimatedRows, 0);
    this.job.progress({
      ...progressOf(rows, total, Date.now() - this.startedAt),
      tables: this.tables.map((t) => ({ target: `${t.mapping.target.schema}.${t.mapping.target.table}`, source: `${t.mapping.label}:${t.mapping.source.schema}.${t.mapping.source.table}`, copiedRows: t.copiedRows, estimatedRows: t.estimatedRows, copyDone: t.copyDone })),
    });
  }

  async run(states: Map<string, ApplyState | undefined>, sock: string): Promise<StartReport> {
    const ctx = this.ctx;
    this.targetEndpoint = await ctx.endpoint(this.move.target.node!);
    for (const s of this.move.sources) this.sourceEndpoints.set(s.label, await ctx.endpoint(s.node!));
    this.offInterrupt = onInterrupt(async () => {
      this.stopWhy = 'interrupted';
      this.stopCtrl.abort();
      await this.close();
    });
    this.job.signal.addEventListener('abort', () => {
      this.stopWhy ??= 'lost its lease';
      this.stopCtrl.abort();
    }, { once: true });

    // the throttle: the target's cluster signals when it is a zone master, the flag file and windows always
    this.throttle = await this.openThrottle();
    this.server = await serveJob(sock, dbusJob, {
      status: () => this.status(),
      pause: async () => {
        await this.pause();
        return this.status();
      },
      resume: async () => {
        await this.resume();
        return this.status();
      },
      end: async (a) => {
        this.stopWhy = `ended:${a.state}`;
        this.stopCtrl.abort();
        return { state: a.state };
      },
      abort: async (a) => {
        this.stopWhy = 'aborted';
        this.abortDrop = !!a['drop-target'];
        this.stopCtrl.abort();
        return { dropped: [], kept: [] };
      },
    });

    // target schemas and tables, created from the sources' (a resumed run finds them there)
    if (this.plan.ddl.length) {
      const db = await connect(this.targetEndpoint);
      try {
        await db.exec('SET SESSION foreign_key_checks = 0');
        for (const sql of this.plan.ddl) await db.exec(sql);
      } finally {
        await db.close();
      }
    }

    if (this.plan.mappings.some((m) => m.uniqueKeys?.length)) {
      const db = await connect(this.targetEndpoint);
      try {
        await ensureConflictTable(db);
      } finally {
        await db.close();
      }
    }

    // each source's position BEFORE its copy: every change after it is applied by its stream
    const kept = new Map<string, ApplyState>();
    for (const s of this.move.sources) {
      let st = states.get(s.label);
      if (!st) {
        const db = await connect(this.sourceEndpoints.get(s.label)!);
        try {
          st = { position: String(await db.value('SELECT @@global.gtid_binlog_pos')), copied: new Map() };
        } finally {
          await db.close();
        }
      }
      kept.set(s.label, st);
    }
    for (const s of this.move.sources) {
      const st = kept.get(s.label)!;
      await this.openStream(s.label, st.position);
      for (const t of this.tables) {
        if (t.mapping.label !== s.label) continue;
        const at = st.copied.get(`${t.mapping.source.schema}.${t.mapping.source.table}`);
        if (at === 'done') {
          t.copyDone = true;
          t.copiedRows = t.estimatedRows;
        }
      }
    }
    ctx.log.info(`dbus ${this.move.name}: job ${this.job.id}: ${this.move.sources.map((s) => describeRef(s)).join(', ')} -> ${describeRef(this.move.target)}: ${this.tables.length} table(s)${this.job.tookOver ? ' (resumed)' : ''}`);

    this.setState('copying');
    try {
      try {
        await this.copyAll(kept);
        // tables copied in an earlier run (none queued for them), then every build's outcome
        for (const t of this.plan.laterIndexes) this.indexBuilds.queue(t);
        await this.indexBuilds.done();
      } finally {
        // builds queued while tables copied are waited for even when the copy failed: their
        // session is not closed under a running ALTER (the copy's error is the one reported)
        await this.indexBuilds.settle();
        const db = this.indexDb;
        this.indexDb = undefined;
        await db?.close().catch(() => undefined);
      }
    } catch (e) {
      if (!this.stopCtrl.signal.aborted) throw e;
    }
    if (!this.stopCtrl.signal.aborted) {
      this.setState('following');
      ctx.log.info(`dbus ${this.move.name}: copy done; following the sources live (\`ezctl dbus status ${this.move.name}\`)`);
    }
    while (!this.stopCtrl.signal.aborted) {
      this.o.onProgress?.(await this.status());
      await sleep(1000, this.stopCtrl.signal);
    }
    return this.finish();
  }

  private async finish(): Promise<StartReport> {
    const why = this.stopWhy ?? 'stopped';
    await this.close();
    const report: StartReport = { execute: true, plan: this.plan, jobId: this.job.id };
    if (why === 'failed') {
      this.state = 'failed';
      const e = runtimeError(`dbus ${this.move.name}: ${this.error}`, { hint: `the positions are kept on the target: after the fix, \`ezctl dbus start ${this.move.name} --execute --resume\`` });
      throw this.failure instanceof EzError ? this.failure : e;
    }
    if (why === 'lost its lease') throw runtimeError(`dbus ${this.move.name}: the job lost its lease; it stopped so that no two processes run it`, { hint: `\`ezctl dbus start ${this.move.name} --execute --resume\`` });
    if (why === 'interrupted') {
      await this.job.fail(new Error('interrupted (SIGINT/SIGTERM): the positions are kept; --resume continues'), 'failed');
      throw new EzError(130, `dbus ${this.move.name}: interrupted; the positions are kept: \`ezctl dbus start ${this.move.name} --execute --resume\` continues`);
    }
    if (why.startsWith('ended:')) {
      const state = why.slice('ended:'.length) as DbusState;
      this.state = state;
      this.job.setPhase(state);
      await this.job.finish('done');
      return { ...report, state, ended: state };
    }
    // aborted over the socket: the checkpoints go, the target tables stay (or are dropped)
    const ab = await abortState(this.targetEndpoint, this.move, this.abortDrop);
    await this.job.finish('aborted', 'aborted by `dbus abort`');
    this.state = 'stopped';
    return { ...report, state: 'stopped', ended: 'aborted', dropped: ab.dropped, kept: ab.kept };
  }

  /** Transient losses of a stream's connections in a row that are retried (from its checkpoint) before the job fails. */
  private static readonly RETRIES = 5;
  private lost = new Map<string, number>();
  private lostAt = new Map<string, number>();

  /** Per source being restarted: copy chunks wait for it before they take their turn. */
  private restarting = new Map<string, Promise<void>>();

  /**
   * Start (or restart, from its checkpoint on the target) the stream of one source, and watch it.
   * A restart first waits for the copy chunks still running on the old stream's turns (they are
   * not stopped with it), and holds new chunks until the new stream exists: otherwise the new
   * stream's first batches could be applied beside a chunk that read the source before them and
   * wrote after them, putting an older row back.
   */
  private async openStream(label: string, from: string): Promise<void> {
    const old = this.streams.get(label);
    if (!old) return this.startStreamOf(label, from);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    this.restarting.set(label, gate);
    try {
      await old.idle();
      await this.startStreamOf(label, from);
    } finally {
      this.restarting.delete(label);
      release();
    }
  }

  private async startStreamOf(label: string, from: string): Promise<void> {
    const stream = (await startStream(this.ctx, {
      name: streamName(this.move.name, label),
      move: this.move,
      label,
      source: this.sourceEndpoints.get(label)!,
      target: this.targetEndpoint,
      mappings: this.plan.mappings.filter((m) => m.label === label),
      peers: this.plan.mappings,
      from,
    })) as Stream;
    this.streams.set(label, stream);
    stream.done.then(() => this.lost.delete(label), (e: Error) => void this.onStreamEnd(label, e));
  }

  /**
   * A stream ended by an error: a lost connection (the source restarted, its dump thread killed, a
   * network cut) starts it again from its checkpoint, a few times with a growing pause, as gh-ost
   * does; anything else (DDL, a batch the target refused, a purged position) fails the job.
   */
  private async onStreamEnd(label: string, e: Error): Promise<void> {
    if (this.stopCtrl.signal.aborted || this.closed) return;
    // a stream that ran a minute since its last loss starts counting again
    const last = this.lostAt.get(label) ?? 0;
    const n = (Date.now() - last > 60_000 ? 0 : this.lost.get(label) ?? 0) + 1;
    this.lostAt.set(label, Date.now());
    if (transient(e) && n <= MoveRun.RETRIES) {
      this.lost.set(label, n);
      this.ctx.log.warn(`dbus ${this.move.name}: source ${label}: the stream lost its connection (${e.message}); starting it again from its checkpoint (attempt ${n} of ${MoveRun.RETRIES})`);
      await sleep(200 * 2 ** (n - 1), this.stopCtrl.signal);
      if (this.stopCtrl.signal.aborted || this.closed) return;
      try {
        await this.openStream(label, this.streams.get(label)?.appliedGtid() ?? '');
        if (this.state === 'paused') await this.streams.get(label)!.pause();
        return;
      } catch (again) {
        e = again as Error;
        if (transient(e) && n < MoveRun.RETRIES) return this.onStreamEnd(label, e);
      }
    }
    this.error = e.message;
    this.failure ??= e;
    this.stopWhy ??= 'failed';
    this.stopCtrl.abort();
  }

  private failure: Error | undefined;
  private closed = false;

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.offInterrupt?.();
    this.pauseGate?.open();
    await Promise.all([...this.streams.values()].map((s) => s.stop()));
    forgetDdl(this.move.name);
    await this.throttle?.close().catch(() => undefined);
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
  }

  private async openThrottle(): Promise<{ gate(signal?: AbortSignal): Promise<void>; close(): Promise<void> }> {
    const t = this.o.throttle;
    const ref = this.move.target;
    if (ref.cluster !== undefined || ref.zone !== undefined) {
      const node = ref.node!;
      const topo = await this.ctx.topology();
      const ct = await throttlerFor(this.ctx, node.cluster, topo.zonesOf(node.cluster), t);
      return { gate: (s) => ct.throttler.gate(s), close: () => ct.close() };
    }
    // a target by DSN: no zones to read lag in; the load limits are read at the target
    const signals: ThrottleSignal[] = [];
    const probes: Db[] = [];
    if (t.maxLagMs !== undefined) this.ctx.log.warn(`dbus ${this.move.name}: --max-lag reads a cluster's replicas and DRC; the target ${ref.label} is given by DSN, so it has none to read`);
    for (const [spec, critical] of [[t.maxLoad, false], [t.criticalLoad, true]] as const) {
      if (!spec) continue;
      const db = await connect(this.targetEndpoint);
      probes.push(db);
      signals.push(loadSignal([{ label: ref.label, db, reopen: () => connect(this.targetEndpoint) }], parseLoadSpec(spec), critical));
    }
    if (t.throttleFlagFile) signals.push(flagFileSignal(t.throttleFlagFile));
    if (t.pauseWindows) signals.push(windowSignal(t.pauseWindows));
    const th = new Throttler(signals, t.intervalMs === undefined ? {} : { intervalMs: t.intervalMs });
    th.start();
    return {
      gate: (s) => th.gate(s),
      close: async () => {
        await th.stop();
        await Promise.all(probes.map((d) => d.close().catch(() => undefined)));
      },
    };
  }

  private async gate(): Promise<void> {
    for (;;) {
      if (this.stopCtrl.signal.aborted) throw new Error('stopped');
      if (this.pauseGate) {
        await Promise.race([this.pauseGate.wait, sleep(1000, this.stopCtrl.signal)]);
        continue;
      }
      await this.throttle?.gate(this.stopCtrl.signal);
      if (!this.pauseGate) return;
    }
  }

  async pause(): Promise<void> {
    if (this.state === 'paused' || this.stopCtrl.signal.aborted) return;
    let open!: () => void;
    const wait = new Promise<void>((r) => (open = r));
    this.pauseGate = { wait, open };
    this.resumeTo = this.state;
    for (const s of this.streams.values()) await s.pause();
    for (const s of this.streams.keys()) this.pausedAt.set(s, Date.now());
    this.setState('paused');
    this.ctx.log.info(`dbus ${this.move.name}: paused (the copy and the apply stop; the positions are kept on the target)`);
  }

  private resumeTo: DbusState = 'copying';

  async resume(): Promise<void> {
    if (this.state !== 'paused') return;
    for (const s of this.streams.values()) await s.resume();
    this.pausedAt.clear();
    const g = this.pauseGate;
    this.pauseGate = undefined;
    g?.open();
    this.setState(this.resumeTo);
    this.ctx.log.info(`dbus ${this.move.name}: resumed`);
  }

  async status(): Promise<DbusStatus> {
    const sources: DbusStatus['sources'] = [];
    for (const s of this.move.sources) {
      const st = this.streams.get(s.label);
      const row: DbusStatus['sources'][number] = { label: s.label, readGtid: st?.readGtid() ?? '', appliedGtid: st?.appliedGtid() ?? '', lagMs: st?.lagMs() ?? null };
      if (st && this.state === 'paused') {
        const w = await retentionWarning(this.sourceEndpoints.get(s.label)!, st.appliedGtid(), this.pausedAt.get(s.label) ?? Date.now()).catch(() => undefined);
        if (w) row.retentionWarning = w;
      }
      sources.push(row);
    }
    return {
      name: this.move.name,
      jobId: this.job.id,
      holder: `${hostname()}:${process.pid}`,
      state: this.state,
      sources,
      tables: this.tables.map((t) => ({ target: `${t.mapping.target.schema}.${t.mapping.target.table}`, copiedRows: t.copiedRows, estimatedRows: t.estimatedRows, copyDone: t.copyDone })),
      ...(await this.conflicts()),
      error: this.error,
    };
  }

  /** The move's recorded collisions (only a merge with UNIQUE keys records any). */
  private async conflicts(): Promise<Pick<DbusStatus, 'conflicts' | 'lastConflict'>> {
    if (!this.plan.mappings.some((m) => m.uniqueKeys?.length)) return { conflicts: 0 };
    const db = await connect(this.targetEndpoint);
    try {
      const c = await conflictSummary(db, this.move.name);
      return { conflicts: c.count, lastConflict: c.last };
    } finally {
      await db.close();
    }
  }

  /**
   * The plain secondary indexes the target tables went without during the copy (DbusPlan.laterIndexes),
   * each table's in one online ALTER (LOCK=NONE: the streams apply beside it), one table at a time
   * on a session of their own, started as soon as every source table copied into that target table
   * is done: the build of one table runs while the next table copies (one ALTER keeps one of the
   * target's cores busy), not all of them after the last copy. A run killed during it builds those
   * still missing on --resume.
   */
  private readonly indexBuilds = new IndexBuildQueue(async (t) => {
    if (this.stopCtrl.signal.aborted) return;
    const db = await this.indexSession();
    const missing = await missingIndexes(db, t.schema, t.table, t.indexes);
    if (!missing.length) return;
    await this.gate();
    const names = missing.map((ix) => ix.name).join(', ');
    const t0 = Date.now();
    this.ctx.log.info(`dbus ${this.move.name}: ${t.target}: building index ${names} (copied without it; online, the streams go on)`);
    // bounded: a session holding the table's metadata lock (a reader of the target) would hold it up
    await withLockWait(db, { seconds: 30, schema: t.schema, tables: [t.table], what: `dbus ${this.move.name}: building index ${names} on ${t.target}`, fix: 'or end that session; `dbus start --resume` builds what is missing' }, () =>
      addIndexes(db, t.schema, t.table, missing),
    );
    this.ctx.log.info(`dbus ${this.move.name}: ${t.target}: index ${names} built in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  });

  private indexDb: Db | undefined;

  private async indexSession(): Promise<Db> {
    this.indexDb ??= await connect(this.targetEndpoint);
    return this.indexDb;
  }

  /** Queue the index builds of the target tables whose every source table has now been copied. */
  private queueIndexBuildsAfter(copied: DbusMapping): void {
    for (const t of this.plan.laterIndexes) {
      if (t.schema !== copied.target.schema || t.table !== copied.target.table) continue;
      const into = this.tables.filter((x) => x.mapping.target.schema === t.schema && x.mapping.target.table === t.table);
      if (into.every((x) => x.copyDone)) this.indexBuilds.queue(t);
    }
  }

  /**
   * Every table not copied yet, one after another, chunk by chunk: between servers several chunks
   * at once (copyThreads, each on its own pair of sessions, every one a shared turn of the stream:
   * never beside a batch), the frontier saved after each chunk on a session of its own.
   */
  private async copyAll(kept: Map<string, ApplyState>): Promise<void> {
    const chunkMs = this.o.chunkTimeMs ?? DEFAULT_CHUNK_TIME_MS;
    for (const t of this.tables) {
      if (t.copyDone) continue;
      const m = t.mapping;
      const label = m.label;
      const stream = this.streams.get(label)!;
      const name = streamName(this.move.name, label);
      const srcEp = this.sourceEndpoints.get(label)!;
      const same = this.plan.sameServer.includes(label);
      const threads = same ? 1 : (this.o.copyThreads ?? DBUS_COPY_THREADS);
      // src: the shape, the key's bounds and the chunker's boundaries; dst: the frontier
      const src = await connect(srcEp);
      const dst = await connect(this.targetEndpoint);
      const sessions: Array<{ src: Db; dst: Db }> = [];
      try {
        for (let i = 0; i < threads; i++) {
          const s = { src: await connect(srcEp), dst: await connect(this.targetEndpoint) };
          sessions.push(s);
          await s.dst.exec('SET SESSION foreign_key_checks = 0');
          await admitApplier(s.dst, this.move.name); // a target fenced by a rolled-back cut-over (fence.ts)
        }
        const shape = await readShape(src, m.source.schema, m.source.table);
        const rk = shape && rowKey(shape);
        if (!shape || !rk) throw runtimeError(`source ${label}: ${m.source.schema}.${m.source.table} is gone or has no key any more`);
        const col = shape.columns.find((c) => c.name === rk.columns[0]);
        const key: ChunkKey = { index: rk.index, columns: rk.columns, integer: rk.columns.length === 1 && !!col && /int$/.test(col.dataType) };
        // the mapping's own fields first: a rule the merge part adds to TableMapping and CopySpec alike reaches the copy
        const spec: CopySpec = { ...(m as unknown as Partial<CopySpec>), source: { schema: m.source.schema, table: m.source.table, key }, target: m.target, columns: m.columns };
        const at = kept.get(label)!.copied.get(`${m.source.schema}.${m.source.table}`) as KeyValue | undefined;
        const opts: ConstructorParameters<typeof Chunker>[4] = { targetMs: chunkMs };
        if (at) opts.after = key.integer ? [BigInt(String(at[0]))] : at;
        if (key.integer) {
          const b = await src.one<{ lo: string | null; hi: string | null }>(`SELECT CAST(MIN(${quoteId(key.columns[0]!)}) AS CHAR) AS lo, CAST(MAX(${quoteId(key.columns[0]!)}) AS CHAR) AS hi FROM ${quoteTable(m.source.schema, m.source.table)}`);
          opts.numericMin = b?.lo ? BigInt(b.lo) : null;
          opts.numericMax = b?.hi ? BigInt(b.hi) : null;
        }
        const chunker = new Chunker(src, m.source.schema, m.source.table, key, opts);
        if (at) this.ctx.log.info(`dbus ${this.move.name}: ${label}:${m.source.schema}.${m.source.table}: resuming the copy after key ${at.map(String).join(',')}`);
        await runCopyLoop({
          chunker,
          sessions,
          after: opts.after,
          signal: this.stopCtrl.signal,
          throttle: { gate: () => this.gate() },
          check: () => {
            if (this.stopCtrl.signal.aborted) throw new Error('stopped');
          },
          copyChunk: async (s, chunk) => (await this.restarting.get(label), this.streams.get(label) ?? stream).shared(async () => {
            if (m.uniqueKeys?.length) {
              // a merge with UNIQUE keys: rows colliding with another source's are recorded, never written
              return retryOnLockConflict(() => copyChunkBetween(s.src, s.dst, spec, chunkWhere(spec, chunk), {
                beforeWrite: async (db, rows) => {
                  const split = await splitCollisions(db, m, rows, 'skip');
                  for (const c of split.collisions) await recordConflict(db, this.move.name, this.plan.mappings, c);
                  return split.write;
                },
              }));
            }
            // the chunk's locking read can be a deadlock's victim beside the source's own writers
            // (they lock rows in any order): read again, as a batch is applied again
            if (!same) return retryOnLockConflict(() => copyChunkBetween(s.src, s.dst, spec, chunkWhere(spec, chunk)));
            const q = insertSelectSql(spec, chunkWhere(spec, chunk), { keepExisting: true, lockInShareMode: true });
            return (await s.dst.exec(q.sql, q.params)).affectedRows;
          }),
          onChunk: (rows) => {
            t.copiedRows += rows;
            this.flush();
          },
          checkpointMs: 0,
          checkpoint: async (after, done) => {
            await saveCopyFrontier(dst, name, m.source, after, done);
            if (done) t.copyDone = true;
            this.flush();
          },
        });
        t.copyDone = true;
        this.ctx.log.info(`dbus ${this.move.name}: ${label}:${m.source.schema}.${m.source.table} -> ${m.target.schema}.${m.target.table}: copied (${t.copiedRows} rows this run${threads > 1 ? `, ${threads} threads` : ''})`);
        this.queueIndexBuildsAfter(m);
      } finally {
        await Promise.all([src, dst, ...sessions.flatMap((x) => [x.src, x.dst])].map((d) => d.close().catch(() => undefined)));
      }
    }
  }
}

/** End a move's state on its target: the checkpoints go; the target tables are dropped or listed as kept. */
export async function abortState(target: Endpoint, move: DbusMove, drop: boolean): Promise<{ dropped: string[]; kept: string[] }> {
  const db = await connect(target);
  try {
    await ensureApplyCheckpoint(db);
    for (const s of move.sources) await clearApplyState(db, streamName(move.name, s.label));
    await clearDdlRecords(db, move.name);
    const names = move.tables.map((t) => t.target);
    if (!drop) return { dropped: [], kept: names.map((t) => `${t.schema}.${t.table}`) };
    for (const t of names) await db.exec(`DROP TABLE IF EXISTS ${quoteTable(t.schema, t.table)}`);
    return { dropped: names.map((t) => `${t.schema}.${t.table}`), kept: [] };
  } finally {
    await db.close();
  }
}


type LaterIndexes = DbusPlan['laterIndexes'][number];

/**
 * Index builds one at a time, in the order queued, each target table once; the first failure is
 * kept and thrown by done() (the builds queued after it are not started).
 */
export class IndexBuildQueue {
  private chain: Promise<void> = Promise.resolve();
  private readonly queued = new Set<string>();
  private failure: { error: unknown } | undefined;

  constructor(private readonly build: (t: LaterIndexes) => Promise<void>) {}

  queue(t: LaterIndexes): void {
    const key = `${t.schema}.${t.table}`;
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.chain = this.chain.then(async () => {
      if (this.failure) return;
      try {
        await this.build(t);
      } catch (e) {
        this.failure = { error: e };
      }
    });
  }

  /** Every build queued so far has ended (failures kept for done()). */
  async settle(): Promise<void> {
    await this.chain;
  }

  /** Every build queued has ended; the first failure thrown. */
  async done(): Promise<void> {
    await this.chain;
    if (this.failure) throw this.failure.error;
  }
}
