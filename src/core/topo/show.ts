// ezctl topo show: one row per node.
import type { Ctx } from '../context.js';
import { describeAddress } from '../config/dsn.js';
import { table } from '../ui/table.js';
import { probeNodes } from './probe.js';

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
}

export async function topoShow(ctx: Ctx, o: { cluster?: string }): Promise<TopoRow[]> {
  const topo = await ctx.topology();
  const probes = await probeNodes(ctx, topo.nodes(o.cluster));
  return probes.map(({ node, info, replication, error }) => {
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
}

function shortVersion(r: TopoRow): string {
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
    r.source ?? '-',
    r.ioThread ? `${r.ioThread}/${r.sqlThread}` : '-',
    r.lagSeconds === null ? '-' : `${r.lagSeconds}s`,
    (r.error ?? r.lastError ?? '').slice(0, 80),
  ]));
}
