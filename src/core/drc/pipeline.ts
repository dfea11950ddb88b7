// One direction of DRC (zone A's master → zone B's master): read A's binlog from the checkpoint
// kept at B, keep A's own transactions, apply them at B in batches, and start over from the
// checkpoint after any failure. A transaction B refuses stops this direction only.
import type { Logger } from '../ui/log.js';
import type { ResolvedNode } from '../config/load.js';
import type { TableMatcher } from '../config/patterns.js';
import { connect, type Db, type Endpoint } from '../db/connect.js';
import { serverInfo, type ServerInfo } from '../db/server.js';
import { quoteTable } from '../db/quote.js';
import { describeAddress } from '../config/dsn.js';
import { ensureStateSchema, STATE_SCHEMA } from '../state/schema.js';
import { BinlogStream, type BinlogTx } from '../binlog/stream.js';
import { SourcePosition } from '../binlog/position.js';
import { Applier, ApplyError, isRetryable, type ApplierConfig, type QueuedTx, type BatchResult, type LockRetryReason } from './apply.js';
import { CHECKPOINT_TABLE, hasOwnDdlMarker } from '../cluster/tables.js';
import { namesHelperTable } from '../cluster/helper-tables.js';
import { drcDomainFor } from '../cluster/session.js';
import { EventSummary, kindCounts, SUMMARY_INTERVAL_MS } from './log-summary.js';
import { parseRoutesDoc, readRoutesAt, ROUTES_LOG_TABLE, ROUTES_TABLE, type Routes } from '../routes/index.js';
import { effectiveRoutes, routesFromChange, type RoutesBoard } from './routes-judge.js';
import { formatDuration } from '../throttle/duration.js';
import type { PipelineState, PipelineStatus, StoppedOn } from './client.js';

export interface PipelineOptions {
  cluster: string;
  from: string;
  to: string;
  source: () => ResolvedNode;
  target: () => ResolvedNode;
  endpoint: (n: ResolvedNode) => Promise<Endpoint>;
  connectTimeoutMs: number;
  rules: TableMatcher;
  applier: Omit<ApplierConfig, 'pipeline' | 'sourceZone' | 'targetZone'>;
  replicateDdl: boolean;
  skipErrors: boolean;
  heartbeatIntervalMs: number;
  log: Logger;
  /** GTID domain = source domain + this, for what DRC writes (MariaDB) */
  drcDomainOffset: number;
  /** the daemon's record of the routing table versions seen in any zone (a version a zone missed judges its writes) */
  routesBoard?: RoutesBoard;
  onBatch?: (p: Pipeline, r: BatchResult) => void;
}

const MAX_BATCH_TX = 2000;
const MAX_BATCH_ROWS = 8000;
const QUEUE_PAUSE_ROWS = 20_000;
const QUEUE_RESUME_ROWS = 5_000;
const WATCHDOG_MS = 15_000;
/** a direction running this long with nothing left to apply has recovered from its last error */
const RECOVERED_IDLE_MS = 2_000;
/**
 * Own transactions that were filtered out (\`_ezctl\` rows: the routing table, job journals) move
 * the checkpoint once nothing has been applied for this long: one checkpoint write per idle spell,
 * not one per filtered transaction. It was 1 s: a zone switch whose source's last write before its
 * block was such a row (the blocked route it publishes there) drained in 981 ms instead of 3 ms.
 */
const OWN_ADVANCE_IDLE_MS = 50;
/** how long a failed session waits for its apply loop to finish a batch before dropping the connection */
const LOOP_DRAIN_MS = 30_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Where to resume reading a MariaDB source: its own domain from the checkpoint, every other
 * domain from where the source is now. Other domains are DRC's own writes and get dropped
 * anyway; starting them at the source's current position spares re-reading them, and keeps a
 * new master (after a switch) from refusing GTIDs only the old one had.
 */
export function resumePosition(checkpoint: string, sourceNow: string, ownDomain: number): string {
  const cp = new SourcePosition('mariadb', checkpoint);
  const now = new SourcePosition('mariadb', sourceNow);
  const parts: string[] = [];
  const own = cp.entry(ownDomain);
  if (own) parts.push(own);
  for (const d of now.domains()) if (d !== ownDomain) parts.push(now.entry(d)!);
  return parts.join(',');
}

function hash32(s: string): number {
  let h = 2166136261;
  for (const ch of s) h = Math.imul(h ^ ch.charCodeAt(0), 16777619);
  return h >>> 0;
}

class Restart extends Error {}

/**
 * What one connection to both ends owns. A failed session's apply loop may still be finishing
 * a batch when the next session starts: it must never see the next session's queue.
 */
interface Session {
  active: boolean;
  queue: QueuedTx[];
  queueRows: number;
  wake: (() => void) | undefined;
  stream: BinlogStream | undefined;
  streamPaused: boolean;
  readPos: SourcePosition;
  pendingOwnAdvance: { position: string; gtid: string; routesVersion: number } | undefined;
  /** the routing table at the read position of the source's binlog (the checkpoint's version, else its row at the session start; then its changes in the stream) */
  routes: Routes;
  /**
   * Started from the checkpoint's older version: the source's row at the session start applies once
   * the reader reaches the position it was read at (a version the replay does not show, e.g.
   * written under another GTID domain, is not missed for good).
   */
  floor: { routes: Routes; at: SourcePosition } | undefined;
}

export class Pipeline {
  readonly id: string;
  state: PipelineState = 'starting';
  private stopping = false;
  private paused = false;
  private cur: Session | undefined;
  private abortSession: ((e: Error) => void) | undefined;
  private resumeError: (() => void) | undefined;
  private appliedPos: string | null = null;
  private lastError: { message: string; at: Date; stoppedOn?: StoppedOn } | undefined;
  /**
   * A checkpoint to write before the next session reads it (after a failover, the new master's
   * position in place of one the new master never had), only when that session's source is the
   * server named: a session still pointed at the old master never takes it.
   */
  private override: { position: string; source: string; done: Array<() => void> } | undefined;
  /** when the current session reached 'running' (or 'paused') */
  private runningSince = 0;
  private done: Promise<void> | undefined;
  /** the routes the last transaction read was judged by (status) */
  private judging: { version: number; missed: boolean } | null = null;
  // statistics
  appliedTx = 0;
  appliedRows = 0;
  conflicts = 0;
  /** lock conflicts (a peer zone's applier or the zone's own writers on the same rows) retried in place */
  retries = { deadlock: 0, lockWait: 0, rowAppeared: 0 };
  private lastRetryAt: Date | null = null;

  private countRetry(why: LockRetryReason): void {
    this.retries[why]++;
    this.lastRetryAt = new Date();
  }
  illegalWrites = 0;
  ddlSeen = 0;
  droppedTx = 0;
  private lagSamples: Array<{ at: number; ms: number }> = [];
  private lastHeartbeatWrittenAt: number | undefined;
  private rateSamples: Array<{ at: number; tx: number; rows: number }> = [];
  // illegal writes and conflicts: a line per table per interval, not a line each
  private readonly illegalLog: EventSummary;
  private readonly conflictLog: EventSummary;
  private summaryTimer: NodeJS.Timeout | undefined;
  /**
   * Settles once the first session has read its source's position (where a direction without a
   * checkpoint starts), or has failed before it could: the daemon answers on its socket only after
   * that, so a write made once `drc start` has returned is read.
   */
  readonly positioned: Promise<void>;
  private settlePositioned!: () => void;
  /**
   * The source's position when this direction first read it, and from which server: a direction
   * with no checkpoint starts there, however many sessions it takes to write its first checkpoint
   * (a session that read the position and then failed, e.g. on the target, used to leave the next
   * one to read a later position: what was written in between was never read).
   */
  private firstSourcePosition: { position: string; source: string } | undefined;

  constructor(readonly o: PipelineOptions) {
    this.id = `${o.cluster}:${o.from}->${o.to}`;
    this.positioned = new Promise<void>((r) => (this.settlePositioned = r));
    this.illegalLog = new EventSummary((table, n, kinds, sample, ms) =>
      o.log.warn(`${this.id}: ${n} illegal write${n === 1 ? '' : 's'} at ${o.from} to ${table} in the last ${formatDuration(ms)} (${kindCounts(kinds)}); e.g. ${sample}`));
    this.conflictLog = new EventSummary((table, n, kinds, sample, ms) =>
      o.log.info(`${this.id}: ${n} conflict${n === 1 ? '' : 's'} on ${table} in the last ${formatDuration(ms)} (${kindCounts(kinds)}); e.g. ${sample}`));
  }

  start(): void {
    this.summaryTimer ??= setInterval(() => this.flushSummaries(), SUMMARY_INTERVAL_MS);
    this.summaryTimer.unref();
    this.done ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.cur?.wake?.();
    this.resumeError?.();
    await this.done;
    this.state = 'stopped';
    clearInterval(this.summaryTimer);
    this.flushSummaries();
  }

  private flushSummaries(): void {
    this.illegalLog.flush();
    this.conflictLog.flush();
  }

  pause(): void {
    this.paused = true;
    if (this.state === 'running') this.state = 'paused';
  }

  resume(): void {
    this.paused = false;
    if (this.state === 'paused') this.state = 'running';
    this.cur?.wake?.();
    this.resumeError?.(); // a direction stopped by an error tries again
  }

  /** Reconnect both ends (after a repoint): the session ends and a new one starts from the checkpoint. */
  restart(): void {
    this.abortSession?.(new Restart('restart'));
    // waiting to retry an unreachable master: try the (new) one now, not after the backoff
    if (this.state === 'retrying') this.resumeError?.();
  }

  /**
   * Set this direction's checkpoint to `position` at the start of the next session whose source is
   * `source` (host:port): written under the direction's lock, before the checkpoint is read, so the
   * session resumes from it. A direction stopped as diverged tries again. Resolves once written.
   */
  setCheckpoint(position: string, source: string): Promise<void> {
    const prev = this.override?.done ?? [];
    return new Promise<void>((resolve) => {
      this.override = { position, source, done: [...prev, resolve] };
      this.abortSession?.(new Restart('a checkpoint was set'));
      if (this.state === 'retrying' || this.state === 'error') this.resumeError?.();
    });
  }

  /** The checkpoint waiting for a session from its source, if any (status). */
  get pendingCheckpoint(): { position: string; source: string } | null {
    return this.override ? { position: this.override.position, source: this.override.source } : null;
  }

  private async run(): Promise<void> {
    let backoff = 500;
    while (!this.stopping) {
      try {
        await this.session();
        backoff = 500;
      } catch (e) {
        this.settlePositioned();
        if (this.stopping) break;
        if (e instanceof Restart) {
          this.o.log.info(`${this.id}: reconnecting (${e.message})`);
          continue;
        }
        const err = e as Error;
        this.lastError = { message: err.message, at: new Date() };
        if (e instanceof ApplyError) {
          this.lastError.stoppedOn = e.stoppedOn;
          this.state = 'error';
          this.o.log.error(`${this.id}: stopped: ${err.message}`);
          this.o.log.error(`${this.id}: fix the cause, then \`ezctl drc resume\` (or restart with --skip-errors to skip it)`);
          await new Promise<void>((r) => (this.resumeError = r));
          this.resumeError = undefined;
          continue;
        }
        this.state = 'retrying';
        this.o.log.warn(`${this.id}: ${err.message}; retrying in ${(backoff / 1000).toFixed(1)} s`);
        await Promise.race([sleep(backoff), new Promise<void>((r) => (this.resumeError = r))]);
        this.resumeError = undefined;
        backoff = Math.min(30_000, backoff * 2);
      }
    }
    this.state = 'stopped';
    this.settlePositioned();
  }

  private async session(): Promise<void> {
    this.state = this.state === 'error' ? 'error' : 'starting';
    const sourceNode = this.o.source();
    const targetNode = this.o.target();
    // A fenced node (an old master after a failover) must never take writes again nor be read
    // as a zone's master: nothing is sent to it, not even a connection.
    for (const [n, role] of [[sourceNode, 'read from'], [targetNode, 'written to']] as const) {
      if (n.fenced) throw new Error(`${n.name} (${describeAddress(n)}) is fenced in the topology file (zone ${n.zone}): DRC never ${role === 'read from' ? 'reads from' : 'writes to'} a fenced node; point the zone at its new master (ezctl drc repoint), or rejoin the node (ezctl emha rejoin)`);
    }
    const sourceEp = await this.o.endpoint(sourceNode);
    const targetEp = await this.o.endpoint(targetNode);
    let target: Db | undefined;
    let stream: BinlogStream | undefined;
    let sess: Session | undefined;
    let loop: Promise<void> | undefined;
    let sessionError: ((e: Error) => void) | undefined;
    const failed = new Promise<never>((_, reject) => (sessionError = reject));
    failed.catch(() => undefined);
    this.abortSession = (e) => sessionError!(e);
    try {
      const src = await connect(sourceEp, { timeoutMs: this.o.connectTimeoutMs });
      let info: ServerInfo;
      let sourceRoutes: Routes | undefined;
      try {
        // the row first, then the position: a version published in between is in the stream after it
        sourceRoutes = await this.readRoutesRow(src, this.o.from);
        info = await serverInfo(src);
      } finally {
        await src.close();
      }
      const sourceKey = `${sourceNode.host}:${sourceNode.port}`;
      if (this.firstSourcePosition?.source !== sourceKey) this.firstSourcePosition = { position: info.gtidBinlogPos, source: sourceKey };
      this.settlePositioned();
      if (info.binlogFormat !== 'ROW' || !info.logBin) {
        throw new ApplyError(`${sourceNode.name} (${describeAddress(sourceNode)}) must run with log_bin and binlog_format=ROW (it has ${info.logBin ? info.binlogFormat : 'log_bin=OFF'})`, '', null, null, 'source-binlog');
      }
      const ownDomain = info.flavor === 'mariadb' ? info.gtidDomainId ?? 0 : undefined;
      const drcDomain = drcDomainFor(ownDomain, this.o.drcDomainOffset);
      target = await connect(targetEp, { timeoutMs: this.o.connectTimeoutMs });
      target.conn.on('error', (e: Error) => sessionError!(e));
      await Applier.prepareSession(target, drcDomain);
      await ensureStateSchema(target);
      // a version the source missed (published while it was down) may be at the target only
      const targetRoutes = await this.readRoutesRow(target, this.o.to);
      if (targetRoutes) this.o.routesBoard?.seen(targetRoutes);
      if (sourceRoutes) this.o.routesBoard?.seen(sourceRoutes);
      // One applier per direction, whatever host runs it: the lock lives as long as this session.
      // a previous session's connection may take a moment to be gone on the server
      const got = await target.value<number | string>('SELECT GET_LOCK(?, 5)', [`ezctl-drc:${this.id}`.slice(0, 64)]);
      if (Number(got) !== 1) throw new Error(`another DRC daemon is applying ${this.id} at ${describeAddress(targetNode)} (its lock is held)`);
      const applier = new Applier({ ...this.o.applier, pipeline: this.id, sourceZone: this.o.from, targetZone: this.o.to, onLockRetry: (why) => this.countRetry(why) }, target);
      const ov = this.override;
      if (ov && ov.source === `${sourceNode.host}:${sourceNode.port}`) {
        const before = await target.one<{ p: string }>(`SELECT source_position AS p FROM ${quoteTable(STATE_SCHEMA, CHECKPOINT_TABLE)} WHERE pipeline = ?`, [this.id]);
        await applier.advance(ov.position, '');
        this.o.log.warn(`${this.id}: checkpoint set to ${ov.position} (was ${before?.p ?? 'none'}), for ${sourceNode.name} (${describeAddress(sourceNode)})`);
        if (this.override === ov) this.override = undefined;
        for (const d of ov.done) d();
      }
      const cp = await target.one<{ p: string; rv: number | string | null }>(`SELECT source_position AS p, routes_version AS rv FROM ${quoteTable(STATE_SCHEMA, CHECKPOINT_TABLE)} WHERE pipeline = ?`, [this.id]);
      let start: string;
      const current = sourceRoutes ?? this.o.applier.fileRoutes;
      let routes = current;
      let floor: Session['floor'];
      if (cp) {
        start = ownDomain === undefined ? cp.p : resumePosition(cp.p, info.gtidBinlogPos, ownDomain);
        // the routing table where the checkpoint is: the transactions read from there are judged as they were committed
        const then = ownDomain === undefined || cp.rv === null || cp.rv === undefined ? undefined : await this.routesVersionAt(sourceEp, Number(cp.rv), current);
        if (then) {
          routes = then;
          floor = { routes: current, at: new SourcePosition(info.flavor, info.gtidBinlogPos) };
        }
      } else {
        start = this.firstSourcePosition.position;
        await applier.advance(start, '', current.version);
        this.o.log.info(`${this.id}: no checkpoint yet: starting at ${sourceNode.name}'s position when this direction first read it, ${start || '(empty)'}`);
      }
      // from here the checkpoint says where to start
      this.firstSourcePosition = undefined;
      this.appliedPos = start;
      sess = {
        active: true, queue: [], queueRows: 0, wake: undefined, stream: undefined, streamPaused: false, readPos: new SourcePosition(info.flavor, start), pendingOwnAdvance: undefined,
        routes, floor,
      };
      this.passFloor(sess);
      const eff = effectiveRoutes(sess.routes, this.o.routesBoard, this.o.from);
      this.judging = { version: eff.routes.version, missed: eff.missed };
      if (eff.routes.version > 0) this.o.log.debug(`${this.id}: judging ${this.o.from}'s writes by routing table version ${eff.routes.version}${eff.missed ? ` (published while ${this.o.from} was down)` : ''}`);
      this.cur = sess;
      const session = sess;
      const skipBelow = new SourcePosition(info.flavor, start);
      const diverged = (e: unknown) => {
        const m = (e as Error).message ?? '';
        // The source lacks a transaction of its own domain that DRC already carried: written to
        // an old master after the new one stopped replicating. Retrying cannot cure that.
        if (/not in the master's binlog|has diverged/i.test(m)) {
          return new ApplyError(
            `${sourceNode.name} (${describeAddress(sourceNode)}) does not have ${start.split(',').find((g) => ownDomain !== undefined && g.startsWith(`${ownDomain}-`)) ?? start}, which DRC already applied in zone ${this.o.to}: ` +
              `it was written to zone ${this.o.from}'s old master after the new one stopped replicating from it. Reconcile those rows (ezctl check), then set this direction's checkpoint (${STATE_SCHEMA}.${CHECKPOINT_TABLE}, pipeline '${this.id}', at zone ${this.o.to}) to the new master's position and resume`,
            '', null, e, 'diverged',
          );
        }
        return e;
      };
      stream = new BinlogStream({
        endpoint: sourceEp,
        flavor: info.flavor,
        from: start,
        serverId: 1_000_000_000 + (hash32(this.id) % 1_000_000_000),
        connectTimeoutMs: this.o.connectTimeoutMs,
        // rows of tables not replicated (a schema change's ghost copy, excluded tables) are not
        // decoded; the checkpoint's row marks DRC's own transactions
        decodeTable: (schema, table) => this.o.rules(schema, table) || (schema === STATE_SCHEMA && (table === CHECKPOINT_TABLE || table === ROUTES_TABLE)),
        onTx: (tx) => this.onTx(session, tx, ownDomain, skipBelow),
        onError: (e) => sessionError!(diverged(new Error(`binlog of ${sourceNode.name} (${describeAddress(sourceNode)}): ${e.message}`)) as Error),
      });
      session.stream = stream;
      try {
        await Promise.race([stream.start(), failed]);
      } catch (e) {
        throw diverged(e);
      }
      this.state = this.paused ? 'paused' : 'running';
      this.runningSince = Date.now();
      if (this.lastError) this.o.log.info(`${this.id}: running again from ${start}`);
      this.o.log.debug(`${this.id}: reading ${sourceNode.name} from ${start}, applying to ${targetNode.name}`);
      loop = this.applyLoop(session, applier);
      await Promise.race([loop, failed]);
    } finally {
      this.abortSession = undefined;
      if (sess) {
        sess.active = false;
        sess.wake?.();
      }
      await stream?.stop();
      // The apply loop may be in the middle of a batch on the target connection. Let it finish
      // (it stops at its next check; a batch commits or rolls back whole), then drop the
      // connection without a word: a ROLLBACK sent now could land between its statements and
      // leave the rest running in autocommit, the checkpoint without its rows.
      if (loop) await Promise.race([loop.catch(() => undefined), sleep(LOOP_DRAIN_MS)]);
      target?.conn.destroy();
    }
  }

  /** The cluster's routing table row at a zone master; undefined when there is none (version 0: the file), or it does not parse (said in the log). */
  private async readRoutesRow(db: Db, where: string): Promise<Routes | undefined> {
    try {
      return (await readRoutesAt(db, this.o.cluster)) ?? undefined;
    } catch (e) {
      if (isRetryable(e)) throw e;
      this.o.log.warn(`${this.id}: the routing table at ${where} cannot be read (${(e as Error).message}): judging by what the stream and the other zones give`);
      return undefined;
    }
  }

  /**
   * The routing table of version `version` (the checkpoint's) from the source's audit log, when it
   * is older than the source's current one; undefined: judge by the current one (the same version,
   * or the log does not have it: said in the log).
   */
  private async routesVersionAt(ep: Endpoint, version: number, current: Routes): Promise<Routes | undefined> {
    if (!Number.isSafeInteger(version) || version >= current.version) return undefined;
    if (version === 0) return this.o.applier.fileRoutes;
    let db: Db | undefined;
    try {
      db = await connect(ep, { timeoutMs: this.o.connectTimeoutMs });
      const r = await db.one<{ doc: string }>(`SELECT doc FROM ${quoteTable(STATE_SCHEMA, ROUTES_LOG_TABLE)} WHERE cluster = ? AND version = ?`, [this.o.cluster, version]);
      if (r) return parseRoutesDoc(String(r.doc), version);
      this.o.log.warn(`${this.id}: routing table version ${version} (the checkpoint's) is not in ${this.o.from}'s ${STATE_SCHEMA}.${ROUTES_LOG_TABLE}: judging from version ${current.version}`);
    } catch (e) {
      if (isRetryable(e)) throw e;
      this.o.log.warn(`${this.id}: routing table version ${version} (the checkpoint's) cannot be read at ${this.o.from} (${(e as Error).message}): judging from version ${current.version}`);
    } finally {
      await db?.close().catch(() => undefined);
    }
    return undefined;
  }

  /** Once the reader is where the source's row was read at the session start, that row applies. */
  private passFloor(sess: Session): void {
    const f = sess.floor;
    if (!f || !sess.readPos.reaches(f.at)) return;
    if (f.routes.version > sess.routes.version) sess.routes = f.routes;
    sess.floor = undefined;
  }

  /** Called for every transaction read, in order. Decides what is applied. */
  private onTx(sess: Session, tx: BinlogTx, ownDomain: number | undefined, skipBelow: SourcePosition): void {
    if (!sess.active) return;
    const pos = sess.readPos;
    if (skipBelow.covers(tx.gtid)) return; // a replay of something the checkpoint has
    pos.advance(tx.gtid);
    // the routing table as of this point of the source's binlog (any domain: its row is written there by gz, never by DRC)
    for (const c of tx.changes) {
      const r = routesFromChange(c, this.o.cluster);
      if (!r) continue;
      this.o.routesBoard?.seen(r);
      if (r.version > sess.routes.version) {
        sess.routes = r;
        this.o.log.info(`${this.id}: routing table version ${r.version} at ${this.o.from} (${tx.gtid}): ${this.o.from}'s writes from here on are judged by it`);
      }
    }
    this.passFloor(sess);
    const eff = effectiveRoutes(sess.routes, this.o.routesBoard, this.o.from);
    if (this.judging?.version !== eff.routes.version) {
      if (eff.missed) this.o.log.warn(`${this.id}: routing table version ${eff.routes.version} was published while ${this.o.from} was down: ${this.o.from}'s writes from here on are judged by it`);
      this.judging = { version: eff.routes.version, missed: eff.missed };
    }
    const own = ownDomain === undefined || tx.domain === ownDomain;
    // Loop avoidance: only the zone's own writes travel. DRC's writes carry DRC's domain, and
    // each one has the checkpoint as its first row (the marker that also covers MySQL).
    const marker = tx.changes.some((c) => c.schema === STATE_SCHEMA && c.table === CHECKPOINT_TABLE) || hasOwnDdlMarker(tx.statement?.query ?? '');
    if (!own || marker) {
      this.droppedTx++;
      return;
    }
    if (tx.statement) {
      this.ddlSeen++;
      const q = tx.statement.query.replace(/\s+/g, ' ').slice(0, 200);
      const helper = namesHelperTable(tx.statement.query);
      const why = helper ? ' [not replicated: a schema change\'s helper table, each zone has its own]' : this.o.replicateDdl ? '' : ' [not replicated: use ezctl osc, or --replicate-ddl]';
      this.o.log.info(`${this.id}: DDL at ${this.o.from} (${tx.gtid}, schema ${tx.statement.schema || '-'}): ${q}${why}`);
      if (!this.o.replicateDdl || helper) {
        sess.pendingOwnAdvance = { position: pos.toString(), gtid: tx.gtid, routesVersion: sess.routes.version };
        this.droppedTx++;
        return;
      }
    }
    const changes = tx.changes.filter((c) => this.o.rules(c.schema, c.table));
    if (changes.length === 0 && !(tx.statement && this.o.replicateDdl)) {
      sess.pendingOwnAdvance = { position: pos.toString(), gtid: tx.gtid, routesVersion: sess.routes.version };
      this.droppedTx++;
      return;
    }
    sess.pendingOwnAdvance = undefined;
    sess.queue.push({ tx: { ...tx, changes }, positionAfter: pos.toString(), routes: eff.routes, streamVersion: sess.routes.version });
    sess.queueRows += changes.length + 1;
    if (sess.queueRows > QUEUE_PAUSE_ROWS && !sess.streamPaused) {
      sess.streamPaused = true;
      sess.stream?.pause();
    }
    sess.wake?.();
  }

  private take(sess: Session): QueuedTx[] {
    const out: QueuedTx[] = [];
    let rows = 0;
    while (sess.queue.length && out.length < MAX_BATCH_TX) {
      const next = sess.queue[0]!;
      if (next.tx.statement) {
        if (out.length === 0) out.push(sess.queue.shift()!); // a DDL goes alone
        break;
      }
      if (out.length && rows + next.tx.changes.length > MAX_BATCH_ROWS) break;
      out.push(sess.queue.shift()!);
      rows += next.tx.changes.length;
    }
    for (const q of out) sess.queueRows -= q.tx.changes.length + 1;
    if (sess.streamPaused && sess.queueRows < QUEUE_RESUME_ROWS) {
      sess.streamPaused = false;
      sess.stream?.resume();
    }
    return out;
  }

  private async applyLoop(sess: Session, applier: Applier): Promise<void> {
    let idleSince = Date.now();
    const stream = sess.stream!;
    while (!this.stopping && sess.active) {
      if (this.paused) {
        await new Promise<void>((r) => {
          sess.wake = r;
          setTimeout(r, 500);
        });
        continue;
      }
      const batch = this.take(sess);
      if (batch.length === 0) {
        // nothing left to apply and nothing failed for a while: whatever failed before is behind us
        if (this.lastError && Date.now() - this.runningSince > RECOVERED_IDLE_MS) this.recovered();
        if (Date.now() - stream.lastEventAt > WATCHDOG_MS) {
          throw new Error(`no binlog events from ${this.o.from} for ${WATCHDOG_MS / 1000} s (heartbeats should arrive every ${this.o.heartbeatIntervalMs} ms)`);
        }
        // Own transactions that were filtered out still move the checkpoint (drc wait relies on it).
        if (sess.pendingOwnAdvance && Date.now() - idleSince >= OWN_ADVANCE_IDLE_MS) {
          const p = sess.pendingOwnAdvance;
          sess.pendingOwnAdvance = undefined;
          await applier.advance(p.position, p.gtid, p.routesVersion);
          this.appliedPos = p.position;
        }
        await new Promise<void>((r) => {
          sess.wake = r;
          setTimeout(r, sess.pendingOwnAdvance ? OWN_ADVANCE_IDLE_MS : 200);
        });
        sess.wake = undefined;
        continue;
      }
      idleSince = Date.now();
      if (batch.length === 1 && batch[0]!.tx.statement) {
        await this.applyStatement(applier, batch[0]!);
        this.recovered();
        continue;
      }
      let result: BatchResult;
      try {
        result = await applier.apply(batch, (q) => (this.appliedPos = q.positionAfter));
      } catch (e) {
        if (e instanceof ApplyError && this.o.skipErrors) {
          const bad = batch.find((q) => q.tx.gtid === e.gtid);
          if (bad) {
            this.o.log.error(`${this.id}: skipped ${e.gtid} (--skip-errors): ${e.message}`);
            await applier.skip(bad, e.message);
            // the transactions after it go back to the front of the queue
            const rest = batch.slice(batch.indexOf(bad) + 1);
            sess.queue.unshift(...rest);
            for (const q of rest) sess.queueRows += q.tx.changes.length + 1;
            this.appliedPos = bad.positionAfter;
            continue;
          }
        }
        if (e instanceof ApplyError && e.table) {
          const [s, t] = e.table.split('.');
          applier.forget(s!, t!);
        }
        throw e;
      }
      this.appliedPos = batch.at(-1)!.positionAfter;
      this.record(result);
      this.recovered();
    }
  }

  private async applyStatement(applier: Applier, q: QueuedTx): Promise<void> {
    const st = q.tx.statement!;
    try {
      await applier.execStatement(st.schema, st.query, this.o.from);
    } catch (e) {
      const code = (e as { code?: string }).code;
      // Already applied before a restart (a DDL cannot share a transaction with the checkpoint).
      const already = ['ER_TABLE_EXISTS_ERROR', 'ER_DUP_FIELDNAME', 'ER_DUP_KEYNAME', 'ER_CANT_DROP_FIELD_OR_KEY', 'ER_BAD_TABLE_ERROR', 'ER_DB_CREATE_EXISTS', 'ER_DB_DROP_EXISTS'];
      if (!code || !already.includes(code)) {
        if (isRetryable(e)) throw e;
        throw new ApplyError(`zone ${this.o.to} refused DDL ${q.tx.gtid}: ${(e as Error).message}`, q.tx.gtid, null, e, 'ddl-refused');
      }
    }
    await applier.advance(q.positionAfter, q.tx.gtid, q.streamVersion);
    this.appliedPos = q.positionAfter;
    this.appliedTx++;
  }

  /** The direction applies again: the last error is history (logged, and no longer in status). */
  private recovered(): void {
    if (!this.lastError) return;
    this.o.log.info(`${this.id}: recovered from the error of ${this.lastError.at.toISOString()} (${this.lastError.message})`);
    this.lastError = undefined;
  }

  private record(r: BatchResult): void {
    const now = Date.now();
    this.appliedTx += r.transactions;
    this.appliedRows += r.rows;
    this.conflicts += r.conflicts.length;
    this.illegalWrites += r.illegal.length;
    for (const c of r.conflicts) {
      this.conflictLog.add(`${c.schema}.${c.table}`, c.kind, () => `${JSON.stringify(c.key)}: ${c.kind}, source ${c.sourceTs ?? '-'} vs target ${c.targetTs ?? '-'}, ${c.winner} wins (${c.gtid})`);
    }
    for (const i of r.illegal) {
      this.illegalLog.add(`${i.schema}.${i.table}`, `${illegalKind(i.why, i.ownerZone)}${i.blocked ? ', not replicated' : ''}`, () => `${JSON.stringify(i.key)}: ${illegalText(i.why, i.shardId, i.ownerZone)}${i.routesVersion ? `, routes v${i.routesVersion}` : ''}${i.blocked ? ' (not replicated: --block-illegal)' : ''} (${i.gtid})`);
    }
    for (const w of r.heartbeatsWrittenAtMs) {
      this.lagSamples.push({ at: now, ms: Math.max(0, now - w) });
      this.lastHeartbeatWrittenAt = Math.max(this.lastHeartbeatWrittenAt ?? 0, w);
    }
    const cutoff = now - 60_000;
    while (this.lagSamples.length && this.lagSamples[0]!.at < cutoff) this.lagSamples.shift();
    this.o.onBatch?.(this, r);
  }

  /** Lag now: the last heartbeat's trip, or, when heartbeats stop arriving, the time since. */
  lagMs(now = Date.now()): number | null {
    const last = this.lagSamples.at(-1);
    if (!last || this.lastHeartbeatWrittenAt === undefined) return null;
    return Math.max(last.ms, now - this.lastHeartbeatWrittenAt - this.o.heartbeatIntervalMs);
  }

  p99LagMs(): number | null {
    if (this.lagSamples.length === 0) return null;
    const s = this.lagSamples.map((x) => x.ms).sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.floor(0.99 * s.length))]!;
  }

  status(): PipelineStatus {
    const now = Date.now();
    this.rateSamples.push({ at: now, tx: this.appliedTx, rows: this.appliedRows });
    while (this.rateSamples.length > 2 && this.rateSamples[0]!.at < now - 10_000) this.rateSamples.shift();
    const first = this.rateSamples[0]!;
    const secs = Math.max(0.001, (now - first.at) / 1000);
    return {
      from: this.o.from,
      to: this.o.to,
      state: this.state,
      source: `${this.o.source().name} ${describeAddress(this.o.source())}`,
      target: `${this.o.target().name} ${describeAddress(this.o.target())}`,
      lagMs: this.lagMs(now),
      p99LagMs: this.p99LagMs(),
      sourcePosition: this.cur?.readPos.toString() ?? null,
      appliedPosition: this.appliedPos,
      txPerSec: now - first.at < 500 ? 0 : (this.appliedTx - first.tx) / secs,
      rowsPerSec: now - first.at < 500 ? 0 : (this.appliedRows - first.rows) / secs,
      appliedTx: this.appliedTx,
      appliedRows: this.appliedRows,
      conflicts: this.conflicts,
      retries: { ...this.retries },
      lastRetryAt: this.lastRetryAt?.toISOString() ?? null,
      illegalWrites: this.illegalWrites,
      ddlSeen: this.ddlSeen,
      droppedTx: this.droppedTx,
      queue: this.cur?.active ? this.cur.queue.length : 0,
      lastError: this.lastError?.message ?? null,
      lastErrorAt: this.lastError?.at.toISOString() ?? null,
      stoppedOn: this.state === 'error' ? this.lastError?.stoppedOn ?? null : null,
      pendingCheckpoint: this.pendingCheckpoint,
      routesVersion: this.judging?.version ?? null,
      routesMissed: this.judging?.missed ?? false,
    };
  }
}

function illegalKind(why: string, owner: string | null): string {
  if (why === 'not-write-zone') return `not the write zone (${owner ?? 'none'})`;
  if (why === 'blocked') return 'blocked route';
  if (why === 'no-owner') return 'shards of no zone';
  return `shards of ${owner ?? 'no zone'}`;
}

function illegalText(why: string, shardId: number | null, owner: string | null): string {
  if (why === 'not-write-zone') return `the write zone is ${owner ?? 'none'}`;
  if (why === 'blocked') return shardId === null ? `writes are blocked (${owner} is switching)` : `shard ${shardId} is blocked (moving)`;
  if (why === 'no-owner') return `shard ${shardId ?? 'NULL'} belongs to no zone`;
  return `shard ${shardId ?? 'NULL'} belongs to ${owner ?? 'no zone'}`;
}
