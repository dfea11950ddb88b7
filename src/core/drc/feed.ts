// `ezctl drc feed`: the change feed of one zone, for cache invalidation. It reads zone Z's OWN
// master binlog (local writes and what DRC applied there alike), so a cache in Z is invalidated
// only after Z has the row. At least once, ordered, resumable: the position stored in
// _ezctl.drc_feed_position (on Z's master, so Z's replicas have it too) advances only after the
// sink acknowledged a batch; a restart resumes after it.
import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:net';
import type { Ctx } from '../context.js';
import { loadTopology, type ResolvedNode, type Topology } from '../config/load.js';
import { describeAddress } from '../config/dsn.js';
import { compilePatterns, type TableMatcher } from '../config/patterns.js';
import { badInput, refused, runtimeError, EzError, ExitCode } from '../exit.js';
import type { Db } from '../db/connect.js';
import { gtidCovers } from '../db/gtid.js';
import { quoteTable } from '../db/quote.js';
import { serverInfo } from '../db/server.js';
import { BinlogStream, type BinlogTx } from '../binlog/stream.js';
import { SourcePosition } from '../binlog/position.js';
import { ensureStateSchema, STATE_SCHEMA } from '../state/schema.js';
import { controlAlive, socketPath } from '../control/socket.js';
import { command, jobKind, sendJob, serveJob } from '../control/commands.js';
import { onInterrupt } from '../signals.js';
import { DEFAULT_DRC_DOMAIN_OFFSET } from '../cluster/tables.js';
import { originMap, shapeTx, takeBatch, type FeedEvent } from './feed-event.js';
import { makeSink, type FeedSink, type SinkOptions } from './feed-sink.js';
import { SYSTEM_SCHEMAS as SYSTEM_SCHEMA_NAMES } from '../db/introspect.js';
import { acquireJob, describeLive, liveHolders, type JobHandle } from '../job/job.js';
import { FEED_PREFIX } from '../job/lease.js';

/** The lease target of a feed: one reader per feed name, whatever host runs it. */
export const feedTarget = (name: string) => `${FEED_PREFIX}${name}`;

export const FEED_TABLE = 'drc_feed_position';

/** The commands a running feed answers on its control socket. */
export const feedJob = jobKind('change feed', {
  status: command<FeedStatus>()('events/s, lag from commit to the sink\'s acknowledgement, positions, queue, retries'),
  pause: command<FeedStatus>()('stop reading the binlog (the position is kept)'),
  resume: command<FeedStatus>()('read again from where it paused'),
  stop: command<FeedStatus>()('stop the feed; its position stays at the last batch the sink acknowledged'),
});
const SYSTEM_SCHEMAS = new Set(SYSTEM_SCHEMA_NAMES);

export interface FeedOptions extends SinkOptions {
  cluster?: string;
  zone: string;
  tables?: string;
  fromGtid?: string;
  name?: string;
  /** events per batch (whole transactions; one larger transaction goes alone) */
  batch?: number;
  /** events read ahead of the sink's acknowledgement before reading pauses */
  maxQueue?: number;
  /** serve Prometheus metrics on 127.0.0.1:<port>/metrics */
  metricsPort?: number;
  /** the job lease's length (ms; tests) */
  leaseMs?: number;
}

export interface FeedStatus {
  name: string;
  cluster: string;
  zone: string;
  state: 'starting' | 'running' | 'paused' | 'retrying' | 'stopped';
  sink: string;
  /** the position acknowledged by the sink and stored */
  position: string;
  /** the position read so far */
  readPosition: string;
  eventsDelivered: number;
  batchesDelivered: number;
  eventsPerSecond: number;
  /** commit (binlog timestamp, whole seconds) to sink acknowledgement of the last batch */
  lagMs: number | null;
  /** read to sink acknowledgement of the last batch */
  deliveryMs: number | null;
  queuedEvents: number;
  readingPaused: boolean;
  retries: number;
  lastError: { message: string; at: string } | null;
  /** the job (`ezctl jobs`) whose lease this feed holds, on its zone's master; null while it holds none (the master unreachable) */
  jobId: string | null;
  /** the zone master the feed reads (and holds its lease and position on) */
  master: string;
  host: string;
  pid: number;
}

interface QueuedTx {
  gtid: string;
  /** the read position after this transaction */
  pos: string;
  events: FeedEvent[];
  ts: number;
  readAt: number;
}

export function feedName(cluster: string, zone: string, name?: string): string {
  return name ?? `${cluster}-${zone}`;
}

export function feedSocket(topo: Topology, name: string): string {
  return socketPath(join(topo.stateDir(), `drc-feed-${name}`, 'control.sock'));
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** The oldest position zone Z's master can still send: refuse a stored position before it. */
async function checkNotPurged(db: Db, flavor: 'mariadb' | 'mysql', name: string, zone: string, where: string, pos: string): Promise<void> {
  if (flavor === 'mysql') {
    const purged = String((await db.value('SELECT @@global.gtid_purged')) ?? '');
    if (purged && !gtidCovers('mysql', pos, purged)) {
      throw refused(`feed ${name}: position ${pos || '(empty)'} is no longer in zone ${zone}'s binlog at ${where}: transactions ${purged} are purged`, {
        hint: `the events between are gone; rebuild the caches, then start the feed again with --from-gtid (or delete its row in ${STATE_SCHEMA}.${FEED_TABLE})`,
      });
    }
    return;
  }
  const logs = await db.query<Record<string, unknown>>('SHOW BINARY LOGS');
  const first = logs[0] ? String(logs[0].Log_name ?? Object.values(logs[0])[0]) : undefined;
  if (!first) return;
  // the Gtid_list event at the head of the oldest binlog: every domain's last GTID before it
  const head = await db.query<Record<string, unknown>>('SHOW BINLOG EVENTS IN ? LIMIT 4', [first]);
  const list = head.find((e) => e.Event_type === 'Gtid_list');
  const oldest = list ? String(list.Info ?? '').replace(/^\[|\]$/g, '').trim() : '';
  if (oldest && !gtidCovers('mariadb', pos, oldest)) {
    throw refused(`feed ${name}: position ${pos || '(empty)'} is no longer in zone ${zone}'s binlog at ${where}: the oldest binlog, ${first}, starts after ${oldest}`, {
      hint: `the events between are gone (purged); rebuild the caches, then start the feed again with --from-gtid (or delete its row in ${STATE_SCHEMA}.${FEED_TABLE})`,
    });
  }
}

export async function drcFeed(ctx: Ctx, o: FeedOptions): Promise<FeedStatus> {
  let topo = await ctx.topology();
  const { name: cluster, config } = topo.cluster(o.cluster);
  const zones = topo.zonesOf(cluster);
  if (!zones.includes(o.zone)) throw badInput(`cluster ${cluster} has no zone ${JSON.stringify(o.zone)}`, { hint: `zones: ${zones.join(', ')}` });
  const zone = o.zone;
  const name = feedName(cluster, zone, o.name);
  if (!/^[A-Za-z0-9_.-]{1,100}$/.test(name)) throw badInput(`feed name ${JSON.stringify(name)}: use letters, digits, _ . - (at most 100)`);
  const batchMax = o.batch ?? 500;
  const maxQueue = o.maxQueue ?? 20_000;
  const chosen = compilePatterns(o.tables);
  const dbs = config.databases;
  const follow: TableMatcher = (s, t) => !SYSTEM_SCHEMAS.has(s) && (chosen ? chosen(s, t) : dbs ? dbs.includes(s) : true);
  const sink: FeedSink = makeSink(o);
  const sock = feedSocket(topo, name);
  // The lease `feed:<name>` lives where the feed's position and binlog live: on zone Z's master
  // (unlogged: its renewals are no transactions of Z's binlog, and none a demoted master has that
  // the new one lacks). The feed can do nothing without that server, so an outage of it costs the
  // lease nothing the feed could use: it rides the outage out like DRC and takes the lease again
  // (the same job) before it reads again; after a master switch it takes it on the new master.
  const target = feedTarget(name);
  let job: JobHandle | undefined;
  /** the address of the master the lease is held on (names move with the file after a switch: the address says which server) */
  let leaseNode = '';
  const addr = (n: ResolvedNode) => `${n.host}:${n.port}`;
  let onLeaseLost: ((e: Error) => void) | undefined;
  const takeLease = async (node: ResolvedNode, first: boolean): Promise<void> => {
    const old = job;
    job = undefined;
    if (old && leaseNode !== addr(node)) await old.finish('done', `the zone's master moved to ${node.name} (${describeAddress(node)}); the feed's lease moved with it`).catch(() => undefined);
    // the same master again: ended as failed where it can still be written, so the new lease
    // takes the same job over (its id kept)
    else if (old) await old.fail(new Error('the session reading the master ended; the lease is taken again'), 'failed').catch(() => undefined);
    if (!first) {
      // this process's own lease of a session that lost its server (the renewals' connections died
      // with it): not a holder standing in its way
      const db = await ctx.connect(node);
      try {
        await db.exec('SET SESSION sql_log_bin = 0');
        await db.exec(`DELETE FROM ${quoteTable(STATE_SCHEMA, 'job_leases')} WHERE cluster = ? AND target = ? AND host = ? AND pid = ?`, [cluster, target, hostname(), process.pid]).catch((e: { code?: string }) => {
          if (e.code !== 'ER_NO_SUCH_TABLE') throw e;
        });
      } finally {
        await db.close();
      }
    }
    const j = await acquireJob(ctx, {
      cluster, kind: 'drc-feed', targets: [target], zones: [{ zone, node }], phase: 'starting', unlogged: true, controlSocket: sock,
      // like check full: a dead feed of this name is taken over by the next run, on any host
      resume: true, ...(o.leaseMs ? { leaseMs: o.leaseMs } : {}),
    });
    job = j;
    leaseNode = addr(node);
    j.signal.addEventListener('abort', () => {
      if (job !== j) return;
      ctx.log.warn(`feed ${name}: ${(j.signal.reason as Error).message}`);
      onLeaseLost?.(j.signal.reason as Error);
    }, { once: true });
    ctx.log.debug(`feed ${name}: holds the lease ${target} on ${node.name} (job ${j.id}${j.tookOver ? ', taken over' : ''})`);
  };
  await takeLease(topo.master(cluster, zone), true);
  try {
    if (await controlAlive(sock)) throw refused(`feed ${name} is already running (control socket ${sock})`, { hint: `\`ezctl drc feed status --name ${name}\` shows it` });
  } catch (e) {
    await job!.release().catch(() => undefined);
    throw e;
  }

  const offset = config.drc?.drcDomainOffset ?? DEFAULT_DRC_DOMAIN_OFFSET;
  const zoneDomains = new Map<string, number>();
  for (const z of zones) {
    try {
      const d = await ctx.connect(topo.master(cluster, z));
      try {
        const info = await serverInfo(d);
        if (info.flavor === 'mariadb') zoneDomains.set(z, info.gtidDomainId ?? 0);
      } finally {
        await d.close();
      }
    } catch (e) {
      ctx.log.warn(`feed ${name}: zone ${z}'s master is unreachable (${(e as Error).message}); events of its GTID domain carry origin null`);
    }
  }
  const origins = originMap(zoneDomains, offset);

  // the stored position, or where this feed starts
  const node0 = topo.master(cluster, zone);
  const where0 = `${node0.name} (${describeAddress(node0)})`;
  let start = '';
  let flavor: 'mariadb' | 'mysql' = 'mariadb';
  const db0 = await ctx.connect(node0).catch(async (e) => {
    await job?.release().catch(() => undefined);
    throw e;
  });
  try {
    const info = await serverInfo(db0);
    flavor = info.flavor;
    const problems: string[] = [];
    if (!info.logBin) problems.push('log_bin is OFF');
    if (info.binlogFormat !== 'ROW') problems.push(`binlog_format is ${info.binlogFormat}, the feed needs ROW`);
    if (info.binlogRowImage !== 'FULL') problems.push(`binlog_row_image is ${info.binlogRowImage}, the feed needs FULL`);
    if (info.flavor === 'mariadb' && info.binlogRowMetadata !== 'FULL') problems.push(`binlog_row_metadata is ${info.binlogRowMetadata}, the feed needs FULL (SET GLOBAL binlog_row_metadata = FULL)`);
    if (problems.length) throw refused(`feed ${name}: zone ${zone}'s master ${where0} cannot feed: ${problems.join('; ')}`);
    await ensureStateSchema(db0);
    const row = await db0.one<{ position: string; cluster: string; zone: string }>(`SELECT position, cluster, zone FROM ${quoteTable(STATE_SCHEMA, FEED_TABLE)} WHERE feed = ?`, [name]);
    if (row && (row.cluster !== cluster || row.zone !== zone)) {
      throw refused(`feed ${name} is stored as the feed of cluster ${row.cluster} zone ${row.zone}, not ${cluster} zone ${zone}`, { hint: 'choose another --name' });
    }
    if (row) {
      if (o.fromGtid !== undefined && o.fromGtid !== row.position) ctx.log.warn(`feed ${name}: resuming from its stored position ${row.position}; --from-gtid ${o.fromGtid} is ignored (delete its row in ${STATE_SCHEMA}.${FEED_TABLE} to start over)`);
      start = row.position;
    } else {
      start = o.fromGtid ?? info.gtidBinlogPos;
      try {
        new SourcePosition(info.flavor, start);
      } catch (e) {
        throw badInput(`--from-gtid ${JSON.stringify(start)}: ${(e as Error).message}`);
      }
    }
    await checkNotPurged(db0, info.flavor, name, zone, where0, start);
    if (!row) {
      await db0.exec(`INSERT INTO ${quoteTable(STATE_SCHEMA, FEED_TABLE)} (feed, cluster, zone, position) VALUES (?, ?, ?, ?)`, [name, cluster, zone, start]);
      ctx.log.info(`feed ${name}: new; starting after ${start || '(the oldest binlog)'}`);
    } else {
      ctx.log.info(`feed ${name}: resuming after ${start || '(the oldest binlog)'}`);
    }
  } catch (e) {
    // refused before anything was read: the job leaves no trace
    await job?.release().catch(() => undefined);
    throw e;
  } finally {
    await db0.close();
  }

  // ---- state shared by the reader, the sender and the control socket
  let acked = start;
  let storedAt = Date.now();
  let foreignSinceStore = false;
  let readPos = start;
  let queue: QueuedTx[] = [];
  let queuedEvents = 0;
  let stream: BinlogStream | undefined;
  let readingPaused = false;
  let paused = false;
  let stopping = false;
  let state: FeedStatus['state'] = 'starting';
  let readingFrom = topo.master(cluster, zone).name;
  let retries = 0;
  let lastError: FeedStatus['lastError'] = null;
  let eventsDelivered = 0;
  let batchesDelivered = 0;
  let lagMs: number | null = null;
  let deliveryMs: number | null = null;
  const rate: Array<[number, number]> = []; // [at, events] of recent acks
  let wake: (() => void) | undefined;
  const poke = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const status = (): FeedStatus => {
    const now = Date.now();
    while (rate.length && rate[0]![0] < now - 10_000) rate.shift();
    const n = rate.reduce((a, [, k]) => a + k, 0);
    const span = rate.length ? Math.max(1000, now - rate[0]![0]) : 10_000;
    return {
      name, cluster, zone, state, sink: sink.target, position: acked, readPosition: readPos,
      eventsDelivered, batchesDelivered, eventsPerSecond: Math.round((n * 1000) / span),
      lagMs, deliveryMs, queuedEvents, readingPaused, retries, lastError,
      jobId: job && !job.signal.aborted ? job.id : null, master: readingFrom, host: hostname(), pid: process.pid,
    };
  };
  const setReading = (on: boolean) => {
    if (!stream) return;
    if (on && readingPaused) {
      readingPaused = false;
      stream.resume();
    } else if (!on && !readingPaused) {
      readingPaused = true;
      stream.pause();
    }
  };

  /**
   * Stores the position on the master read; false when that master is read-only now (demoted by a
   * switch): the row is not written there (a transaction of its own on a demoted master would be one
   * the new master never has), the session ends and the next one stores it on the new master.
   */
  const store = async (db: Db, pos: string, lastGtid: string | null, events: number): Promise<boolean> => {
    const r = await db.exec(`UPDATE ${quoteTable(STATE_SCHEMA, FEED_TABLE)} SET position = ?, last_gtid = COALESCE(?, last_gtid), events = events + ? WHERE feed = ? AND @@global.read_only = 0`, [pos, lastGtid, events, name]);
    if (r.affectedRows === 0) return false;
    storedAt = Date.now();
    foreignSinceStore = false;
    return true;
  };
  const progress = () => {
    job?.setPhase(state);
    job?.progress({ rows: eventsDelivered, events: eventsDelivered, eventsPerSecond: status().eventsPerSecond, lagMs, position: acked, master: readingFrom });
  };
  // the topology file names the zone's master: a switch (emha switch, drc repoint) edits it
  let topoSeen = 0;
  const masterMoved = (node: ResolvedNode): ResolvedNode | undefined => {
    let m: number;
    try {
      m = statSync(topo.path).mtimeMs;
    } catch {
      return undefined;
    }
    if (m === topoSeen) return undefined;
    topoSeen = m;
    try {
      const now = loadTopology(topo.path).master(cluster, zone);
      return now.name !== node.name || now.port !== node.port || now.host !== node.host ? now : undefined;
    } catch {
      return undefined; // a file being written: looked at again at the next change
    }
  };
  let leaseSuspect = false;

  // ---- one session: connect, read, deliver; ends on an error (retried) or stop
  const session = async (): Promise<void> => {
    topoSeen = statSync(topo.path, { throwIfNoEntry: false })?.mtimeMs ?? 0;
    topo = loadTopology(topo.path); // follows `drc repoint` and `emha switch` of this zone's master
    const node = topo.master(cluster, zone);
    const where = `${node.name} (${describeAddress(node)})`;
    readingFrom = node.name;
    const ep = await ctx.endpoint(node);
    const db = await ctx.connect(node);
    let failed: ((e: Error) => void) | undefined;
    const failure = new Promise<never>((_, reject) => (failed = reject));
    failure.catch(() => undefined);
    try {
      // a demoted master (a switch under way, the file not yet edited): wait for the file to name
      // the new one; reading it on would find nothing new and storing there would be an errant write
      let saidRo = false;
      while (!stopping && Number(await db.value('SELECT @@global.read_only')) === 1) {
        if (!saidRo) ctx.log.warn(`feed ${name}: zone ${zone}'s master ${where} is read-only (demoted?): waiting for the topology file to name the zone's master (the position stays at ${acked})`);
        saidRo = true;
        state = 'retrying';
        await sleep(250);
        if (masterMoved(node)) return;
      }
      if (stopping) return;
      if (!job || job.signal.aborted || leaseNode !== addr(node) || leaseSuspect) await takeLease(node, false);
      leaseSuspect = false;
      onLeaseLost = (e) => failed?.(e);
      await checkNotPurged(db, flavor, name, zone, where, acked);
      queue = [];
      queuedEvents = 0;
      readPos = acked;
      const read = new SourcePosition(flavor, acked);
      const skipBelow = new SourcePosition(flavor, acked);
      readingPaused = false;
      stream = new BinlogStream({
        endpoint: ep,
        flavor,
        from: acked,
        serverId: 2_000_000_000 + (createHash('sha1').update(`feed:${name}`).digest().readUInt32BE(0) % 1_000_000_000),
        connectTimeoutMs: ctx.opts.connectTimeout * 1000,
        decodeTable: (s, t) => follow(s, t) || (s === STATE_SCHEMA && t === FEED_TABLE),
        onTx: (tx: BinlogTx) => {
          if (skipBelow.covers(tx.gtid)) return;
          read.advance(tx.gtid);
          readPos = read.toString();
          if (!tx.changes.every((c) => c.schema === STATE_SCHEMA && c.table === FEED_TABLE)) foreignSinceStore = true;
          const events = shapeTx(tx, follow, origins);
          queue.push({ gtid: tx.gtid, pos: readPos, events, ts: tx.timestampMs, readAt: Date.now() });
          queuedEvents += Math.max(1, events.length);
          if (queuedEvents >= maxQueue) setReading(false);
          poke();
        },
        onError: (e) => failed!(new Error(`binlog of ${where}: ${e.message}`)),
      });
      await Promise.race([stream.start(), failure]);
      if (paused) setReading(false);
      state = paused ? 'paused' : 'running';
      ctx.log.debug(`feed ${name}: reading ${where} after ${acked}, delivering to ${sink.target}`);
      let backoff = 100;
      progress();
      for (;;) {
        if (stopping) return;
        const moved = masterMoved(node);
        if (moved) {
          ctx.log.info(`feed ${name}: zone ${zone}'s master is now ${moved.name} (${describeAddress(moved)}) in the topology file; reading it from ${acked} (${queuedEvents} events read and not acknowledged are read again there)`);
          return;
        }
        if (paused || queue.length === 0) {
          // nothing to send: store how far the reader got over other transactions, now and then,
          // so a quiet feed's position does not fall behind the binlogs kept
          if (!paused && foreignSinceStore && readPos !== acked && Date.now() - storedAt > 10_000) {
            const p = readPos;
            if (!(await store(db, p, null, 0))) return; // demoted: the next session waits for the file to name the new master
            acked = p;
          }
          await Promise.race([new Promise<void>((r) => (wake = r)), sleep(1000), failure]);
          continue;
        }
        const n = takeBatch(queue, batchMax);
        const batch = queue.slice(0, n);
        const events = batch.flatMap((t) => t.events);
        if (events.length) {
          try {
            await Promise.race([sink.send(events), failure]);
          } catch (e) {
            if (stopping) return;
            if ((e as Error).message.startsWith('binlog of ')) throw e;
            retries++;
            lastError = { message: (e as Error).message, at: new Date().toISOString() };
            state = 'retrying';
            ctx.log.warn(`feed ${name}: ${(e as Error).message}; ${events.length} events held, retrying in ${(backoff / 1000).toFixed(1)} s (the position stays at ${acked})`);
            await Promise.race([sleep(backoff), failure]);
            backoff = Math.min(10_000, backoff * 2);
            continue;
          }
        }
        backoff = 100;
        if (state === 'retrying') {
          state = paused ? 'paused' : 'running';
          ctx.log.info(`feed ${name}: ${sink.target} takes events again`);
        }
        const last = batch[n - 1]!;
        // acknowledged: the position advances here even when the master read is demoted meanwhile
        // (then stored on the new master by the next session)
        const stored = events.length ? await store(db, last.pos, last.gtid, events.length - batch.filter((t) => t.events.length).length) : true;
        acked = last.pos;
        const now = Date.now();
        const withEvents = batch.filter((t) => t.events.length);
        if (withEvents.length) {
          lagMs = now - withEvents[withEvents.length - 1]!.ts;
          deliveryMs = now - withEvents[0]!.readAt;
          const rows = events.filter((e) => e.type !== 'commit').length;
          eventsDelivered += rows;
          batchesDelivered++;
          rate.push([now, rows]);
        }
        queue.splice(0, n);
        queuedEvents -= batch.reduce((a, t) => a + Math.max(1, t.events.length), 0);
        if (queuedEvents < maxQueue / 2 && !paused) setReading(true);
        progress();
        if (!stored) {
          ctx.log.warn(`feed ${name}: zone ${zone}'s master ${where} turned read-only: the position ${acked} is kept here until the zone's master takes it`);
          return;
        }
      }
    } finally {
      onLeaseLost = undefined;
      const s = stream;
      stream = undefined;
      await s?.stop();
      await db.close().catch(() => undefined);
    }
  };

  let server: Server | undefined;
  let metrics: Server | undefined;
  let done: (() => void) | undefined;
  const finished = new Promise<void>((r) => (done = r));
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    poke();
    await finished;
  };
  if (o.metricsPort) {
    try {
      metrics = await (await import('./feed-metrics.js')).serveFeedMetrics(o.metricsPort, { cluster, zone, feed: name }, status);
    } catch (e) {
      await job?.release().catch(() => undefined);
      throw e;
    }
  }
  server = await serveJob(sock, feedJob, {
    status: () => status(),
    pause: () => {
      paused = true;
      state = 'paused';
      setReading(false);
      return status();
    },
    resume: () => {
      paused = false;
      if (state === 'paused') state = 'running';
      if (queuedEvents < maxQueue) setReading(true);
      poke();
      return status();
    },
    stop: () => {
      setImmediate(() => void stop());
      return status();
    },
  });
  const offInterrupt = onInterrupt(stop);
  ctx.log.info(`feed ${name}: zone ${zone} of cluster ${cluster} → ${sink.target}; job ${job?.id}; control socket ${sock}${o.metricsPort ? `; metrics on 127.0.0.1:${o.metricsPort}/metrics` : ''}`);
  let ended: unknown;
  try {
    let backoff = 500;
    while (!stopping) {
      try {
        await session();
        backoff = 500;
      } catch (e) {
        if (stopping) break;
        // refused (a purged position, a live holder of the lease) or bad input: never skipped; a
        // runtime error (its master unreachable: "cannot connect") is ridden out like DRC does
        if (e instanceof EzError && e.exitCode !== ExitCode.runtime) throw e;
        // the lease's renewals ride connections of their own to the same server: after a failed
        // session they may be dead too; the next session takes the lease again (the same job)
        leaseSuspect = true;
        lastError = { message: (e as Error).message, at: new Date().toISOString() };
        state = 'retrying';
        ctx.log.warn(`feed ${name}: ${(e as Error).message}; reconnecting in ${(backoff / 1000).toFixed(1)} s from ${acked}`);
        await sleep(backoff);
        backoff = Math.min(30_000, backoff * 2);
      }
    }
  } catch (e) {
    ended = e;
    throw e;
  } finally {
    state = 'stopped';
    offInterrupt();
    if (job) await (ended ? job.fail(ended) : job.finish('done')).catch(() => undefined);
    metrics?.close();
    await sink.close().catch(() => undefined);
    await new Promise<void>((r) => server!.close(() => r()));
    done!();
  }
  return status();
}

/** `drc feed status|pause|resume|stop`: through the running feed's control socket. */
export async function drcFeedControl(ctx: Ctx, o: { cluster?: string; zone?: string; name?: string }, cmd: 'status' | 'pause' | 'resume' | 'stop'): Promise<FeedStatus> {
  const topo = await ctx.topology();
  const { name: cluster } = topo.cluster(o.cluster);
  if (!o.name && !o.zone) throw badInput(`drc feed ${cmd} needs --name, or --zone (the feed named <cluster>-<zone>)`);
  const name = feedName(cluster, o.zone ?? '', o.name);
  const sock = feedSocket(topo, name);
  if (!(await controlAlive(sock))) {
    // not on this host: the lease rows say where it runs (every zone's master: --name alone does not say the zone)
    const zones = o.zone ? [o.zone] : topo.zonesOf(cluster);
    const dbs: Array<{ zone: string; db: Db }> = [];
    try {
      for (const z of zones) {
        try {
          dbs.push({ zone: z, db: await ctx.connect(topo.master(cluster, z)) });
        } catch (e) {
          ctx.log.warn(`zone ${z}'s master does not answer (${(e as Error).message}): a feed holding its lease there is not seen`);
        }
      }
      const [h] = await liveHolders(dbs, cluster, [feedTarget(name)]);
      if (h && !(h.host === hostname() && h.pid === process.pid)) {
        throw runtimeError(`feed ${name} does not run on this host: it runs on host ${h.host}, pid ${h.pid} (zone ${h.zone}: ${describeLive(h)})`, {
          hint: `run \`ezctl drc feed ${cmd} --name ${name}\` on ${h.host}; \`ezctl jobs\` lists it`,
        });
      }
    } finally {
      await Promise.all(dbs.map((d) => d.db.close().catch(() => undefined)));
    }
  }
  return sendJob({ kind: feedJob, path: sock, job: `feed ${name}`, fix: `start it with \`ezctl drc feed --zone <zone>${o.name ? ` --name ${name}` : ''}\`` }, cmd);
}

export function renderFeedStatus(s: FeedStatus): string {
  return [
    `feed ${s.name} (cluster ${s.cluster}, zone ${s.zone}) → ${s.sink}: ${s.state}`,
    `  job ${s.jobId ?? '- (no lease held: its master does not answer)'}; reading ${s.master}; host ${s.host}, pid ${s.pid}`,
    `  position (acknowledged): ${s.position || '(empty)'}`,
    `  read:                    ${s.readPosition || '(empty)'}${s.readingPaused ? ' (reading paused)' : ''}`,
    `  delivered: ${s.eventsDelivered} row events in ${s.batchesDelivered} batches; ${s.eventsPerSecond} events/s; queued ${s.queuedEvents}`,
    `  lag commit→ack: ${s.lagMs === null ? '-' : `${s.lagMs} ms`}; read→ack: ${s.deliveryMs === null ? '-' : `${s.deliveryMs} ms`}; retries ${s.retries}`,
    ...(s.lastError ? [`  last error: ${s.lastError.message} (${s.lastError.at})`] : []),
  ].join('\n');
}
