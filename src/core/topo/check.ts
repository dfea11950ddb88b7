// ezctl topo check: does what runs match the file, and does it give DRC and the other tools what
// they need? One problem per line; any problem of severity "error" makes the command exit 4.
import type { Ctx } from '../context.js';
import type { ResolvedNode } from '../config/load.js';
import { describeAddress, sameHost } from '../config/dsn.js';
import { SYSTEM_SCHEMAS } from '../db/introspect.js';
import { probeNodes, type NodeProbe } from './probe.js';
import { compileRules } from '../cluster/rules.js';
import { STATE_SCHEMA } from '../state/schema.js';
import { targetOf, zoneProxy } from '../proxy/index.js';

export interface Problem {
  node: string | null;
  check: string;
  severity: 'error' | 'warning';
  message: string;
}

export interface CheckReport {
  ok: boolean;
  nodesChecked: number;
  tablesChecked: number;
  problems: Problem[];
}

interface TableFacts { schema: string; table: string; hasPk: boolean; tsType: string | null }

export async function topoCheck(ctx: Ctx, o: { cluster?: string }): Promise<CheckReport> {
  const topo = await ctx.topology();
  const clusters = o.cluster ? [topo.cluster(o.cluster).name] : topo.clusterNames;
  const problems: Problem[] = [];
  let nodesChecked = 0;
  let tablesChecked = 0;
  const serverIds = new Map<number, string>();
  for (const cluster of clusters) {
    const ts = topo.drcTimestampColumn(cluster);
    const config = topo.cluster(cluster).config;
    const dbs = config.databases;
    // Only what DRC replicates needs a key and the DRC column: the cluster's databases and its
    // drc include/exclude rules, the same matcher the daemon uses (ezctl's own _ezctl tables aside).
    const replicated = compileRules({ databases: dbs, include: config.drc?.include, exclude: config.drc?.exclude });
    const tables = new Map<string, TableFacts[]>();
    const probes = await probeNodes(ctx, topo.nodes(cluster), async (db, p) => {
      if (p.node.role !== 'master') return;
      const schemas = dbs ?? [];
      const filter = schemas.length ? `t.TABLE_SCHEMA IN (${schemas.map(() => '?').join(', ')})` : `t.TABLE_SCHEMA NOT IN (${SYSTEM_SCHEMAS.map(() => '?').join(', ')})`;
      const rows = await db.query<{ s: string; n: string; pk: string | number; ts: string | null }>(
        `SELECT t.TABLE_SCHEMA AS s, t.TABLE_NAME AS n,
                (SELECT COUNT(*) FROM information_schema.TABLE_CONSTRAINTS c
                  WHERE c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME AND c.CONSTRAINT_TYPE = 'PRIMARY KEY') AS pk,
                (SELECT k.COLUMN_TYPE FROM information_schema.COLUMNS k
                  WHERE k.TABLE_SCHEMA = t.TABLE_SCHEMA AND k.TABLE_NAME = t.TABLE_NAME AND k.COLUMN_NAME = ?) AS ts
           FROM information_schema.TABLES t
          WHERE t.TABLE_TYPE = 'BASE TABLE' AND ${filter}
          ORDER BY t.TABLE_SCHEMA, t.TABLE_NAME`,
        [ts, ...(schemas.length ? schemas : SYSTEM_SCHEMAS)],
      );
      tables.set(
        p.node.name,
        rows.filter((r) => r.s !== STATE_SCHEMA && replicated(r.s, r.n)).map((r) => ({ schema: r.s, table: r.n, hasPk: Number(r.pk) > 0, tsType: r.ts ? r.ts.toLowerCase() : null })),
      );
    });
    nodesChecked += probes.length;
    const add = (node: ResolvedNode | null, check: string, message: string, severity: Problem['severity'] = 'error') =>
      problems.push({ node: node ? `${node.cluster}/${node.name}` : null, check, severity, message });

    for (const p of probes) checkNode(p, add);
    for (const p of probes) {
      if (!p.info) continue;
      const prev = serverIds.get(p.info.serverId);
      if (prev) add(p.node, 'server_id', `server_id ${p.info.serverId} is also used by ${prev}`);
      else serverIds.set(p.info.serverId, `${p.node.cluster}/${p.node.name}`);
    }
    for (const zone of topo.zonesOf(cluster)) {
      const all = probes.filter((p) => p.node.zone === zone);
      const master = all.find((p) => p.node.role === 'master')!;
      // fenced nodes are checked by checkNode alone (read_only, no traffic), not as the zone's replicas
      const inZone = all.filter((p) => !p.node.fenced || p === master);
      const writable = inZone.filter((p) => p.info && !p.info.readOnly);
      if (inZone.every((p) => p.info)) {
        if (writable.length !== 1) {
          add(null, 'writable', `${cluster}/${zone}: ${writable.length} writable nodes (${writable.map((p) => p.node.name).join(', ') || 'none'}); expected exactly one, the master`);
        } else if (writable[0] !== master) {
          add(writable[0]!.node, 'writable', `is writable but the file says ${master.node.name} is the master of ${cluster}/${zone}`);
        }
      }
      for (const r of inZone.filter((p) => p.node.role === 'replica' && p.replication)) {
        const ch = r.replication!;
        if (ch.length === 0) {
          add(r.node, 'replication', `replicates from nobody; expected ${describeAddress(master.node)} (${master.node.name})`);
          continue;
        }
        const c = ch[0]!;
        if (!sameHost(c.sourceHost, master.node.host) || c.sourcePort !== master.node.port) {
          add(r.node, 'replication', `replicates from ${c.sourceHost}:${c.sourcePort}; the file says its master is ${describeAddress(master.node)} (${master.node.name})`);
        }
        if (c.ioState !== 'Yes' || c.sqlState !== 'Yes') {
          add(r.node, 'replication', `replication threads io=${c.ioState} sql=${c.sqlState}${c.lastIoError || c.lastSqlError ? `: ${c.lastIoError || c.lastSqlError}` : ''}`);
        }
      }
    }
    // A zone's proxy must run and send writes to the file's master (and to nothing else); in a
    // global cluster every zone's proxy sends them to the writer zone's master.
    for (const zone of topo.zonesOf(cluster)) {
      const px = zoneProxy(topo, cluster, zone);
      if (!px) continue;
      const h = await targetOf(px).health().catch((e: Error) => ({ up: false, problems: [e.message], write: null }));
      const where = `${cluster}/${zone}: the proxy (${px.write.host}:${px.write.port})`;
      if (!h.up) {
        add(null, 'proxy', `${where} is down: ${h.problems.join('; ')}`);
        continue;
      }
      for (const m of h.problems) add(null, 'proxy', `${where}: ${m}`);
      const writeZone = config.model === 'global' && config.writerZone ? config.writerZone : zone;
      const master = topo.master(cluster, writeZone).name;
      const says = writeZone === zone ? `the file says the master is ${master}` : `the file says writes go to ${master} (writerZone ${writeZone}, a global cluster)`;
      if (h.write && h.write.name !== master) add(null, 'proxy', `${where} sends writes to ${h.write.name}; ${says}`);
      if (!h.write && !h.problems.length) add(null, 'proxy', `${where} sends writes nowhere; ${says}`);
    }
    // Masters of different zones must write different GTID domains, or their GTIDs collide.
    const domains = new Map<number, string>();
    for (const p of probes.filter((x) => x.node.role === 'master' && x.info?.flavor === 'mariadb')) {
      const d = p.info!.gtidDomainId!;
      const prev = domains.get(d);
      if (prev) add(p.node, 'gtid_domain_id', `gtid_domain_id ${d} is also the domain of ${prev}; each zone needs its own`);
      else domains.set(d, `${p.node.zone} (${p.node.name})`);
    }
    for (const [nodeName, list] of tables) {
      const node = probes.find((p) => p.node.name === nodeName)!.node;
      tablesChecked += list.length;
      for (const t of list) {
        const name = `${t.schema}.${t.table}`;
        if (!t.hasPk) add(node, 'primary_key', `table ${name} has no primary key (DRC, checks and schema changes need one)`);
        if (!t.tsType) add(node, 'drc_ts', `table ${name} has no ${ts} column (add it with \`ezctl migrate drc-ts\`)`);
        else if (!/^timestamp\(3\)/.test(t.tsType)) add(node, 'drc_ts', `table ${name}: ${ts} is ${t.tsType}, expected timestamp(3)`);
      }
    }
  }
  return { ok: !problems.some((p) => p.severity === 'error'), nodesChecked, tablesChecked, problems };
}

function checkNode(p: NodeProbe, add: (node: ResolvedNode | null, check: string, message: string, severity?: Problem['severity']) => void): void {
  // a fenced node (an old master after a failover) is out of the zone until `emha rejoin`: down or
  // replicating from nobody is what it is expected to be; writable is not
  if (p.node.fenced) {
    if (!p.info) add(p.node, 'fenced', `fenced, and down (${p.error ?? 'unreachable'}): it takes no traffic until \`ezctl emha rejoin\``, 'warning');
    else if (!p.info.readOnly) add(p.node, 'fenced', 'fenced but writable: it must never take writes again (SET GLOBAL read_only = 1), until `ezctl emha rejoin`');
    else add(p.node, 'fenced', 'fenced (read_only): it takes no traffic until `ezctl emha rejoin`', 'warning');
    return;
  }
  if (!p.info) {
    add(p.node, 'reachable', p.error ?? 'unreachable');
    return;
  }
  const i = p.info;
  if (!i.logBin) add(p.node, 'log_bin', 'log_bin is OFF; DRC reads the binlog (start the server with --log-bin)');
  if (i.binlogFormat !== 'ROW') add(p.node, 'binlog_format', `binlog_format is ${i.binlogFormat}, expected ROW`);
  if (i.binlogRowImage !== 'FULL') add(p.node, 'binlog_row_image', `binlog_row_image is ${i.binlogRowImage}, expected FULL`);
  if (i.binlogRowMetadata !== null && i.binlogRowMetadata !== 'FULL') {
    add(p.node, 'binlog_row_metadata', `binlog_row_metadata is ${i.binlogRowMetadata}; FULL lets the binlog reader map columns by name`, 'warning');
  }
  if (!i.logReplicaUpdates) add(p.node, 'log_slave_updates', 'log_slave_updates is OFF: after a promotion this node\'s binlog would miss replicated changes');
  if (p.node.role === 'master' && (p.replication?.length ?? 0) > 0) {
    const c = p.replication![0]!;
    add(p.node, 'replication', `the master replicates from ${c.sourceHost}:${c.sourcePort}; zones should be linked by DRC, not native replication`, 'warning');
  }
}
