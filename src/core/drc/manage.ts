// The manager side of DRC: status, pause, resume, stop, repoint and wait, for a cluster whose
// daemon runs on this host (control socket) or anywhere (checkpoints in `_ezctl`).
import type { Ctx } from '../context.js';
import { badInput, refused } from '../exit.js';
import { parseConnectionString, describeAddress, redactConnectionString, sameHost } from '../config/dsn.js';
import { endpointFrom, connect } from '../db/connect.js';
import { serverInfo } from '../db/server.js';
import { editTopologyFile, setZoneMaster } from '../config/editor.js';
import { drcClient, DrcClient, type DaemonStatus, type DrcWaitResult } from './client.js';

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
  const s = await (await drcClient(ctx, o.cluster)).status();
  const problems = drcProblems(s);
  return { ...s, healthy: problems.length === 0, problems };
}

export async function drcControl(ctx: Ctx, o: { cluster?: string; direction?: string }, cmd: 'pause' | 'resume'): Promise<DaemonStatus> {
  const drc = await drcClient(ctx, o.cluster);
  return cmd === 'pause' ? drc.pause(o.direction) : drc.resume(o.direction);
}

export async function drcStop(ctx: Ctx, o: { cluster?: string; timeoutMs?: number }): Promise<{ cluster: string; stopped: boolean; pid: number | null }> {
  return (await drcClient(ctx, o.cluster)).stop(o.timeoutMs);
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
  const fenced = topo.nodes(cluster).find((n) => n.zone === o.zone && n.fenced && n.port === port && sameHost(n.host, addr.host));
  if (fenced) throw refused(`${addr.host}:${port} is ${fenced.name}, fenced in zone ${o.zone} (an old master after a failover): DRC never reads from or writes to a fenced node`, { hint: `rejoin it first (ezctl emha rejoin --cluster ${cluster} --node ${fenced.name}), or choose another master` });
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
  const daemon = await new DrcClient(ctx, topo, cluster).repoint(o.zone);
  return { cluster, zone: o.zone, oldMaster: describeAddress(old), newMaster: `${addr.host}:${port}`, daemon };
}

/**
 * `drc wait`: everything A's master had committed when the command started is applied at B.
 * Reads only the servers (A's position, the checkpoint at B), so it works from any host.
 */
export async function drcWait(ctx: Ctx, o: { cluster?: string; from: string; to: string; timeoutMs: number }): Promise<DrcWaitResult> {
  return (await drcClient(ctx, o.cluster)).wait(o.from, o.to, o.timeoutMs);
}
