// The DRC capability's public entry: what other capabilities, the CLI and the switches to come
// ask of DRC (status, pause, resume, stop, repoint, wait, lag), typed. Light on purpose: it talks
// to a daemon over its control socket and reads `_ezctl` at the zone masters, and never loads the
// daemon, its binlog reader or zongji (imports below are types or shared layers only).
import { join } from 'node:path';
import type { Ctx } from '../context.js';
import type { Topology } from '../config/load.js';
import { describeAddress } from '../config/dsn.js';
import { badInput, refused, runtimeError } from '../exit.js';
import { serverInfo } from '../db/server.js';
import { parseMariaPos, parseMysqlSet, mysqlCovers } from '../db/gtid.js';
import { quoteTable } from '../db/quote.js';
import { STATE_SCHEMA } from '../state/schema.js';
import { controlAlive, NO_ANSWER, socketPath } from '../control/socket.js';
import { command, jobKind, noJobAnswers, sendJob, type JobAddress } from '../control/commands.js';
import { CHECKPOINT_TABLE } from '../cluster/tables.js';
import { pidAlive } from '../process/pids.js';
import { measureDrcLagMs, type DrcLagPair } from '../throttle/signals.js';
import { drcDomainFor, writeAsDrc } from '../cluster/session.js';

export type PipelineState = 'starting' | 'running' | 'paused' | 'retrying' | 'error' | 'stopped';

/** Why a direction stopped (state 'error'), for a program to act on instead of matching text. */
export type StopReason =
  /** the table does not exist at the target */
  | 'no-table'
  /** the table has no primary key at the target */
  | 'no-primary-key'
  /** the table lacks the DRC timestamp column at the target (`column` names it): ezctl migrate drc-ts */
  | 'no-timestamp-column'
  /** the target refused a transaction (a constraint, a type, ...) */
  | 'refused'
  /** the target refused a replicated DDL */
  | 'ddl-refused'
  /** the source cannot be read (no ROW binlog) */
  | 'source-binlog'
  /** the source lacks a transaction DRC already applied (written to an old master) */
  | 'diverged';

export interface StoppedOn {
  reason: StopReason;
  /** schema.table, when the stop is about one */
  table: string | null;
  /** the column it lacks (no-timestamp-column) */
  column?: string;
  /** the transaction it stopped at ('' when none) */
  gtid: string;
}

export interface PipelineStatus {
  from: string;
  to: string;
  state: PipelineState;
  source: string;
  target: string;
  lagMs: number | null;
  p99LagMs: number | null;
  sourcePosition: string | null;
  appliedPosition: string | null;
  txPerSec: number;
  rowsPerSec: number;
  appliedTx: number;
  appliedRows: number;
  conflicts: number;
  /** deadlocks and lock wait timeouts met while applying, and rows inserted at the target between a batch's read and its write, each retried in place (since the daemon started) */
  retries?: { deadlock: number; lockWait: number; rowAppeared?: number };
  lastRetryAt?: string | null;
  illegalWrites: number;
  /** the routing table version this direction judges its source's writes by (0: the topology file; null: not started) */
  routesVersion?: number | null;
  /** that version was published while the source was down (its binlog does not have it) */
  routesMissed?: boolean;
  ddlSeen: number;
  droppedTx: number;
  queue: number;
  lastError: string | null;
  lastErrorAt: string | null;
  /** while state is 'error': what it stopped on (null otherwise, and from a daemon older than this field) */
  stoppedOn?: StoppedOn | null;
  /** a checkpoint set (setCheckpoint) and not written yet: it is written when a session reads `source` */
  pendingCheckpoint?: { position: string; source: string } | null;
}

export interface DaemonStatus {
  cluster: string;
  running: boolean;
  pid: number | null;
  startedAt: string | null;
  directions: PipelineStatus[];
}

/** The daemon's control requests, in one place (the daemon answers them in daemon.ts). */
export const drcJob = jobKind('DRC daemon', {
  status: command<DaemonStatus>()('every direction: state, lag, throughput, last error'),
  pause: command<DaemonStatus>()('pause directions (all, or those named)', { direction: { type: 'string', optional: true } }),
  resume: command<DaemonStatus>()('resume directions (all, or those named)', { direction: { type: 'string', optional: true } }),
  stop: command<{ stopping: true; pid: number }>()('stop the daemon'),
  repoint: command<DaemonStatus>()("reload the topology file and reconnect a zone's directions to its master", { zone: { type: 'string' } }),
  checkpoint: command<DaemonStatus>()("set a direction's checkpoint when its next session reads from source (host:port): after a failover, the new master's position", {
    direction: { type: 'string' },
    position: { type: 'string' },
    source: { type: 'string' },
  }),
});

export function drcStateDir(topo: Topology, cluster: string): string {
  return join(topo.stateDir(), `drc-${cluster}`);
}

export function drcSocket(topo: Topology, cluster: string): string {
  return socketPath(join(drcStateDir(topo, cluster), 'control.sock'));
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** How long `drc status` waits for a running daemon's answer (the control socket's own default). */
const STATUS_ANSWER_MS = 10_000;

export interface DrcWaitResult { cluster: string; from: string; to: string; target: string; reached: string; waitedMs: number }

/** DRC of one cluster, as seen from this host. */
export class DrcClient {
  readonly socket: string;
  private readonly address: JobAddress<typeof drcJob.commands>;

  constructor(
    private readonly ctx: Ctx,
    readonly topo: Topology,
    readonly cluster: string,
  ) {
    this.socket = drcSocket(topo, cluster);
    this.address = { kind: drcJob, path: this.socket, job: `DRC of cluster ${cluster}`, fix: 'start it with `ezctl drc start --detach`' };
  }

  /** Does a daemon of this cluster answer on this host? */
  daemonHere(): Promise<boolean> {
    return controlAlive(this.socket);
  }

  /**
   * The status of this host's daemon; null when none listens here (no socket, or nobody on it).
   * Asked directly, without daemonHere's 2 s ping first: a daemon that is alive but slow to answer
   * (a loaded machine, a long GC) was reported as "not running", exit 3, which a monitor reads as
   * DRC down. One that does not answer at all within the bound is an error naming that, not a stop.
   */
  async daemonStatus(): Promise<DaemonStatus | null> {
    try {
      return { ...(await sendJob(this.address, 'status', undefined, STATUS_ANSWER_MS)), cluster: this.cluster };
    } catch (e) {
      if (noJobAnswers(e)) return null;
      if ((e as { code?: string }).code === NO_ANSWER) {
        const pidFile = join(drcStateDir(this.topo, this.cluster), 'daemon.pid');
        throw runtimeError(`DRC for cluster ${this.cluster} listens on ${this.socket} but did not answer within ${STATUS_ANSWER_MS / 1000} s: its process is alive and busy or hung`, {
          hint: `look at its log and its CPU (its pid is in ${pidFile}); a hung daemon killed and started again (\`ezctl drc start --detach\`) continues from its checkpoints`,
          cause: e,
        });
      }
      throw e;
    }
  }

  /** Status from the running daemon; when none runs here, what the checkpoints in each zone say. */
  async status(): Promise<DaemonStatus> {
    return (await this.daemonStatus()) ?? this.checkpointStatus();
  }

  private async checkpointStatus(): Promise<DaemonStatus> {
    const { topo, cluster } = this;
    const zones = topo.zonesOf(cluster);
    const directions: PipelineStatus[] = [];
    for (const to of zones) {
      const node = topo.master(cluster, to);
      let rows: Array<{ pipeline: string; p: string; n: string }> = [];
      let err: string | null = null;
      let errAt: string | null = null;
      try {
        const db = await this.ctx.connect(node);
        try {
          rows = await db.query<{ pipeline: string; p: string; n: string }>(`SELECT pipeline, source_position AS p, applied_tx AS n FROM ${quoteTable(STATE_SCHEMA, CHECKPOINT_TABLE)} WHERE pipeline LIKE ?`, [`${cluster}:%->${to}`]).catch(() => []);
        } finally {
          await db.close();
        }
      } catch (e) {
        err = (e as Error).message;
        errAt = new Date().toISOString();
      }
      for (const from of zones) {
        if (from === to) continue;
        const r = rows.find((x) => x.pipeline === `${cluster}:${from}->${to}`);
        directions.push({
          from, to, state: 'stopped', source: `${topo.master(cluster, from).name} ${describeAddress(topo.master(cluster, from))}`, target: `${node.name} ${describeAddress(node)}`,
          lagMs: null, p99LagMs: null, sourcePosition: null, appliedPosition: r?.p ?? null, txPerSec: 0, rowsPerSec: 0,
          appliedTx: 0, appliedRows: 0, conflicts: 0, illegalWrites: 0, ddlSeen: 0, droppedTx: 0, queue: 0, lastError: err, lastErrorAt: errAt, stoppedOn: null,
        });
      }
    }
    return { cluster, running: false, pid: null, startedAt: null, directions };
  }

  /** Pause every direction, or one ("from->to", or a zone for all from it), of this host's daemon. */
  pause(direction?: string): Promise<DaemonStatus> {
    return this.control('pause', direction);
  }

  /** Resume (also a direction stopped by an error: it tries the transaction again). */
  resume(direction?: string): Promise<DaemonStatus> {
    return this.control('resume', direction);
  }

  private async control(cmd: 'pause' | 'resume', direction?: string): Promise<DaemonStatus> {
    if (!(await this.daemonHere())) throw runtimeError(`DRC for cluster ${this.cluster} is not running on this host (no answer on ${this.socket})`, { hint: 'start it with `ezctl drc start --detach`' });
    try {
      return { ...(await sendJob(this.address, cmd, direction ? { direction } : {})), cluster: this.cluster };
    } catch (e) {
      throw badInput((e as Error).message);
    }
  }

  /** Stop this host's daemon and wait until its process is gone; stopped false when none ran. */
  async stop(timeoutMs = 60_000): Promise<{ cluster: string; stopped: boolean; pid: number | null }> {
    const { cluster } = this;
    if (!(await this.daemonHere())) {
      this.ctx.log.info(`DRC for cluster ${cluster} is not running`);
      return { cluster, stopped: false, pid: null };
    }
    const r = await sendJob(this.address, 'stop');
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!pidAlive(r.pid)) return { cluster, stopped: true, pid: r.pid };
      await sleep(100);
    }
    throw runtimeError(`DRC for cluster ${cluster} (pid ${r.pid}) did not stop within ${timeoutMs / 1000} s`);
  }

  /** Tell this host's daemon the zone's master changed in the topology file; false when none runs here. */
  async repoint(zone: string): Promise<boolean> {
    if (!(await this.daemonHere())) return false;
    await sendJob(this.address, 'repoint', { zone });
    return true;
  }

  /** The checkpoint of direction from->to (the source position it has applied), read at to's master; null when none. */
  async checkpointOf(from: string, to: string): Promise<string | null> {
    const db = await this.ctx.connect(this.topo.master(this.cluster, to));
    try {
      const v = await db.value<string | null>(`SELECT source_position FROM ${quoteTable(STATE_SCHEMA, CHECKPOINT_TABLE)} WHERE pipeline = ?`, [`${this.cluster}:${from}->${to}`]).catch(() => null);
      return v === null || v === undefined ? null : String(v);
    } finally {
      await db.close();
    }
  }

  /**
   * Set direction from->to's checkpoint to `position` (after a failover: the new master's position
   * in the zone's own domain, in place of one the new master never had; DRC would otherwise stop
   * as diverged, or skip the new master's transactions that reuse those sequence numbers).
   * With a daemon on this host, it writes it at the start of its next session whose source is
   * `source` (repoint the zone after this call; waitCheckpoint tells when it is written). With no
   * daemon here, it is written at once at to's master under the direction's lock, which is refused
   * (exit 4) while a daemon elsewhere holds it. `sourceDomain`: the GTID domain of from's writes
   * (MariaDB), so the write is logged as DRC's, not as to's own.
   */
  async setCheckpoint(from: string, to: string, position: string, source: { host: string; port: number }, o: { sourceDomain?: number; drcDomainOffset: number }): Promise<{ via: 'daemon' | 'server'; previous: string | null }> {
    const id = `${this.cluster}:${from}->${to}`;
    const previous = await this.checkpointOf(from, to);
    if (await this.daemonHere()) {
      await sendJob(this.address, 'checkpoint', { direction: `${from}->${to}`, position, source: `${source.host}:${source.port}` });
      return { via: 'daemon', previous };
    }
    const node = this.topo.master(this.cluster, to);
    const db = await this.ctx.connect(node);
    try {
      const lock = `ezctl-drc:${id}`.slice(0, 64);
      if (Number(await db.value<number | string>('SELECT GET_LOCK(?, 0)', [lock])) !== 1) {
        throw refused(`cannot set the checkpoint of ${id}: a DRC daemon on another host applies it (it holds its lock at ${node.name} ${describeAddress(node)})`, {
          hint: `run this where that daemon runs, or stop it; then set ${STATE_SCHEMA}.${CHECKPOINT_TABLE} pipeline '${id}' to ${position}`,
        });
      }
      try {
        await writeAsDrc(db, drcDomainFor(o.sourceDomain, o.drcDomainOffset));
        await db.exec(
          `INSERT INTO ${quoteTable(STATE_SCHEMA, CHECKPOINT_TABLE)} (pipeline, source_position, last_gtid, applied_tx) VALUES (?, ?, '', 0) ON DUPLICATE KEY UPDATE source_position = VALUES(source_position), last_gtid = ''`,
          [id, position],
        );
        // the routing table version stored with the old position does not describe the new one (a table from before it has no column)
        await db.exec(`UPDATE ${quoteTable(STATE_SCHEMA, CHECKPOINT_TABLE)} SET routes_version = NULL WHERE pipeline = ?`, [id]).catch(() => undefined);
      } finally {
        await db.value('SELECT RELEASE_LOCK(?)', [lock]).catch(() => undefined);
      }
    } finally {
      await db.close();
    }
    return { via: 'server', previous };
  }

  /** Wait until this host's daemon has written the checkpoint set for from->to (true), or timeoutMs passed (false). */
  async waitCheckpoint(from: string, to: string, timeoutMs: number, signal?: AbortSignal): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const st = await this.daemonStatus();
      const d = st?.directions.find((x) => x.from === from && x.to === to);
      if (!st || !d?.pendingCheckpoint) return true;
      if (Date.now() > deadline || signal?.aborted) return false;
      await sleep(100);
    }
  }

  /**
   * DRC lag of every ordered zone pair, from the heartbeat rows at each zone master: readable
   * from any host, whether or not the daemon runs here.
   */
  async lag(): Promise<DrcLagPair[]> {
    const zones = this.topo.zonesOf(this.cluster);
    const masters = await Promise.all(zones.map(async (zone) => ({ zone, db: await this.ctx.connect(this.topo.master(this.cluster, zone)) })));
    try {
      return (await measureDrcLagMs(masters)).pairs;
    } finally {
      await Promise.all(masters.map((m) => m.db.close().catch(() => undefined)));
    }
  }

  /**
   * Everything `from`'s master had committed when called is applied at `to`. Reads only the
   * servers (from's position, the checkpoint at to), so it works from any host. Refused (exit 4)
   * after timeoutMs.
   */
  async wait(from: string, to: string, timeoutMs: number, o: { source?: { gtidBinlogPos: string; domainId: number }; pollMs?: number } = {}): Promise<DrcWaitResult> {
    const { topo, cluster, ctx } = this;
    for (const z of [from, to]) if (!topo.zonesOf(cluster).includes(z)) throw badInput(`cluster ${cluster} has no zone ${JSON.stringify(z)}`, { hint: `zones: ${topo.zonesOf(cluster).join(', ')}` });
    if (from === to) throw badInput('--from and --to name the same zone');
    const t0 = Date.now();
    let target: string;
    let covered: (pos: string) => boolean;
    if (o.source) {
      // the caller knows the source's position (MariaDB): a switch's final position, read with
      // every write blocked; no round trip to the source (another zone, for a switch to there)
      const d = o.source.domainId;
      const seq = parseMariaPos(o.source.gtidBinlogPos).get(d)?.seq ?? 0n;
      target = `${d}-*-${seq}`;
      covered = (pos) => (parseMariaPos(pos).get(d)?.seq ?? 0n) >= seq;
    } else {
      ({ target, covered } = await this.ownPosition(from));
    }
    const dst = await ctx.connect(topo.master(cluster, to));
    const pipeline = `${cluster}:${from}->${to}`;
    let reached = '';
    try {
      for (;;) {
        reached = String((await dst.value(`SELECT source_position FROM ${quoteTable(STATE_SCHEMA, CHECKPOINT_TABLE)} WHERE pipeline = ?`, [pipeline]).catch(() => '')) ?? '');
        if (reached && covered(reached)) break;
        if (Date.now() - t0 > timeoutMs) {
          throw refused(`zone ${to} has not applied everything zone ${from} had committed (${target}) within ${(timeoutMs / 1000).toFixed(1)} s`, {
            details: [`applied at ${to}: ${reached || '(no checkpoint: is DRC running?)'}`],
            hint: '`ezctl drc status` shows lag and errors',
          });
        }
        await sleep(o.pollMs ?? 50);
      }
    } finally {
      await dst.close();
    }
    return { cluster, from, to, target, reached, waitedMs: Date.now() - t0 };
  }

  /** The zone master's own writes now: its domain's GTID (MariaDB) or its server_uuid's set (MySQL). */
  private async ownPosition(from: string): Promise<{ target: string; covered: (pos: string) => boolean }> {
    const { topo, cluster, ctx } = this;
    const src = await ctx.connect(topo.master(cluster, from));
    let target: string;
    let covered: (pos: string) => boolean;
    try {
      const info = await serverInfo(src);
      if (info.flavor === 'mariadb') {
        // the zone's own writes are those of its own domain
        const d = info.gtidDomainId ?? 0;
        const seq = parseMariaPos(info.gtidBinlogPos).get(d)?.seq ?? 0n;
        target = `${d}-*-${seq}`;
        covered = (pos) => (parseMariaPos(pos).get(d)?.seq ?? 0n) >= seq;
      } else {
        const uuid = String(await src.value('SELECT @@server_uuid'));
        const own = new Map([...parseMysqlSet(info.gtidBinlogPos)].filter(([u]) => u === uuid));
        target = [...own].map(([u, iv]) => `${u}:${iv.map(([a, b]) => `${a}-${b}`).join(':')}`).join(',');
        covered = (pos) => mysqlCovers(parseMysqlSet(pos), own);
      }
    } finally {
      await src.close();
    }
    return { target, covered };
  }
}

/** The DRC client of a cluster of the command's topology (the only cluster when none is named). */
export async function drcClient(ctx: Ctx, cluster?: string): Promise<DrcClient> {
  const topo = await ctx.topology();
  return new DrcClient(ctx, topo, topo.cluster(cluster).name);
}
