// Replication primitives of one node, for the master switch and the failover (emha/): what a
// node's replication state is, which GTIDs one node has that another lacks (errant
// transactions), a bounded wait for a position, promoting a replica to a writable master, and
// pointing a node (a replica, or a former master) at a new master by GTID.
//
// MariaDB 10.11 facts these rely on are measured and written down in README ("Replication
// primitives", under the topology file); the short form:
//  - a former master continues from what its binlog holds: gtid_slave_pos is set to the per-domain
//    higher of gtid_slave_pos and gtid_binlog_pos, then MASTER_USE_GTID=slave_pos;
//  - RESET SLAVE ALL forgets the master but leaves gtid_slave_pos as it was;
//  - every node of a zone has the zone's gtid_domain_id, so a promoted replica writes in the
//    domain DRC knows as that zone's.
import type { Db, Endpoint, Row, SecretOptions } from './connect.js';
import { endpointFrom } from './connect.js';
import type { Flavor } from './gtid.js';
import { gtidBehind, gtidCovers, gtidDifference as difference, mariaDifference, mariaMerge, mariaStateExtra, parseMariaPos, formatMariaPos, type MariaPos, type GtidDifference } from './gtid.js';
import { flavorOf, normalizeReplicaRows, type ReplicaStatus } from './server.js';
import { expandPath, type Topology } from '../config/load.js';
import type { Credentials } from '../config/schema.js';
import { readDefaultsFile } from '../config/defaults-file.js';
import { sameHost } from '../config/dsn.js';
import { badInput, runtimeError, EzError, ExitCode } from '../exit.js';

export type { GtidDifference } from './gtid.js';

export interface NodeReplState {
  label: string;
  flavor: Flavor;
  serverId: number;
  /** MariaDB @@gtid_domain_id; null on MySQL */
  domainId: number | null;
  readOnly: boolean;
  logBin: boolean;
  logSlaveUpdates: boolean;
  binlogFormat: string;
  /** what its binlog holds (MariaDB @@gtid_binlog_pos, MySQL @@gtid_executed) */
  gtidBinlogPos: string;
  /** MariaDB @@gtid_current_pos, MySQL @@gtid_executed */
  gtidCurrentPos: string;
  /** MariaDB @@gtid_slave_pos, MySQL '' */
  gtidSlavePos: string;
  /** MariaDB @@gtid_binlog_state (the last GTID of every server in every domain of its binlog), MySQL @@gtid_executed */
  gtidBinlogState?: string;
  /** its default channel; null when it replicates from nobody */
  replica: ReplicaStatus | null;
  /** SQL_Delay */
  delaySeconds: number;
  /** @@version */
  version?: string;
}

const on = (v: unknown) => v === 1 || v === '1' || v === 'ON' || v === 'on' || v === 1n;
const clean = (v: unknown) => String(v ?? '').replace(/\s+/g, '');

async function channelRows(db: Db, flavor: Flavor): Promise<Row[]> {
  if (flavor === 'mariadb') return db.query('SHOW ALL SLAVES STATUS');
  try {
    return await db.query('SHOW REPLICA STATUS');
  } catch {
    return db.query('SHOW SLAVE STATUS');
  }
}

/** The default channel's row ('' on both flavors), or undefined when the node has none. */
async function defaultChannel(db: Db, flavor: Flavor): Promise<{ status: ReplicaStatus; row: Row } | undefined> {
  const rows = await channelRows(db, flavor);
  const statuses = normalizeReplicaRows(rows);
  const i = statuses.findIndex((s) => s.channel === '');
  if (i < 0) return undefined;
  return { status: statuses[i]!, row: rows[i]! };
}

export async function replState(db: Db): Promise<NodeReplState> {
  const base = await db.one<Row>(
    'SELECT @@version AS version, @@server_id AS server_id, @@read_only AS read_only, @@log_bin AS log_bin, @@log_slave_updates AS log_slave_updates, @@binlog_format AS binlog_format',
  );
  const version = String(base?.version ?? '');
  const flavor = flavorOf(version);
  const g =
    flavor === 'mariadb'
      ? await db.one<Row>('SELECT @@gtid_domain_id AS domain, @@gtid_binlog_pos AS binlog_pos, @@gtid_current_pos AS current_pos, @@gtid_slave_pos AS slave_pos, @@gtid_binlog_state AS binlog_state')
      : await db.one<Row>("SELECT NULL AS domain, @@gtid_executed AS binlog_pos, @@gtid_executed AS current_pos, '' AS slave_pos, @@gtid_executed AS binlog_state");
  const ch = await defaultChannel(db, flavor);
  // A channel with no master host is what MySQL shows after RESET REPLICA (without ALL): nobody.
  const replica = ch && ch.status.sourceHost ? ch.status : null;
  return {
    label: db.ep.label,
    flavor,
    serverId: Number(base?.server_id),
    domainId: g?.domain === null || g?.domain === undefined ? null : Number(g.domain),
    readOnly: on(base?.read_only),
    logBin: on(base?.log_bin),
    logSlaveUpdates: on(base?.log_slave_updates),
    binlogFormat: String(base?.binlog_format ?? ''),
    gtidBinlogPos: clean(g?.binlog_pos),
    gtidCurrentPos: clean(g?.current_pos),
    gtidSlavePos: clean(g?.slave_pos),
    gtidBinlogState: clean(g?.binlog_state),
    replica,
    delaySeconds: Number(ch?.row.SQL_Delay ?? 0) || 0,
    version,
  };
}

/** GTIDs `a` has that `b` lacks, in every domain. Pure. */
export function gtidDifference(flavor: Flavor, a: string, b: string): GtidDifference {
  return difference(flavor, a, b);
}

/** Everything a node holds: MariaDB per domain the higher of its binlog and current positions (and slave pos). */
export function heldPosition(s: NodeReplState): string {
  return s.flavor === 'mariadb' ? mariaMerge(s.gtidBinlogPos, s.gtidCurrentPos, s.gtidSlavePos) : s.gtidCurrentPos || s.gtidBinlogPos;
}

/**
 * What `node` has that `master` never had. MariaDB: per domain the seqs past everything the
 * master holds, and, from the two binlog states, a transaction of a server the master never
 * logged at that seq (an errant write the master's later writes have since passed: positions
 * alone no longer show it). The state comparison needs the master to log what it replicates
 * (log_slave_updates) — without it, its binlog state lacks what it received and is not used.
 */
export function errantGtids(node: NodeReplState, master: NodeReplState): GtidDifference {
  if (node.flavor !== 'mariadb') return difference(node.flavor, heldPosition(node), heldPosition(master));
  const masterHeld = heldPosition(master);
  const byPos = mariaDifference(parseMariaPos(heldPosition(node)), parseMariaPos(masterHeld));
  if (!node.gtidBinlogState || !master.gtidBinlogState || !master.logBin || !master.logSlaveUpdates) return byPos;
  const byState = mariaStateExtra(node.gtidBinlogState, master.gtidBinlogState, masterHeld);
  const text = [...byPos.text, ...byState.text];
  const count = byPos.count + byState.count;
  return { text, count, empty: count === 0n };
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(signal));
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(abortError(signal!));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function abortError(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  if (r instanceof Error) return r;
  return new EzError(ExitCode.interrupted, 'interrupted');
}

/** What the node has applied, for waiting: MariaDB per domain the higher of current and binlog positions. */
async function appliedPosition(db: Db, flavor: Flavor): Promise<string> {
  if (flavor === 'mariadb') {
    const r = await db.one<Row>('SELECT @@gtid_current_pos AS c, @@gtid_binlog_pos AS b');
    return mariaMerge(clean(r?.c), clean(r?.b));
  }
  return clean(await db.value('SELECT @@gtid_executed'));
}

/**
 * Bounded wait until the node has applied `position` (polls: every 5 ms at first, up to every
 * 100 ms). onProgress gets how many transactions it is still behind and where it is, at most
 * about every 100 ms and once more at the end. An aborted signal rejects with its reason.
 */
export async function waitApplied(
  db: Db,
  position: string,
  o: { timeoutMs: number; signal?: AbortSignal; onProgress?: (behind: bigint, at: string) => void },
): Promise<{ reached: boolean; at: string; waitedMs: number }> {
  const t0 = Date.now();
  const flavor = await dbFlavor(db);
  let pause = 5;
  let lastReport = 0;
  for (;;) {
    if (o.signal?.aborted) throw abortError(o.signal);
    const at = await appliedPosition(db, flavor);
    const reached = gtidCovers(flavor, at, position);
    const now = Date.now();
    const done = reached || now - t0 >= o.timeoutMs;
    if (o.onProgress && (done || now - lastReport >= 100)) {
      lastReport = now;
      o.onProgress(reached ? 0n : gtidBehind(flavor, at, position), at);
    }
    if (done) return { reached, at, waitedMs: now - t0 };
    const missing = flavor === 'mariadb' ? mariaMissing(at, position) : '';
    const slice = Math.min(missing ? 100 : pause, Math.max(1, o.timeoutMs - (now - t0)));
    if (missing) {
      // MariaDB: MASTER_GTID_WAIT returns the moment the SQL thread has applied the GTIDs still
      // missing (or after the slice: then the loop checks again, and a domain that only the
      // binlog would cover is still seen), instead of sleeping a fixed pause
      await db.value('SELECT MASTER_GTID_WAIT(?, ?)', [missing, slice / 1000]);
      if (o.signal?.aborted) throw abortError(o.signal);
    } else {
      await sleep(slice, o.signal);
    }
    pause = Math.min(100, pause * 2);
  }
}

/** The GTIDs of `position` that `at` does not cover yet (one per domain), '' when none. */
function mariaMissing(at: string, position: string): string {
  const a = parseMariaPos(at);
  const want = parseMariaPos(position);
  const out: MariaPos = new Map();
  for (const [d, g] of want) {
    const have = a.get(d);
    if (!have || have.seq < g.seq) out.set(d, g);
  }
  return formatMariaPos(out);
}

const flavors = new WeakMap<Db, Flavor>();

/** The server's flavor, asked once per connection (the steps of a switch reuse their connections). */
export async function dbFlavor(db: Db): Promise<Flavor> {
  let f = flavors.get(db);
  if (!f) {
    f = flavorOf(String(await db.value('SELECT @@version')));
    flavors.set(db, f);
  }
  return f;
}

const flavorOfDb = dbFlavor;

/**
 * Become a writable master: stop replicating, forget the master (RESET SLAVE ALL), read_only=0.
 * Idempotent. Applying what the relay log still holds is the caller's (wait with waitApplied
 * first): a stopped SQL thread loses nothing, but RESET SLAVE ALL deletes the relay logs.
 */
export async function promote(db: Db): Promise<void> {
  const flavor = await flavorOfDb(db);
  const ch = await defaultChannel(db, flavor);
  if (ch) {
    if (flavor === 'mariadb') {
      await db.exec("STOP SLAVE ''");
      await db.exec("RESET SLAVE '' ALL");
    } else {
      await db.exec("STOP REPLICA FOR CHANNEL ''");
      await db.exec("RESET REPLICA ALL FOR CHANNEL ''");
    }
  }
  if (flavor === 'mysql') await db.exec('SET GLOBAL super_read_only = 0');
  await db.exec('SET GLOBAL read_only = 0');
}

/** Does it replicate from this master now (host:port as configured, IO and SQL threads running)? */
export function replicatesFrom(state: NodeReplState, master: { host: string; port: number }): boolean {
  const r = state.replica;
  return !!r && sameHost(r.sourceHost, master.host) && r.sourcePort === master.port && r.ioState === 'Yes' && r.sqlState === 'Yes';
}

/**
 * read_only=1 first, then replicate from `master` by GTID and start. Idempotent (a node that
 * already replicates from it, both threads running, is only made read_only).
 *
 * MariaDB: gtid_slave_pos becomes, per domain, the higher of gtid_slave_pos and gtid_binlog_pos
 * (a former master's own writes, and DRC's writes it took, are in its binlog, not in its slave
 * position), then MASTER_USE_GTID=slave_pos. A node whose binlog holds transactions the new
 * master lacks is then refused by the master (error 1236) rather than silently skipped: check
 * errantGtids first. user/password omitted: the node's own are kept; a node that has none (a
 * master that never replicated, or after RESET SLAVE ALL) is refused with a clear error.
 *
 * After START SLAVE it waits up to `verifyMs` (default 5000) for both threads to run, and throws
 * the replication error when one stops with an error; a master still being connected to at the
 * deadline is not an error (MASTER_CONNECT_RETRY keeps trying).
 */
export async function replicateFrom(
  db: Db,
  master: { host: string; port: number },
  o: { user?: string; password?: string; connectRetryS?: number; verifyMs?: number } = {},
): Promise<void> {
  const before = await replState(db);
  const flavor = before.flavor;
  // refused before anything is changed: a node that cannot be pointed anywhere stays as it is
  const hadUser = before.replica ? await currentUser(db, flavor) : '';
  if (o.user === undefined && !hadUser) {
    throw badInput(`${db.ep.label} has no replication user to keep (${before.replica ? 'its replication names no user' : 'it replicates from nobody'}): give the replication credentials`, {
      hint: 'set replCredentials (user + passwordEnv or defaultsFile) in the topology file',
    });
  }
  if (flavor === 'mysql') await db.exec('SET GLOBAL super_read_only = 1');
  else await db.exec('SET GLOBAL read_only = 1');
  if (replicatesFrom(before, master) && o.user === undefined && o.password === undefined) return;
  if (flavor === 'mariadb') {
    if (before.replica) await db.exec("STOP SLAVE ''");
    // gtid_slave_pos can only be set while every SQL thread is stopped: others (named
    // connections) are not ezctl's, so say so rather than stop them.
    // read after STOP SLAVE: the SQL thread may have applied more since `before`, and a
    // gtid_slave_pos set behind what it applied would apply those transactions twice
    const now = await db.one<Row>('SELECT @@gtid_slave_pos AS slave_pos, @@gtid_binlog_pos AS binlog_pos');
    const slavePos = clean(now?.slave_pos);
    const held = mariaMerge(slavePos, clean(now?.binlog_pos));
    if (held !== mariaMerge(slavePos)) {
      try {
        await db.exec('SET GLOBAL gtid_slave_pos = ?', [held]);
      } catch (e) {
        throw runtimeError(`${db.ep.label}: cannot set gtid_slave_pos to ${held} (what its binlog holds): ${(e as Error).message}`, {
          hint: 'stop every replication connection of this node (SHOW ALL SLAVES STATUS) and retry',
        });
      }
    }
    await changeMaster(db, `CHANGE MASTER '' TO ${sourceSettings('MASTER', master, o, 'MASTER_USE_GTID = slave_pos')}`, sourceParams(master, o));
    await db.exec("START SLAVE ''");
  } else {
    if (before.replica) await db.exec("STOP REPLICA FOR CHANNEL ''");
    await changeMaster(db, `CHANGE REPLICATION SOURCE TO ${sourceSettings('SOURCE', master, o, 'SOURCE_AUTO_POSITION = 1, GET_SOURCE_PUBLIC_KEY = 1')} FOR CHANNEL ''`, sourceParams(master, o));
    await db.exec("START REPLICA FOR CHANNEL ''");
  }
  await verifyStarted(db, flavor, master, o.verifyMs ?? 5000);
}

type SourceOptions = { user?: string; password?: string; connectRetryS?: number };

/** The SET list of CHANGE MASTER (MariaDB: MASTER_*) or CHANGE REPLICATION SOURCE (MySQL: SOURCE_*); values in sourceParams' order. */
function sourceSettings(prefix: 'MASTER' | 'SOURCE', master: { host: string; port: number }, o: SourceOptions, positioning: string): string {
  const sets = [`${prefix}_HOST = ?`, `${prefix}_PORT = ?`];
  if (o.user !== undefined) sets.push(`${prefix}_USER = ?`);
  if (o.password !== undefined) sets.push(`${prefix}_PASSWORD = ?`);
  sets.push(positioning);
  if (o.connectRetryS !== undefined) sets.push(`${prefix}_CONNECT_RETRY = ?`);
  return sets.join(', ');
}

function sourceParams(master: { host: string; port: number }, o: SourceOptions): Array<string | number> {
  const params: Array<string | number> = [master.host, master.port];
  if (o.user !== undefined) params.push(o.user);
  if (o.password !== undefined) params.push(o.password);
  if (o.connectRetryS !== undefined) params.push(Math.max(1, Math.round(o.connectRetryS)));
  return params;
}

async function currentUser(db: Db, flavor: Flavor): Promise<string> {
  const ch = await defaultChannel(db, flavor);
  return String(ch?.row.Master_User ?? ch?.row.Source_User ?? '');
}

/** CHANGE MASTER with a password: the error must not carry the statement (mysql2 keeps the SQL with values in it). */
async function changeMaster(db: Db, sql: string, params: Array<string | number>): Promise<void> {
  try {
    await db.exec(sql, params);
  } catch (e) {
    throw runtimeError((e as Error).message);
  }
}

async function verifyStarted(db: Db, flavor: Flavor, master: { host: string; port: number }, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  let pause = 5;
  for (;;) {
    const ch = await defaultChannel(db, flavor);
    const s = ch?.status;
    if (s && s.ioState === 'Yes' && s.sqlState === 'Yes') return;
    // a refused login is retried for ever (MASTER_CONNECT_RETRY) with the IO thread 'Connecting'
    const denied = !!s && s.ioState !== 'Yes' && /Access denied/i.test(s.lastIoError);
    if (s && (denied || (s.ioState === 'No' && s.lastIoError) || (s.sqlState === 'No' && s.lastSqlError))) {
      throw runtimeError(`${db.ep.label} does not replicate from ${master.host}:${master.port}: ${s.lastIoError || s.lastSqlError}`, {
        hint: denied
          ? 'check replCredentials (the replication user and its password) and its grants on the master'
          : /1236/.test(s.lastIoError) ? 'the node holds transactions the new master lacks (errant GTIDs), or the master purged binlogs it needs' : 'see SHOW SLAVE STATUS on that node',
      });
    }
    if (Date.now() >= deadline) {
      // still connecting: fine unless the last attempt failed (a wrong password, an unknown host)
      if (s && s.ioState !== 'Yes' && s.lastIoError) {
        throw runtimeError(`${db.ep.label} cannot replicate from ${master.host}:${master.port} within ${ms} ms: ${s.lastIoError}`, {
          hint: 'check replCredentials (the replication user and its password) and that the master is reachable from this node',
        });
      }
      return;
    }
    await sleep(pause);
    pause = Math.min(100, pause * 2);
  }
}

/**
 * The replication user for CHANGE MASTER: topology `replCredentials` (the cluster's over the
 * file's), user + passwordEnv or defaultsFile, resolved like `credentials` (a relative
 * defaults file from the topology file's folder; --ask-pass prompts when neither gives a password).
 * The global --defaults-file is the admin's and does not apply. undefined when the file names none.
 */
export async function replicationCredentials(
  topo: Topology,
  cluster: string,
  secrets: SecretOptions = {},
): Promise<{ user: string; password?: string; source: string } | undefined> {
  const own = topo.cluster(cluster).config.replCredentials;
  const file = topo.file.replCredentials;
  if (!own && !file) return undefined;
  const creds: Credentials = { ...file, ...own };
  const where = own ? `clusters.${cluster}.replCredentials` : 'replCredentials';
  let user = creds.user;
  if (user === undefined && creds.defaultsFile) {
    user = readDefaultsFile(expandPath(creds.defaultsFile, topo.dir), secrets.warn ? { warn: secrets.warn } : {}).user;
  }
  if (user === undefined) {
    throw badInput(`${where} names no user (neither user: nor a user= line in its defaults file)`, { hint: 'add user: <the replication user> to replCredentials' });
  }
  const ep: Endpoint = await endpointFrom({ host: 'replication', port: 0, label: 'replication user' }, { ...creds, user }, topo.dir, secrets.warn ? { warn: secrets.warn } : {});
  if (ep.password === undefined && secrets.askPass) {
    return { user, password: await secrets.askPass(user), source: '--ask-pass' };
  }
  const out: { user: string; password?: string; source: string } = { user, source: ep.passwordSource === 'none' ? 'no password' : ep.passwordSource };
  if (ep.password !== undefined) out.password = ep.password;
  return out;
}
