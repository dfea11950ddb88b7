// The DRC daemon of one cluster: a pipeline per ordered zone pair, a heartbeat writer per zone,
// the control socket, metrics. Started in the foreground by `ezctl drc start`, or detached.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import type { Server } from 'node:net';
import type { Ctx } from '../context.js';
import { loadTopology, type ResolvedNode, type Topology } from '../config/load.js';
import { badInput, refused, runtimeError, EzError, ExitCode } from '../exit.js';
import type { Db } from '../db/connect.js';
import { serverInfo, type ServerInfo } from '../db/server.js';
import { listTables, readShape } from '../db/introspect.js';
import { quoteTable } from '../db/quote.js';
import { describeAddress } from '../config/dsn.js';
import { ensureStateSchema, STATE_SCHEMA } from '../state/schema.js';
import { controlAlive, sendControl, socketPath } from '../control/socket.js';
import { serveJob } from '../control/commands.js';
import { onInterrupt } from '../signals.js';
import { compileRules } from '../cluster/rules.js';
import { DEFAULT_DRC_DOMAIN_OFFSET, HEARTBEAT_TABLE } from '../cluster/tables.js';
import { drcDomainFor, withDrcWrites } from '../cluster/session.js';
import { Pipeline } from './pipeline.js';
import { drcJob, drcSocket, drcStateDir, type DaemonStatus } from './client.js';
import { rotateLog } from './log-summary.js';
import { routesFromTopology } from '../routes/index.js';
import { RoutesBoard } from './routes-judge.js';

export interface DrcStartOptions {
  cluster?: string;
  detach?: boolean;
  metricsPort?: number;
  replicateDdl?: boolean;
  blockIllegal?: boolean;
  skipErrors?: boolean;
}


export const DEFAULT_HEARTBEAT_MS = 250;
/** how long the daemon waits for every direction to fix its start position before answering anyway */
const POSITION_WAIT_MS = 30_000;

/**
 * What DRC needs before it starts: ROW binlogs with full images on every zone master, distinct
 * GTID domains (with room for DRC's own), and every replicated table with a primary key and the
 * DRC timestamp column. Returns one line per problem.
 */
export async function preflight(ctx: Ctx, topo: Topology, cluster: string, offset: number): Promise<{ problems: string[]; infos: Map<string, ServerInfo> }> {
  const cfg = topo.cluster(cluster).config;
  const rules = compileRules({ databases: cfg.databases, include: cfg.drc?.include, exclude: cfg.drc?.exclude });
  const ts = topo.drcTimestampColumn(cluster);
  const problems: string[] = [];
  const infos = new Map<string, ServerInfo>();
  for (const zone of topo.zonesOf(cluster)) {
    const node = topo.master(cluster, zone);
    let db: Db;
    try {
      db = await ctx.connect(node);
    } catch (e) {
      if (e instanceof EzError && e.exitCode === ExitCode.badInput) throw e;
      throw runtimeError(`zone ${zone}: ${(e as Error).message}`, { hint: (e as EzError).hint ?? '' });
    }
    try {
      const info = await serverInfo(db);
      infos.set(zone, info);
      const where = `zone ${zone} master ${node.name} (${describeAddress(node)})`;
      if (!info.logBin) problems.push(`${where}: log_bin is OFF; DRC reads the binlog`);
      if (info.binlogFormat !== 'ROW') problems.push(`${where}: binlog_format is ${info.binlogFormat}, DRC needs ROW`);
      if (info.binlogRowImage !== 'FULL') problems.push(`${where}: binlog_row_image is ${info.binlogRowImage}, DRC needs FULL`);
      if (info.flavor === 'mariadb' && info.binlogRowMetadata !== 'FULL') problems.push(`${where}: binlog_row_metadata is ${info.binlogRowMetadata}, DRC needs FULL (SET GLOBAL binlog_row_metadata = FULL)`);
      for (const t of await listTables(db, cfg.databases)) {
        if (!rules(t.schema, t.table)) continue;
        const info2 = await readShape(db, t.schema, t.table);
        if (!info2) continue;
        const name = `${t.schema}.${t.table}`;
        if (info2.primaryKey.length === 0) problems.push(`${where}: table ${name} has no primary key; add one, or exclude it (drc.exclude in the topology file)`);
        if (!info2.columns.some((c) => c.name === ts)) problems.push(`${where}: table ${name} has no ${ts} column; add it with \`ezctl migrate drc-ts\`, or exclude the table`);
      }
    } finally {
      await db.close();
    }
  }
  const flavors = new Set([...infos.values()].map((i) => i.flavor));
  if (flavors.size > 1) problems.push(`zone masters mix MariaDB and MySQL; DRC needs one flavor per cluster`);
  const domains = new Map<number, string>();
  for (const [zone, info] of infos) {
    if (info.flavor !== 'mariadb') continue;
    const d = info.gtidDomainId ?? 0;
    if (domains.has(d)) problems.push(`zones ${domains.get(d)} and ${zone} share gtid_domain_id ${d}; give each zone master its own (SET GLOBAL gtid_domain_id)`);
    domains.set(d, zone);
  }
  for (const [d, zone] of domains) {
    if (domains.has(d + offset)) problems.push(`zone ${zone}'s domain ${d} + ${offset} is the domain of zone ${domains.get(d + offset)}; DRC writes under domain + ${offset} (change drc.drcDomainOffset)`);
  }
  return { problems, infos };
}

/** `drc start`: the daemon in the foreground, or detached with its log and pid under the state dir. */
export async function drcStart(ctx: Ctx, o: DrcStartOptions): Promise<DaemonStatus> {
  const topo = await ctx.topology();
  const { name: cluster, config } = topo.cluster(o.cluster);
  const zones = topo.zonesOf(cluster);
  if (zones.length < 2) throw badInput(`cluster ${cluster} has ${zones.length} zone; DRC replicates between two or more`);
  const dir = drcStateDir(topo, cluster);
  const sock = drcSocket(topo, cluster);
  if (await controlAlive(sock)) {
    throw refused(`DRC for cluster ${cluster} is already running (control socket ${sock})`, { hint: '`ezctl drc status` shows it; `ezctl drc stop` stops it' });
  }
  const offset = config.drc?.drcDomainOffset ?? DEFAULT_DRC_DOMAIN_OFFSET;
  // a detached daemon's parent has just run the same checks
  const { problems } = process.env.EZCTL_DRC_PREFLIGHT_DONE === topo.path ? { problems: [] } : await preflight(ctx, topo, cluster, offset);
  if (problems.length) throw refused(`DRC cannot start for cluster ${cluster}: ${problems.length} problem${problems.length === 1 ? '' : 's'}`, { details: problems });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (o.detach) return detach(ctx, topo, cluster, dir, sock, o);
  return runDaemon(ctx, topo, cluster, dir, sock, o);
}

async function detach(ctx: Ctx, topo: Topology, cluster: string, dir: string, sock: string, o: DrcStartOptions): Promise<DaemonStatus> {
  if (ctx.opts.askPass) throw badInput('--ask-pass cannot be used with --detach (the daemon has no terminal)', { hint: 'use credentials.passwordEnv or a defaults file' });
  const log = join(dir, 'daemon.log');
  const args = [process.argv[1]!, '--config', topo.path, '--connect-timeout', String(ctx.opts.connectTimeout)];
  if (ctx.opts.defaultsFile) args.push('--defaults-file', resolve(ctx.opts.defaultsFile));
  for (let i = 0; i < ctx.opts.verbose; i++) args.push('-v');
  args.push('drc', 'start', '--cluster', cluster);
  if (o.metricsPort) args.push('--metrics-port', String(o.metricsPort));
  if (o.replicateDdl) args.push('--replicate-ddl');
  if (o.blockIllegal) args.push('--block-illegal');
  if (o.skipErrors) args.push('--skip-errors');
  const fd = openSync(log, 'a', 0o600);
  const child = spawn(process.execPath, args, { detached: true, stdio: ['ignore', fd, fd], env: { ...process.env, CI: '1', EZCTL_DRC_PREFLIGHT_DONE: topo.path, EZCTL_DRC_LOG: log } });
  closeSync(fd);
  child.unref();
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) break;
    if (await controlAlive(sock)) {
      ctx.log.info(`DRC for cluster ${cluster} runs in the background (pid ${child.pid}); log: ${log}`);
      return drcStatusFromSocket(sock, cluster);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const tail = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').slice(-8) : [];
  throw runtimeError(`the DRC daemon did not start (exit ${child.exitCode ?? child.signalCode ?? 'timeout'})`, { details: tail, hint: `see ${log}` });
}

async function drcStatusFromSocket(sock: string, cluster: string): Promise<DaemonStatus> {
  const r = (await sendControl(sock, { cmd: 'status' })) as DaemonStatus;
  return { ...r, cluster };
}

async function runDaemon(ctx: Ctx, topoAtStart: Topology, cluster: string, dir: string, sock: string, o: DrcStartOptions): Promise<DaemonStatus> {
  let topo = topoAtStart;
  const zones = topo.zonesOf(cluster);
  const cfg = topo.cluster(cluster).config;
  const heartbeatMs = cfg.drc?.heartbeatIntervalMs ?? DEFAULT_HEARTBEAT_MS;
  const offset = cfg.drc?.drcDomainOffset ?? DEFAULT_DRC_DOMAIN_OFFSET;
  const rules = compileRules({ databases: cfg.databases, include: cfg.drc?.include, exclude: cfg.drc?.exclude });
  const master = (zone: string): ResolvedNode => topo.master(cluster, zone);
  const startedAt = new Date();
  const pipelines: Pipeline[] = [];
  // the routing table versions every direction has seen, for the ones a zone missed (routes-judge.ts)
  const board = new RoutesBoard();
  let metrics: { server: import('node:http').Server; update: (p: Pipeline[]) => void; onBatch: (p: Pipeline) => void } | undefined;
  if (o.metricsPort) metrics = await (await import('./metrics.js')).serveMetrics(o.metricsPort, cluster);
  for (const from of zones) {
    for (const to of zones) {
      if (from === to) continue;
      pipelines.push(new Pipeline({
        cluster, from, to,
        source: () => master(from),
        target: () => master(to),
        // a direction runs on its target's side: the applier writes locally, the binlog is read across the distance
        endpoint: (n) => ctx.endpoint(n, { fromZone: to }),
        connectTimeoutMs: ctx.opts.connectTimeout * 1000,
        rules,
        applier: {
          sourceRank: topo.file.zones.indexOf(from),
          targetRank: topo.file.zones.indexOf(to),
          tsColumn: topo.drcTimestampColumn(cluster),
          fileRoutes: routesFromTopology(topo, cluster),
          blockIllegal: Boolean(o.blockIllegal),
        },
        replicateDdl: Boolean(o.replicateDdl),
        skipErrors: Boolean(o.skipErrors),
        heartbeatIntervalMs: heartbeatMs,
        log: ctx.log,
        drcDomainOffset: offset,
        routesBoard: board,
        onBatch: (p) => metrics?.onBatch(p),
      }));
    }
  }
  const heartbeats = zones.map((zone) => new HeartbeatWriter(zone, () => master(zone), ctx, heartbeatMs, offset));
  let stopping: Promise<void> | undefined;
  let server: Server | undefined;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => (resolveDone = r));
  const stop = () => {
    stopping ??= (async () => {
      ctx.log.info(`DRC for cluster ${cluster}: stopping`);
      await Promise.all(heartbeats.map((h) => h.stop()));
      await Promise.all(pipelines.map((p) => p.stop()));
      server?.close();
      metrics?.server.close();
      rmSync(join(dir, 'daemon.pid'), { force: true });
      ctx.log.info(`DRC for cluster ${cluster}: stopped`);
      resolveDone();
    })();
    return stopping;
  };
  const status = (): DaemonStatus => ({ cluster, running: !stopping, pid: process.pid, startedAt: startedAt.toISOString(), directions: pipelines.map((p) => p.status()) });
  const pick = (d: string | undefined) => {
    if (!d) return pipelines;
    const list = pipelines.filter((p) => `${p.o.from}->${p.o.to}` === d || p.o.from === d);
    if (list.length === 0) throw new Error(`no direction ${d} (have ${pipelines.map((p) => `${p.o.from}->${p.o.to}`).join(', ')})`);
    return list;
  };
  // Every direction fixes where it reads from before the daemon answers: `drc start --detach`
  // returns once the socket answers, and a direction without a checkpoint starts at its source's
  // position when its session begins; a write made in between (right after `drc start` returned)
  // was never read. Bounded: a direction that cannot reach its servers goes on retrying after.
  onInterrupt(async () => {
    await stop();
  });
  for (const h of heartbeats) h.start();
  for (const p of pipelines) p.start();
  const positioning = Promise.all(pipelines.map((p) => p.positioned));
  const bound = new Promise<'late'>((r) => setTimeout(() => r('late'), POSITION_WAIT_MS).unref());
  if ((await Promise.race([positioning, bound])) === 'late') {
    ctx.log.warn(`DRC for cluster ${cluster}: ${pipelines.filter((p) => p.state === 'starting').map((p) => p.id).join(', ')} still starting after ${POSITION_WAIT_MS / 1000} s; answering now`);
  }
  server = await serveJob(sock, drcJob, {
    status,
    pause({ direction }) {
      for (const p of pick(direction)) p.pause();
      ctx.log.info(`paused ${pick(direction).map((p) => p.id).join(', ')}`);
      return status();
    },
    resume({ direction }) {
      for (const p of pick(direction)) p.resume();
      ctx.log.info(`resumed ${pick(direction).map((p) => p.id).join(', ')}`);
      return status();
    },
    stop() {
      setImmediate(() => void stop());
      return { stopping: true as const, pid: process.pid };
    },
    repoint({ zone }) {
      topo = loadTopology(topo.path);
      const m = master(zone);
      ctx.log.info(`zone ${zone}: master is now ${m.name} (${describeAddress(m)}); reconnecting its directions from their checkpoints`);
      for (const p of pipelines) if (p.o.from === zone || p.o.to === zone) p.restart();
      for (const h of heartbeats) if (h.zone === zone) h.reconnect();
      return status();
    },
    checkpoint({ direction, position, source }) {
      const [p] = pick(direction).filter((x) => `${x.o.from}->${x.o.to}` === direction);
      if (!p) throw new Error(`no direction ${direction} (have ${pipelines.map((x) => `${x.o.from}->${x.o.to}`).join(', ')})`);
      ctx.log.warn(`${p.id}: checkpoint to be set to ${position} when it reads from ${source}`);
      void p.setCheckpoint(position, source);
      return status();
    },
  });
  writeFileSync(join(dir, 'daemon.pid'), `${process.pid}\n`, { mode: 0o600 });
  ctx.log.info(`DRC for cluster ${cluster}: ${pipelines.map((p) => `${p.o.from}->${p.o.to}`).join(', ')}; heartbeat every ${heartbeatMs} ms; control socket ${sock}${o.metricsPort ? `; metrics on :${o.metricsPort}/metrics` : ''}`);
  const tick = setInterval(() => metrics?.update(pipelines), 1000);
  // a detached daemon writes its log through the descriptor it was given: keep that file bounded
  const logFile = process.env.EZCTL_DRC_LOG;
  const rotate = logFile ? setInterval(() => {
    try {
      rotateLog(logFile);
    } catch (e) {
      ctx.log.warn(`cannot rotate ${logFile}: ${(e as Error).message}`);
    }
  }, 10_000) : undefined;
  await done;
  clearInterval(tick);
  clearInterval(rotate);
  return { cluster, running: false, pid: process.pid, startedAt: startedAt.toISOString(), directions: pipelines.map((p) => p.status()) };
}

/**
 * Writes this zone's heartbeat row every interval. It is an ordinary write of the zone, so it
 * travels through DRC like application data, and the peer measures the true end-to-end lag.
 */
class HeartbeatWriter {
  private db: Db | undefined;
  private timer: NodeJS.Timeout | undefined;
  private seq = 0;
  private busy = false;
  private stopped = false;
  private warned = false;

  constructor(
    readonly zone: string,
    private readonly node: () => ResolvedNode,
    private readonly ctx: Ctx,
    private readonly intervalMs: number,
    private readonly offset: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.beat(), this.intervalMs);
  }

  reconnect(): void {
    const db = this.db;
    this.db = undefined;
    void db?.close();
  }

  private async beat(): Promise<void> {
    if (this.busy || this.stopped) return;
    this.busy = true;
    try {
      // a fenced master (the file not repointed yet after a failover) gets nothing, not even a connection
      const n = this.node();
      if (n.fenced) throw new Error(`${n.name} is fenced in the topology file: no heartbeat is written to it`);
      if (!this.db) {
        // a zone's heartbeat is written from inside the zone
        const db = await this.ctx.connect(n, { fromZone: this.zone });
        // the table may not exist yet on a fresh master: create it under DRC's domain, unreplicated
        const info = await serverInfo(db);
        await withDrcWrites(db, drcDomainFor(info.flavor === 'mariadb' ? info.gtidDomainId ?? 0 : undefined, this.offset), () => ensureStateSchema(db));
        this.db = db;
      }
      this.seq++;
      // Nothing is written to a read_only master: during a master switch the old master is set
      // read_only first, and a heartbeat there would be a transaction the new master never has.
      // (The admin user bypasses read_only, so the statement checks it itself.)
      await this.db.exec(
        `INSERT INTO ${quoteTable(STATE_SCHEMA, HEARTBEAT_TABLE)} (zone, seq, written_at_ms) SELECT ?, ?, ? FROM DUAL WHERE @@global.read_only = 0
         ON DUPLICATE KEY UPDATE seq = VALUES(seq), written_at_ms = VALUES(written_at_ms)`,
        [this.zone, this.seq, Date.now()],
      );
      if (this.warned) this.ctx.log.info(`heartbeat ${this.zone}: writing again`);
      this.warned = false;
    } catch (e) {
      if (!this.warned) this.ctx.log.warn(`heartbeat ${this.zone}: ${(e as Error).message}`);
      this.warned = true;
      this.reconnect();
    } finally {
      this.busy = false;
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    while (this.busy) await new Promise((r) => setTimeout(r, 10));
    await this.db?.close();
  }
}
