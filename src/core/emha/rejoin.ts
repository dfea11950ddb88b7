// `ezctl emha rejoin --cluster C --node N`: a fenced old master (or a replica a failover could not
// repoint) becomes a read_only replica of its zone's master, only when it has no transaction that
// master lacks; refused naming them otherwise. On success its fence is lifted (topology file, proxy)
// and it joins the zone's read pool.
//
// "Lacks" is judged per (domain, server) on @@gtid_binlog_state, not per domain on gtid_binlog_pos:
// after a failover the new master writes the zone's domain under its own server id and soon passes
// the old master's sequence numbers, so a per-domain comparison would find nothing missing while
// the old master still holds transactions nobody else has (measured: old 1-101-60, new 1-102-75).
import type { Ctx } from '../context.js';
import type { ResolvedNode } from '../config/load.js';
import { parseMariaPos, type Flavor } from '../db/gtid.js';
import { errantGtids, replicateFrom, replicatesFrom, replicationCredentials, replState } from '../db/replication.js';
import type { Db } from '../db/connect.js';
import { badInput, refused, runtimeError } from '../exit.js';
import { describeAddress } from '../config/dsn.js';
import { routingTarget } from '../proxy/index.js';
import { unfenceInFile } from './fence.js';
import { BinlogStream } from '../binlog/stream.js';
import { STATE_SCHEMA } from '../state/schema.js';
import type { Endpoint } from '../db/connect.js';

export interface RejoinOptions {
  cluster?: string;
  node: string;
  execute?: boolean;
  /** how long to wait for it to replicate (IO and SQL threads running) */
  timeoutMs?: number;
}

export interface RejoinReport {
  cluster: string;
  zone: string;
  node: string;
  master: string;
  fenced: boolean;
  /** transactions the node has that the master lacks (text ranges) */
  errant: string[];
  /** the rows those transactions wrote, read from the node's own binlog (the divergence `ezctl check` confirms) */
  errantRows: ErrantRows[];
  nodeBinlogState: string;
  masterBinlogState: string;
  execute: boolean;
  /** with --execute: it replicates from the master and its fence is lifted */
  rejoined: boolean;
  steps: string[];
}

export interface ErrantRows {
  table: string;
  /** row changes (insert, update, delete) of the errant transactions on this table */
  changes: number;
  /** the first keys, as pk=value pairs */
  keys: string[];
}

/** "1-101-29..83" / "1-101-29" → its domain, server and seq range; undefined for a text that names no exact range. */
export function parseRange(t: string): { domain: number; server: number; lo: bigint; hi: bigint } | undefined {
  const m = /^(\d+)-(\d+)-(\d+)(?:\.\.(\d+))?$/.exec(t);
  if (!m) return undefined;
  return { domain: Number(m[1]), server: Number(m[2]), lo: BigInt(m[3]!), hi: BigInt(m[4] ?? m[3]!) };
}

/**
 * The rows the errant transactions wrote, from the node's own binlog: one reader started just before
 * each range (every other domain from where the binlog ends), stopped once every range is read or
 * after timeoutMs. Tables of `_ezctl` (DRC's heartbeats) are left out.
 */
export async function errantRowsOf(ep: Endpoint, binlogPos: string, errant: string[], timeoutMs = 15_000): Promise<ErrantRows[]> {
  const ranges = errant.map(parseRange).filter((r): r is NonNullable<ReturnType<typeof parseRange>> => !!r);
  if (!ranges.length) return [];
  const pos = parseMariaPos(binlogPos);
  for (const r of ranges) {
    if (r.lo > 1n) pos.set(r.domain, { domain: r.domain, server: r.server, seq: r.lo - 1n });
    else pos.delete(r.domain);
  }
  const from = [...pos.values()].map((g) => `${g.domain}-${g.server}-${g.seq}`).join(',');
  const tables = new Map<string, { changes: number; keys: string[] }>();
  const seen = new Map<number, bigint>();
  const done = () => ranges.every((r) => (seen.get(r.domain) ?? 0n) >= r.hi);
  await new Promise<void>((resolve, reject) => {
    let started = false;
    let stopping = false;
    const finish = () => {
      if (stopping || !started) return;
      stopping = true;
      clearTimeout(timer);
      void stream.stop().then(() => resolve(), () => resolve());
    };
    const timer = setTimeout(() => {
      started = true;
      finish();
    }, timeoutMs);
    const stream: BinlogStream = new BinlogStream({
      endpoint: ep,
      flavor: 'mariadb',
      from,
      serverId: 1_900_000_000 + Math.floor(Math.random() * 100_000_000),
      onTx: (tx) => {
        if (tx.domain !== undefined) seen.set(tx.domain, tx.seq > (seen.get(tx.domain) ?? 0n) ? tx.seq : seen.get(tx.domain)!);
        const hit = ranges.some((r) => r.domain === tx.domain && r.server === tx.serverId && tx.seq >= r.lo && tx.seq <= r.hi);
        if (hit) {
          for (const c of tx.changes) {
            if (c.schema === STATE_SCHEMA) continue;
            const k = `${c.schema}.${c.table}`;
            const t = tables.get(k) ?? { changes: 0, keys: [] };
            t.changes++;
            const row = c.after ?? c.before ?? {};
            if (t.keys.length < 10 && c.pk.length) t.keys.push(c.pk.map((col) => `${col}=${String(row[col])}`).join(','));
            tables.set(k, t);
          }
        }
        if (done()) setImmediate(finish);
      },
      onError: (e) => {
        clearTimeout(timer);
        if (!stopping) reject(e);
      },
    });
    stream.start().then(() => {
      started = true;
      if (done()) finish();
    }, (e: unknown) => {
      clearTimeout(timer);
      reject(e);
    });
  });
  return [...tables].map(([table, t]) => ({ table, changes: t.changes, keys: t.keys })).sort((a, b) => (a.table < b.table ? -1 : 1));
}

/**
 * What `node` has that `master` lacks, per (domain, server id) from @@gtid_binlog_state (MariaDB):
 * for each server's last GTID in a domain, the sequence numbers past the master's last of the same
 * server. Pure.
 */
export function missingByServer(node: string, master: string): { text: string[]; count: bigint } {
  const parse = (s: string) => {
    const m = new Map<string, { domain: number; server: number; seq: bigint }>();
    for (const part of s.split(',').map((x) => x.trim()).filter(Boolean)) {
      const g = parseMariaPos(part).values().next().value;
      if (!g) continue;
      const k = `${g.domain}-${g.server}`;
      const prev = m.get(k);
      if (!prev || prev.seq < g.seq) m.set(k, g);
    }
    return m;
  };
  const a = parse(node);
  const b = parse(master);
  const domainsOfB = new Set([...b.values()].map((g) => g.domain));
  const text: string[] = [];
  let count = 0n;
  for (const [k, g] of [...a].sort()) {
    const have = b.get(k)?.seq;
    if (have !== undefined && have >= g.seq) continue;
    if (have !== undefined) {
      text.push(have + 1n === g.seq ? `${k}-${g.seq}` : `${k}-${have + 1n}..${g.seq}`);
      count += g.seq - have;
    } else if (!domainsOfB.has(g.domain)) {
      text.push(g.seq === 1n ? `${k}-1` : `${k}-1..${g.seq}`);
      count += g.seq;
    } else {
      // the master has the domain from other servers only: which of this server's are missing is not
      // known from the states; at least its last one
      text.push(`${k}-${g.seq} (and this server's earlier ones in domain ${g.domain})`);
      count += 1n;
    }
  }
  return { text, count };
}

async function binlogState(db: Db, flavor: Flavor): Promise<string> {
  if (flavor !== 'mariadb') return String(await db.value('SELECT @@gtid_executed')).replace(/\s+/g, '');
  return String(await db.value('SELECT @@gtid_binlog_state') ?? '').replace(/\s+/g, '');
}

export async function emhaRejoin(ctx: Ctx, o: RejoinOptions): Promise<RejoinReport> {
  const topo = await ctx.topology();
  const { name: cluster } = topo.cluster(o.cluster);
  const node = topo.node(cluster, o.node);
  if (!node) throw badInput(`cluster ${cluster} has no node ${JSON.stringify(o.node)}`, { hint: `nodes: ${topo.nodes(cluster).map((n) => n.name).join(', ')}` });
  if (node.role === 'master') throw refused(`${node.name} is zone ${node.zone}'s master in the topology file: nothing to rejoin`, { hint: 'rejoin names an old master (fenced) or a replica' });
  const master = topo.master(cluster, node.zone);
  if (master.fenced) throw refused(`zone ${node.zone}'s master ${master.name} is fenced: a failover of the zone is not finished`, { hint: 'resume the failover first (`ezctl emha failover --resume JOB`)' });
  const steps = [
    `SET GLOBAL read_only = 1 on ${node.name}, then CHANGE MASTER TO ${master.name} (${describeAddress(master)}) by GTID, START SLAVE`,
    `wait until its IO and SQL threads run`,
    ...(node.fenced ? [`lift its fence: the proxy (it may be routed to again; it joins the read pool) and the topology file's fenced list`] : [`add it to the zone's read pool`]),
  ];
  const ndb = await connectOrExplain(ctx, node, 'start it first (the sandbox: `ezctl sandbox up` restarts it read_only)');
  let mdb: Db | undefined;
  try {
    mdb = await connectOrExplain(ctx, master, 'the zone\'s master must answer');
    const [ns, ms] = await Promise.all([replState(ndb), replState(mdb)]);
    const [nState, mState] = await Promise.all([binlogState(ndb, ns.flavor), binlogState(mdb, ms.flavor)]);
    // the decision is M2's errantGtids (positions and binlog states); on MariaDB the names are the
    // per-server ranges (errantGtids names only the last GTID of a server a later position passed)
    const e = errantGtids(ns, ms);
    const named = ns.flavor === 'mariadb' ? missingByServer(nState, mState).text : [];
    const errant = e.empty && !named.length ? [] : named.length ? named : e.text;
    let errantRows: ErrantRows[] = [];
    if (errant.length && ns.flavor === 'mariadb') {
      try {
        errantRows = await errantRowsOf(await ctx.endpoint(node), ns.gtidBinlogPos, errant);
      } catch (e) {
        ctx.log.warn(`cannot read the rows of those transactions from ${node.name}'s binlog: ${(e as Error).message}`);
      }
    }
    const report: RejoinReport = { cluster, zone: node.zone, node: node.name, master: master.name, fenced: !!node.fenced, errant, errantRows, nodeBinlogState: nState, masterBinlogState: mState, execute: !!o.execute, rejoined: false, steps };
    if (errant.length) {
      const tables = errantRows.map((t) => t.table);
      throw refused(`${node.name} cannot rejoin zone ${node.zone}: it has ${errant.length === 1 ? 'a transaction' : 'transactions'} ${master.name} lacks: ${errant.join(', ')}`, {
        details: [
          ...errantRows.map((t) => `${t.table}: ${t.changes} row change${t.changes === 1 ? '' : 's'} only ${node.name} has (${t.keys.join('; ')}${t.changes > t.keys.length ? '; ...' : ''})`),
          `${node.name} @@gtid_binlog_state: ${nState || '(empty)'}`,
          `${master.name} @@gtid_binlog_state: ${mState || '(empty)'}`,
        ],
        hint: `those transactions were written to ${node.name} and never reached ${master.name} (lost in the failover; other zones' DRC may have applied them): compare the zones (\`ezctl check full --cluster ${cluster}${tables.length ? ` --tables ${tables.join(',')}` : ''}\`) and reconcile, then rebuild ${node.name} from ${master.name}; it stays fenced`,
      });
    }
    if (!o.execute) return report;
    const creds = await replicationCredentials(topo, cluster, ctx.secrets());
    await replicateFrom(ndb, { host: master.host, port: master.port }, creds ? { user: creds.user, ...(creds.password !== undefined ? { password: creds.password } : {}) } : {});
    const deadline = Date.now() + (o.timeoutMs ?? 30_000);
    for (;;) {
      const st = await replState(ndb);
      if (replicatesFrom(st, master)) break;
      if (st.replica?.lastIoError || st.replica?.lastSqlError || Date.now() > deadline) {
        throw runtimeError(`${node.name} does not replicate from ${master.name}: IO thread ${st.replica?.ioState ?? '-'}${st.replica?.lastIoError ? ` (${st.replica.lastIoError})` : ''}, SQL thread ${st.replica?.sqlState ?? '-'}${st.replica?.lastSqlError ? ` (${st.replica.lastSqlError})` : ''}`, { hint: 'it stays fenced; fix the cause and run rejoin again' });
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    const proxy = routingTarget(topo, cluster, node.zone);
    if (proxy) {
      if (node.fenced) await proxy.unfence(node.name);
      const h = await proxy.health();
      const pool = new Map(h.read.map((r) => [r.name, r]));
      pool.set(node.name, { name: node.name, host: node.host, port: node.port });
      await proxy.setReadPool([...pool.values()]);
    }
    if (node.fenced) unfenceInFile(topo, cluster, node.zone, node.name);
    report.rejoined = true;
    return report;
  } finally {
    await ndb.close().catch(() => undefined);
    await mdb?.close().catch(() => undefined);
  }
}

async function connectOrExplain(ctx: Ctx, n: ResolvedNode, hint: string): Promise<Db> {
  try {
    return await ctx.connect(n);
  } catch (e) {
    throw runtimeError(`cannot reach ${n.name} (${describeAddress(n)}): ${(e as Error).message}`, { hint });
  }
}

export function renderRejoin(r: RejoinReport): string {
  const out = [`rejoin ${r.node} under ${r.master} (zone ${r.zone})${r.fenced ? ', fenced now' : ''}`];
  out.push(`  ${r.node} @@gtid_binlog_state: ${r.nodeBinlogState || '(empty)'}`);
  out.push(`  ${r.master} @@gtid_binlog_state: ${r.masterBinlogState || '(empty)'}`);
  out.push(r.errant.length ? `  transactions ${r.master} lacks: ${r.errant.join(', ')}` : `  no transaction ${r.master} lacks`);
  if (r.rejoined) out.push(`${r.node} replicates from ${r.master}${r.fenced ? '; its fence is lifted' : ''}`);
  else {
    out.push(`steps${r.execute ? '' : ' (dry run: nothing changed; add --execute)'}:`);
    r.steps.forEach((s, i) => out.push(`  ${i + 1}. ${s}`));
  }
  return out.join('\n');
}
