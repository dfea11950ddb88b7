// `ezctl drc feed`: the change feed of one zone, for cache invalidation. It reads zone Z's OWN
// master binlog (local writes and what DRC applied there alike), so a cache in Z is invalidated
// only after Z has the row. At least once, ordered, resumable: the position stored in
// _ezctl.drc_feed_position (on Z's master, so Z's replicas have it too) advances only after the
// sink acknowledged a batch; a restart resumes after it.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Server } from 'node:net';
import type { Ctx } from '../context.js';
import { loadTopology, type Topology } from '../config/load.js';
import { describeAddress } from '../config/dsn.js';
import { compilePatterns, type TableMatcher } from '../config/patterns.js';
import { badInput, refused, runtimeError, EzError } from '../exit.js';
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
  if (await controlAlive(sock)) throw refused(`feed ${name} is already running (control socket ${sock})`, { hint: `\`ezctl drc feed status --name ${name}\` shows it` });
  // lease: once job/ has leases in _ezctl.jobs (issue 12), take the lease `drc-feed:<name>` here,
  // on zone Z's master, before reading, and give it up in stop(): one reader per feed name
  // whatever host runs it. Until then the control socket refuses a second feed on this host.

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
  const db0 = await ctx.connect(node0);
  let start: string;
  let flavor: 'mariadb' | 'mysql';
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

  const store = async (db: Db, pos: string, lastGtid: string | null, events: number) => {
    await db.exec(`UPDATE ${quoteTable(STATE_SCHEMA, FEED_TABLE)} SET position = ?, last_gtid = COALESCE(?, last_gtid), events = events + ? WHERE feed = ?`, [pos, lastGtid, events, name]);
    storedAt = Date.now();
    foreignSinceStore = false;
  };

  // ---- one session: connect, read, deliver; ends on an error (retried) or stop
  const session = async (): Promise<void> => {
    topo = loadTopology(topo.path); // follows `drc repoint` of this zone's master
    const node = topo.master(cluster, zone);
    const where = `${node.name} (${describeAddress(node)})`;
    const ep = await ctx.endpoint(node);
    const db = await ctx.connect(node);
    let failed: ((e: Error) => void) | undefined;
    const failure = new Promise<never>((_, reject) => (failed = reject));
    failure.catch(() => undefined);
    try {
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
      for (;;) {
        if (stopping) return;
        if (paused || queue.length === 0) {
          // nothing to send: store how far the reader got over other transactions, now and then,
          // so a quiet feed's position does not fall behind the binlogs kept
          if (!paused && foreignSinceStore && readPos !== acked && Date.now() - storedAt > 10_000) {
            const p = readPos;
            await store(db, p, null, 0);
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
        if (events.length) await store(db, last.pos, last.gtid, events.length - batch.filter((t) => t.events.length).length);
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
      }
    } finally {
      const s = stream;
      stream = undefined;
      await s?.stop();
      await db.close().catch(() => undefined);
    }
  };

  let server: Server | undefined;
  let done: (() => void) | undefined;
  const finished = new Promise<void>((r) => (done = r));
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    poke();
    await finished;
  };
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
  ctx.log.info(`feed ${name}: zone ${zone} of cluster ${cluster} → ${sink.target}; control socket ${sock}`);
  try {
    let backoff = 500;
    while (!stopping) {
      try {
        await session();
        backoff = 500;
      } catch (e) {
        if (stopping) break;
        if (e instanceof EzError) throw e; // refused (a purged position) or bad input: never skipped
        lastError = { message: (e as Error).message, at: new Date().toISOString() };
        state = 'retrying';
        ctx.log.warn(`feed ${name}: ${(e as Error).message}; reconnecting in ${(backoff / 1000).toFixed(1)} s from ${acked}`);
        await sleep(backoff);
        backoff = Math.min(30_000, backoff * 2);
      }
    }
  } finally {
    state = 'stopped';
    offInterrupt();
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
  return sendJob({ kind: feedJob, path: sock, job: `feed ${name}`, fix: `start it with \`ezctl drc feed --zone <zone>${o.name ? ` --name ${name}` : ''}\`` }, cmd);
}

export function renderFeedStatus(s: FeedStatus): string {
  return [
    `feed ${s.name} (cluster ${s.cluster}, zone ${s.zone}) → ${s.sink}: ${s.state}`,
    `  position (acknowledged): ${s.position || '(empty)'}`,
    `  read:                    ${s.readPosition || '(empty)'}${s.readingPaused ? ' (reading paused)' : ''}`,
    `  delivered: ${s.eventsDelivered} row events in ${s.batchesDelivered} batches; ${s.eventsPerSecond} events/s; queued ${s.queuedEvents}`,
    `  lag commit→ack: ${s.lagMs === null ? '-' : `${s.lagMs} ms`}; read→ack: ${s.deliveryMs === null ? '-' : `${s.deliveryMs} ms`}; retries ${s.retries}`,
    ...(s.lastError ? [`  last error: ${s.lastError.message} (${s.lastError.at})`] : []),
  ].join('\n');
}
