// ezctl topo show: one row per node, and one per zone proxy (role "proxy") where the file names one.
import type { Ctx } from '../context.js';
import { describeAddress } from '../config/dsn.js';
import { table } from '../ui/table.js';
import { probeNodes } from './probe.js';
import { targetOf, zoneProxy } from '../proxy/index.js';

export interface TopoRow {
  cluster: string;
  zone: string;
  role: string;
  name: string;
  address: string;
  flavor: string | null;
  version: string | null;
  readOnly: boolean | null;
  gtid: string | null;
  source: string | null;
  ioThread: string | null;
  sqlThread: string | null;
  lagSeconds: number | null;
  lastError: string | null;
  error: string | null;
  /** a proxy row: its listeners, admin socket, and where the running proxy routes now */
  proxy?: { write: string; read: string | null; admin: string; writeTo: string | null; readPool: string[]; fenced: string[] };
}

export async function topoShow(ctx: Ctx, o: { cluster?: string }): Promise<TopoRow[]> {
  const topo = await ctx.topology();
  const probes = await probeNodes(ctx, topo.nodes(o.cluster));
  const rows = probes.map(({ node, info, replication, error }): TopoRow => {
    const ch = replication?.[0];
    return {
      cluster: node.cluster,
      zone: node.zone,
      role: node.role,
      name: node.name,
      address: describeAddress(node),
      flavor: info?.flavor ?? null,
      version: info ? info.version.replace(/-log$/, '') : null,
      readOnly: info ? info.readOnly : null,
      gtid: info ? info.gtidPosition : null,
      source: ch ? `${ch.sourceHost}:${ch.sourcePort}` : null,
      ioThread: ch ? ch.ioState : null,
      sqlThread: ch ? ch.sqlState : null,
      lagSeconds: ch ? ch.lagSeconds : null,
      lastError: ch ? ch.lastIoError || ch.lastSqlError || null : null,
      error: error ?? null,
    };
  });
  const clusters = o.cluster === undefined ? topo.clusterNames : [topo.cluster(o.cluster).name];
  for (const cluster of clusters) {
    for (const zone of topo.zonesOf(cluster)) {
      const p = zoneProxy(topo, cluster, zone);
      if (!p) continue;
      const h = await targetOf(p).health().catch((e: Error) => ({ up: false, problems: [e.message], write: null, read: [], fenced: [], version: null }));
      const write = `${p.write.host}:${p.write.port}`;
      const read = p.read ? `${p.read.host}:${p.read.port}` : null;
      // after the zone's nodes
      const at = rows.reduce((last, r, i) => (r.cluster === cluster && r.zone === zone ? i : last), rows.length - 1);
      rows.splice(at + 1, 0, {
        cluster, zone, role: 'proxy', name: `${zone}-proxy`,
        address: read ? `${write} (read ${read})` : write,
        flavor: null, version: h.version ? `HAProxy ${h.version}` : null, readOnly: null, gtid: null,
        source: h.write ? h.write.name : null,
        ioThread: null, sqlThread: null, lagSeconds: null,
        lastError: h.up && h.problems.length ? h.problems.join('; ') : null,
        error: h.up ? null : (h.problems[0] ?? 'down'),
        proxy: { write, read, admin: p.admin, writeTo: h.write?.name ?? null, readPool: h.read.map((n) => n.name), fenced: h.fenced },
      });
    }
  }
  return rows;
}

function shortVersion(r: TopoRow): string {
  if (r.role === 'proxy') return r.version ?? '-';
  const n = /^(\d+\.\d+\.\d+)/.exec(r.version ?? '')?.[1] ?? r.version;
  return `${r.flavor === 'mariadb' ? 'MariaDB' : 'MySQL'} ${n}`;
}

export function renderTopoShow(rows: TopoRow[]): string {
  const multi = new Set(rows.map((r) => r.cluster)).size > 1;
  const head = [...(multi ? ['cluster'] : []), 'zone', 'role', 'node', 'address', 'version', 'read_only', 'gtid', 'source', 'io/sql', 'lag', 'last error'];
  return table(head, rows.map((r) => [
    ...(multi ? [r.cluster] : []),
    r.zone, r.role, r.name, r.address,
    r.error ? 'unreachable' : shortVersion(r),
    r.readOnly === null ? '-' : r.readOnly ? 'ON' : 'OFF',
    r.gtid || '-',
    r.role === 'proxy' ? (r.source ? `writes -> ${r.source}` : 'writes -> none') : r.source ?? '-',
    r.ioThread ? `${r.ioThread}/${r.sqlThread}` : '-',
    r.lagSeconds === null ? '-' : `${r.lagSeconds}s`,
    (r.error ?? r.lastError ?? '').slice(0, 80),
  ]));
}
