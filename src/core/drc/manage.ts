// The manager side of DRC: status, pause, resume, stop, repoint and wait, for a cluster whose
// daemon runs on this host (control socket) or anywhere (checkpoints in `_ezctl`).
import type { Ctx } from '../context.js';
import { badInput, refused, runtimeError } from '../exit.js';
import { parseConnectionString, describeAddress, redactConnectionString } from '../config/dsn.js';
import { endpointFrom, connect } from '../db/connect.js';
import { serverInfo } from '../db/server.js';
import { parseMariaPos, parseMysqlSet, mysqlCovers } from '../db/gtid.js';
import { quoteTable } from '../db/quote.js';
import { STATE_SCHEMA } from '../state/schema.js';
import { controlAlive, sendControl } from '../control/socket.js';
import { CHECKPOINT_TABLE } from '../cluster/tables.js';
import { pidAlive } from '../process/pids.js';
import { drcSocket, type DaemonStatus } from './daemon.js';
import type { PipelineStatus } from './pipeline.js';
import type { Topology } from '../config/load.js';
import { editTopologyFile, setZoneMaster } from '../config/editor.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function daemonSocket(ctx: Ctx, clusterName?: string): Promise<{ topo: Topology; cluster: string; sock: string; alive: boolean }> {
  const topo = await ctx.topology();
  const { name: cluster } = topo.cluster(clusterName);
  const sock = drcSocket(topo, cluster);
  return { topo, cluster, sock, alive: await controlAlive(sock) };
}

export interface DrcStatusReport extends DaemonStatus {
  /** true when the daemon runs and every direction is running: `drc status` exits 0 only then */
  healthy: boolean;
  /** one line per reason it is not healthy */
  problems: string[];
}

/**
 * What keeps DRC from being healthy: no daemon, or a direction that is not 'running'
 * (starting, paused, retrying after a connection failure, stopped by an error, stopped).
 */
export function drcProblems(s: DaemonStatus): string[] {
  const out: string[] = [];
  if (!s.running) out.push(`DRC for cluster ${s.cluster} is not running`);
  for (const d of s.directions) {
    if (d.state === 'running') continue;
    const why = d.lastError ? `: ${d.lastError}${d.lastErrorAt ? ` (at ${d.lastErrorAt})` : ''}` : '';
    out.push(`${d.from}->${d.to} is ${d.state}${why}`);
  }
  if (s.running && s.directions.length === 0) out.push('the daemon runs no direction');
  return out;
}

/** Status from the running daemon; when none runs, what the checkpoints in each zone say. */
export async function drcStatus(ctx: Ctx, o: { cluster?: string }): Promise<DrcStatusReport> {
  const s = await daemonStatus(ctx, o);
  const problems = drcProblems(s);
  return { ...s, healthy: problems.length === 0, problems };
}

async function daemonStatus(ctx: Ctx, o: { cluster?: string }): Promise<DaemonStatus> {
  const { topo, cluster, sock, alive } = await daemonSocket(ctx, o.cluster);
  if (alive) return { ...((await sendControl(sock, { cmd: 'status' })) as DaemonStatus), cluster };
  const zones = topo.zonesOf(cluster);
  const directions: PipelineStatus[] = [];
  for (const to of zones) {
    const node = topo.master(cluster, to);
    let rows: Array<{ pipeline: string; p: string; n: string }> = [];
    let err: string | null = null;
    let errAt: string | null = null;
    try {
      const db = await ctx.connect(node);
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
        appliedTx: 0, appliedRows: 0, conflicts: 0, illegalWrites: 0, ddlSeen: 0, droppedTx: 0, queue: 0, lastError: err, lastErrorAt: errAt,
      });
    }
  }
  return { cluster, running: false, pid: null, startedAt: null, directions };
}

export async function drcControl(ctx: Ctx, o: { cluster?: string; direction?: string }, cmd: 'pause' | 'resume'): Promise<DaemonStatus> {
  const { cluster, sock, alive } = await daemonSocket(ctx, o.cluster);
  if (!alive) throw runtimeError(`DRC for cluster ${cluster} is not running on this host (no answer on ${sock})`, { hint: 'start it with `ezctl drc start --detach`' });
  const args = o.direction ? { direction: o.direction } : {};
  try {
    return { ...((await sendControl(sock, { cmd, args })) as DaemonStatus), cluster };
  } catch (e) {
    throw badInput((e as Error).message);
  }
}

export async function drcStop(ctx: Ctx, o: { cluster?: string; timeoutMs?: number }): Promise<{ cluster: string; stopped: boolean; pid: number | null }> {
  const { cluster, sock, alive } = await daemonSocket(ctx, o.cluster);
  if (!alive) {
    ctx.log.info(`DRC for cluster ${cluster} is not running`);
    return { cluster, stopped: false, pid: null };
  }
  const r = (await sendControl(sock, { cmd: 'stop' })) as { pid: number };
  const timeoutMs = o.timeoutMs ?? 60_000;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!pidAlive(r.pid)) return { cluster, stopped: true, pid: r.pid };
    await sleep(100);
  }
  throw runtimeError(`DRC for cluster ${cluster} (pid ${r.pid}) did not stop within ${timeoutMs / 1000} s`);
}

/**
 * After a master switch in a zone: the topology file names the new master (the old one takes
 * its place among the replicas when it was one), and a running daemon reconnects every
 * direction that reads from or writes to the zone, from its checkpoint.
 */
export async function drcRepoint(ctx: Ctx, o: { cluster?: string; zone: string; master: string }): Promise<{ cluster: string; zone: string; oldMaster: string; newMaster: string; daemon: boolean }> {
  const topo = await ctx.topology();
  const { name: cluster, config } = topo.cluster(o.cluster);
  if (!(o.zone in config.zones)) throw badInput(`cluster ${cluster} has no zone ${JSON.stringify(o.zone)}`, { hint: `zones: ${topo.zonesOf(cluster).join(', ')}` });
  let addr: { host: string; port?: number };
  try {
    addr = parseConnectionString(o.master);
  } catch (e) {
    throw badInput(`--master ${JSON.stringify(redactConnectionString(o.master))}: ${(e as Error).message}`);
  }
  const port = addr.port ?? 3306;
  const old = topo.master(cluster, o.zone);
  const ep = await endpointFrom({ host: addr.host, port, label: `new master ${addr.host}:${port}` }, old.credentials, topo.dir, ctx.secrets());
  const db = await connect(ep, { timeoutMs: ctx.opts.connectTimeout * 1000 });
  try {
    const info = await serverInfo(db);
    if (info.readOnly) throw refused(`${addr.host}:${port} is read_only; promote it first (SET GLOBAL read_only = 0), then repoint`);
    if (!info.logBin || info.binlogFormat !== 'ROW') throw refused(`${addr.host}:${port} has no ROW binlog; DRC cannot read it`);
  } finally {
    await db.close();
  }
  // Rewrite the file through the YAML document, so comments and layout survive; never write a file that would not load.
  editTopologyFile(topo.path, (doc) => setZoneMaster(doc, cluster, o.zone, { host: addr.host, port }));
  ctx.log.info(`${topo.path}: zone ${o.zone} master ${describeAddress(old)} → ${addr.host}:${port}`);
  const sock = drcSocket(topo, cluster);
  let daemon = false;
  if (await controlAlive(sock)) {
    await sendControl(sock, { cmd: 'repoint', args: { zone: o.zone } });
    daemon = true;
  }
  return { cluster, zone: o.zone, oldMaster: describeAddress(old), newMaster: `${addr.host}:${port}`, daemon };
}

/**
 * `drc wait`: everything A's master had committed when the command started is applied at B.
 * Reads only the servers (A's position, the checkpoint at B), so it works from any host.
 */
export async function drcWait(ctx: Ctx, o: { cluster?: string; from: string; to: string; timeoutMs: number }): Promise<{ cluster: string; from: string; to: string; target: string; reached: string; waitedMs: number }> {
  const topo = await ctx.topology();
  const { name: cluster } = topo.cluster(o.cluster);
  for (const z of [o.from, o.to]) if (!topo.zonesOf(cluster).includes(z)) throw badInput(`cluster ${cluster} has no zone ${JSON.stringify(z)}`, { hint: `zones: ${topo.zonesOf(cluster).join(', ')}` });
  if (o.from === o.to) throw badInput('--from and --to name the same zone');
  const t0 = Date.now();
  const src = await ctx.connect(topo.master(cluster, o.from));
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
  const dst = await ctx.connect(topo.master(cluster, o.to));
  const pipeline = `${cluster}:${o.from}->${o.to}`;
  let reached = '';
  try {
    for (;;) {
      reached = String((await dst.value(`SELECT source_position FROM ${quoteTable(STATE_SCHEMA, CHECKPOINT_TABLE)} WHERE pipeline = ?`, [pipeline]).catch(() => '')) ?? '');
      if (reached && covered(reached)) break;
      if (Date.now() - t0 > o.timeoutMs) {
        throw refused(`zone ${o.to} has not applied everything zone ${o.from} had committed (${target}) within ${(o.timeoutMs / 1000).toFixed(1)} s`, {
          details: [`applied at ${o.to}: ${reached || '(no checkpoint: is DRC running?)'}`],
          hint: '`ezctl drc status` shows lag and errors',
        });
      }
      await sleep(50);
    }
  } finally {
    await dst.close();
  }
  return { cluster, from: o.from, to: o.to, target, reached, waitedMs: Date.now() - t0 };
}
