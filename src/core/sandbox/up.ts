// ezctl sandbox up / status: start a multi-zone topology of real servers on loopback, wire
// GTID replication inside each zone, and describe it in <dir>/ezctl.yaml.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, writeFileSync, readFileSync, readdirSync, renameSync, rmSync, chmodSync, realpathSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { stringify } from 'yaml';
import type { Ctx } from '../context.js';
import { badInput, EzError, runtimeError } from '../exit.js';
import { connect, type Db, type Endpoint } from '../db/connect.js';
import { onInterrupt } from '../signals.js';
import { runSteps } from '../ui/steps.js';
import {
  copyDatadir, findServerKit, freePorts, isOurServer, portFree, spawnServer, stopServer, templateDatadir, waitReady,
  versionNumber, type NodeProcessSpec, type ServerKit,
} from './servers.js';
import { readPidFile, stopProcess } from '../process/pids.js';
import { DEMO_SHARD_TABLES } from './demo-schema.js';
import { findHaproxy, haproxyVersion, isOurHaproxy, startHaproxy, writeConfig, type ProxyModel } from '../proxy/index.js';
import { loadTopology, type ResolvedNode, type Topology } from '../config/load.js';
import { planRelay, readRelayConfig, relayPid, relayPortCount, startRelay, stopRelay, viaOf, writeRelayConfig, type RelayTarget } from './wan/index.js';

export const STATE_FILE = 'sandbox.json';

export interface SandboxNode extends NodeProcessSpec {
  name: string;
  zone: string;
  role: 'master' | 'replica';
  pid: number | null;
}

/** A zone's HAProxy (`up --proxy`): its own process, config, admin socket and two listeners. */
export interface SandboxProxy {
  zone: string;
  /** its folder in the sandbox: haproxy.cfg, admin.sock, haproxy.log */
  dir: string;
  config: string;
  admin: string;
  log: string;
  writePort: number;
  readPort: number;
  pid: number | null;
}

export interface SandboxState {
  version: 1;
  dir: string;
  flavor: ServerKit['flavor'];
  serverVersion: string;
  serverBin: string;
  cluster: string;
  zones: string[];
  replicas: number;
  shards: number;
  /** the cluster's model (absent in sandboxes made before it: sharding) */
  model?: 'sharding' | 'global';
  /** a global cluster's zone taking writes when it was made (the topology file says where it is now) */
  writerZone?: string;
  createdAt: string;
  nodes: SandboxNode[];
  /** one per zone with `up --proxy`; absent without */
  proxies?: SandboxProxy[];
  /** `up --wan-latency`: the relay between the zones (its listeners and links in wan/relay.json) */
  wan?: { latencyMs: number; jitterMs: number; pid: number | null };
}

export interface SandboxReport {
  dir: string;
  config: string;
  cluster: string;
  flavor: string;
  serverVersion: string;
  alreadyRunning: boolean;
  startedNodes: string[];
  ms: number;
  nodes: Array<{ name: string; zone: string; role: string; host: string; port: number; serverId: number; pid: number | null; running: boolean }>;
  /** the zones' proxies (`up --proxy`); empty without */
  proxies: Array<{ zone: string; write: string; read: string; admin: string; config: string; pid: number | null; running: boolean }>;
  /** the WAN relay between the zones (`up --wan-latency`); null without */
  relay: { pid: number | null; running: boolean; latencyMs: number; jitterMs: number; listeners: number } | null;
}

export interface UpOptions {
  dir: string;
  zones: string[];
  replicas: number;
  basePort?: number;
  cluster: string;
  shards: number;
  /** one HAProxy per zone in front of its nodes */
  proxy?: boolean;
  /** sharding (default): every zone writes the shards it owns; global: one zone (writerZone) takes every write */
  model?: 'sharding' | 'global';
  /** a global cluster's write zone (default: the first zone) */
  writerZone?: string;
  /** a relay between the zones: every cross-zone connection pays this round trip (0: relays without delay) */
  wan?: { latencyMs: number; jitterMs: number };
}

const HOST = '127.0.0.1';

export function readState(dir: string): SandboxState | undefined {
  const p = join(dir, STATE_FILE);
  if (!existsSync(p)) return undefined;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as SandboxState;
  } catch (e) {
    throw runtimeError(`${p} is unreadable: ${(e as Error).message}`, { hint: `stop its servers by hand and remove ${dir}` });
  }
}

export function writeState(state: SandboxState): void {
  const p = join(state.dir, STATE_FILE);
  writeFileSync(p + '.tmp', JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  // rename is atomic: a crash never leaves a half-written state file
  renameSync(p + '.tmp', p);
}

export function nodeRunning(n: SandboxNode): boolean {
  const pid = n.pid ?? readPidFile(n.pidFile);
  return pid !== undefined && pid !== null && isOurServer(pid, n.datadir);
}

export function proxyRunning(p: SandboxProxy): boolean {
  return p.pid !== null && isOurHaproxy(p.pid, p.config);
}

function report(state: SandboxState, startedNodes: string[], alreadyRunning: boolean, t0: number): SandboxReport {
  return {
    dir: state.dir,
    config: join(state.dir, 'ezctl.yaml'),
    cluster: state.cluster,
    flavor: state.flavor,
    serverVersion: state.serverVersion,
    alreadyRunning,
    startedNodes,
    ms: Date.now() - t0,
    nodes: state.nodes.map((n) => ({ name: n.name, zone: n.zone, role: n.role, host: HOST, port: n.port, serverId: n.serverId, pid: n.pid, running: nodeRunning(n) })),
    proxies: (state.proxies ?? []).map((p) => ({ zone: p.zone, write: `${HOST}:${p.writePort}`, read: `${HOST}:${p.readPort}`, admin: p.admin, config: p.config, pid: p.pid, running: proxyRunning(p) })),
    relay: state.wan ? relayReport(state) : null,
  };
}

/** The relay's pid and state; the latency as its links are set now (the first link's, as `sandbox net` last set it). */
function relayReport(state: SandboxState): NonNullable<SandboxReport['relay']> {
  const c = readRelayConfig(state.dir);
  const l0 = c ? Object.values(c.links)[0] : undefined;
  return { pid: state.wan!.pid, running: relayPid(state.dir) !== undefined, latencyMs: l0?.latencyMs ?? state.wan!.latencyMs, jitterMs: l0?.jitterMs ?? state.wan!.jitterMs, listeners: c?.listeners.length ?? 0 };
}

/** What the relay puts at a distance: every server, and each proxy's write and read listeners. */
export function relayTargets(state: Pick<SandboxState, 'nodes' | 'proxies'>): RelayTarget[] {
  return [
    ...state.nodes.map((n) => ({ zone: n.zone, target: n.name, host: HOST, port: n.port })),
    ...(state.proxies ?? []).flatMap((p) => [
      { zone: p.zone, target: `proxy-${p.zone}-write`, host: HOST, port: p.writePort },
      { zone: p.zone, target: `proxy-${p.zone}-read`, host: HOST, port: p.readPort },
    ]),
  ];
}

/** "host:port" of a target as seen from a zone: through the relay when it is in another zone. */
function seenFrom(dir: string, target: string, zone: string, direct: number): { host: string; port: number } {
  const c = readRelayConfig(dir);
  const via = c ? viaOf(c).get(target)?.[zone] : undefined;
  if (!via) return { host: HOST, port: direct };
  const i = via.lastIndexOf(':');
  return { host: via.slice(0, i), port: Number(via.slice(i + 1)) };
}

/** The nodes of a layout: per zone a master then its replicas; ids and ports assigned in order. */
export function planNodes(dir: string, zones: string[], replicas: number, ports: number[]): SandboxNode[] {
  const nodes: SandboxNode[] = [];
  zones.forEach((zone, zi) => {
    for (let r = 0; r <= replicas; r++) {
      const i = nodes.length;
      const name = r === 0 ? `${zone}-master` : `${zone}-replica${r}`;
      const datadir = join(dir, name);
      nodes.push({
        name,
        zone,
        role: r === 0 ? 'master' : 'replica',
        datadir,
        port: ports[i]!,
        socket: join(datadir, 'mysqld.sock'),
        pidFile: join(datadir, 'mysqld.pid'),
        errorLog: join(datadir, 'error.log'),
        serverId: (zi + 1) * 100 + r + 1,
        domainId: zi + 1,
        readOnly: r > 0,
        // Zones never hand out the same AUTO_INCREMENT value: zone i gets i, i+n, i+2n...
        autoIncrementIncrement: zones.length,
        autoIncrementOffset: zi + 1,
        pid: null,
      });
    }
  });
  return nodes;
}

/** A proxy per zone on the given ports (two each: write, read), its files in <dir>/proxy-<zone>/. */
export function planProxies(dir: string, zones: string[], ports: number[]): SandboxProxy[] {
  return zones.map((zone, i) => {
    const pdir = join(dir, `proxy-${zone}`);
    return { zone, dir: pdir, config: join(pdir, 'haproxy.cfg'), admin: join(pdir, 'admin.sock'), log: join(pdir, 'haproxy.log'), writePort: ports[2 * i]!, readPort: ports[2 * i + 1]!, pid: null };
  });
}

/**
 * The first routing of a zone's proxy: writes to its master, reads to its replicas (the master
 * when there are none). In a global cluster every zone's writes go to the writer zone's master:
 * the proxies of the other zones get a slot for it (a cross-zone route), their own master none
 * for writes (it takes DRC's writes only).
 */
export function proxyModel(state: Pick<SandboxState, 'cluster' | 'nodes' | 'model' | 'writerZone'> & Partial<Pick<SandboxState, 'dir' | 'wan'>>, p: SandboxProxy): ProxyModel {
  const nodes = state.nodes.filter((n) => n.zone === p.zone);
  const writerZone = state.model === 'global' ? state.writerZone ?? p.zone : p.zone;
  const writer = state.nodes.find((n) => n.zone === writerZone && n.role === 'master')!;
  const slots = [...nodes, ...(writer.zone === p.zone ? [] : [writer])];
  return {
    version: 1,
    name: `${state.cluster}/${p.zone}`,
    bind: HOST,
    writePort: p.writePort,
    readPort: p.readPort,
    admin: p.admin,
    // another zone's master is reached as that zone's side sees it: through the relay
    nodes: slots.map((n) => ({ name: n.name, ...(state.wan && state.dir ? seenFrom(state.dir, n.name, p.zone, n.port) : { host: HOST, port: n.port }) })),
    write: writer.name,
    read: nodes.filter((n) => n.role === 'replica').map((n) => n.name),
    fenced: [],
  };
}

/** Split shard ids 0..n-1 into contiguous ranges, one per zone. */
export function shardRanges(zones: string[], shards: number): Record<string, string> {
  const out: Record<string, string> = {};
  const per = Math.floor(shards / zones.length);
  let extra = shards % zones.length;
  let next = 0;
  for (const z of zones) {
    const size = per + (extra-- > 0 ? 1 : 0);
    if (size === 0) continue;
    out[z] = size === 1 ? `${next}` : `${next}-${next + size - 1}`;
    next += size;
  }
  return out;
}

function socketEndpoint(n: SandboxNode, user: string, password?: string): Endpoint {
  const ep: Endpoint = { label: `${n.name} ${HOST}:${n.port}`, host: HOST, port: n.port, socket: n.socket, user, passwordSource: 'sandbox' };
  if (password !== undefined) ep.password = password;
  return ep;
}

interface Secrets { admin: string; repl: string; app: string }

function newSecret(): string {
  return randomBytes(18).toString('base64url');
}

function writeCnf(path: string, user: string, password: string): void {
  writeFileSync(path, `# written by ezctl sandbox up; keep private\n[client]\nuser=${user}\npassword="${password}"\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
}

/** Users on a fresh node, kept out of the binlog: every node gets its own copy. */
async function setupUsers(db: Db, s: Secrets): Promise<void> {
  await db.exec('SET SESSION sql_log_bin = 0');
  // A fresh datadir has root without a password on 127.0.0.1/::1: close that.
  const roots = await db.query<{ host: string }>("SELECT Host AS host FROM mysql.user WHERE User = 'root' AND Host <> 'localhost'");
  for (const r of roots) await db.exec('DROP USER ?@?', ['root', r.host]);
  await db.exec('ALTER USER ?@? IDENTIFIED BY ?', ['root', 'localhost', s.admin]);
  for (const host of [HOST, 'localhost']) {
    await db.exec('CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?', ['ezctl', host, s.admin]);
    await db.exec('GRANT ALL PRIVILEGES ON *.* TO ?@? WITH GRANT OPTION', ['ezctl', host]);
  }
  await db.exec('CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?', ['repl', HOST, s.repl]);
  await db.exec('GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO ?@?', ['repl', HOST]);
  // The application user has no SUPER/READ_ONLY ADMIN: read_only applies to it.
  await db.exec('CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?', ['app', HOST, s.app]);
  await db.exec('GRANT SELECT, INSERT, UPDATE, DELETE, CREATE TEMPORARY TABLES, EXECUTE ON *.* TO ?@?', ['app', HOST]);
  await db.exec('FLUSH PRIVILEGES');
}

async function startReplication(db: Db, master: SandboxNode, kit: ServerKit, replPassword: string): Promise<void> {
  if (kit.flavor === 'mariadb') {
    await db.exec(
      'CHANGE MASTER TO MASTER_HOST = ?, MASTER_PORT = ?, MASTER_USER = ?, MASTER_PASSWORD = ?, MASTER_USE_GTID = slave_pos, MASTER_CONNECT_RETRY = 1',
      [HOST, master.port, 'repl', replPassword],
    );
    await db.exec('START SLAVE');
  } else {
    await db.exec(
      'CHANGE REPLICATION SOURCE TO SOURCE_HOST = ?, SOURCE_PORT = ?, SOURCE_USER = ?, SOURCE_PASSWORD = ?, SOURCE_AUTO_POSITION = 1, SOURCE_CONNECT_RETRY = 1, GET_SOURCE_PUBLIC_KEY = 1',
      [HOST, master.port, 'repl', replPassword],
    );
    await db.exec('START REPLICA');
  }
}

function topologyYaml(state: SandboxState): string {
  const zones: Record<string, unknown> = {};
  // each node's address as seen from each other zone (through the relay), when there is one
  const via = state.wan ? viaOf(readRelayConfig(state.dir)!) : new Map<string, Record<string, string>>();
  const node = (n: SandboxNode) => ({ name: n.name, host: HOST, port: n.port, ...(via.has(n.name) ? { via: via.get(n.name) } : {}) });
  for (const z of state.zones) {
    const nodes = state.nodes.filter((n) => n.zone === z);
    const m = nodes.find((n) => n.role === 'master')!;
    const proxy = state.proxies?.find((p) => p.zone === z);
    const proxyVia = proxy && via.has(`proxy-${z}-write`)
      ? { via: Object.fromEntries(Object.entries(via.get(`proxy-${z}-write`)!).map(([from, w]) => [from, { write: w, read: via.get(`proxy-${z}-read`)![from]! }])) }
      : {};
    zones[z] = {
      master: node(m),
      replicas: nodes.filter((n) => n.role === 'replica').map(node),
      // paths relative to the file's folder, like the .cnf files
      ...(proxy ? { proxy: { kind: 'haproxy', write: `${HOST}:${proxy.writePort}`, read: `${HOST}:${proxy.readPort}`, admin: relative(state.dir, proxy.admin), config: relative(state.dir, proxy.config), ...proxyVia } } : {}),
    };
  }
  const model = state.model ?? 'sharding';
  // A global cluster has no shard map: one zone takes every write (the demo rows still carry
  // shard ids, `sandbox load` numbers them 0..shards-1 as for a sharding cluster).
  const cluster = model === 'global'
    ? { model, writerZone: state.writerZone ?? state.zones[0]!, zones }
    : { model, zones, shards: { zones: shardRanges(state.zones, state.shards), tables: DEMO_SHARD_TABLES } };
  const doc = {
    version: 1,
    zones: state.zones,
    credentials: { user: 'ezctl', defaultsFile: 'client.cnf' },
    appCredentials: { user: 'app', defaultsFile: 'app.cnf' },
    replCredentials: { user: 'repl', defaultsFile: 'repl.cnf' },
    drcTimestampColumn: 'drc_ts',
    stateDir: 'state',
    clusters: {
      [state.cluster]: cluster,
    },
  };
  return `# Written by \`ezctl sandbox up\` (${state.flavor} ${state.serverVersion}). Passwords are in the .cnf files beside it.\n${stringify(doc)}`;
}

async function startNodes(ctx: Ctx, kit: ServerKit, state: SandboxState, which: SandboxNode[]): Promise<void> {
  for (const n of which) {
    n.pid = spawnServer(kit, n);
    ctx.log.debug(`started ${n.name} on port ${n.port} (pid ${n.pid})`);
  }
  writeState(state);
  await Promise.all(which.map((n) => waitReady(n.pid!, n)));
}

/**
 * Start the proxies given: a first start writes each one's configuration from the sandbox's
 * layout; a restart keeps the configuration there, which holds the routes as last moved.
 */
async function startProxies(ctx: Ctx, state: SandboxState, which: SandboxProxy[]): Promise<void> {
  const bin = await findHaproxy();
  for (const p of which) {
    mkdirSync(p.dir, { recursive: true, mode: 0o700 });
    if (!existsSync(p.config)) await writeConfig(bin, p.config, proxyModel(state, p));
    p.pid = await startHaproxy(bin, p.config, p.admin, p.log);
    writeState(state);
    ctx.log.debug(`started the proxy of ${p.zone} on ports ${p.writePort} (write) and ${p.readPort} (read) (pid ${p.pid})`);
  }
}

export async function stopProxy(p: SandboxProxy, opts: { graceMs?: number; signal?: NodeJS.Signals } = {}): Promise<boolean> {
  if (p.pid === null) return false;
  const pid = p.pid;
  return (await stopProcess(pid, () => isOurHaproxy(pid, p.config), { graceMs: opts.graceMs ?? 10_000, ...(opts.signal ? { signal: opts.signal } : {}) })) !== undefined;
}

/** Stop whatever this attempt started and remove the directory: a failed `up` leaves nothing. */
async function undo(state: SandboxState): Promise<void> {
  if (state.wan) await stopRelay(state.dir, { signal: 'SIGKILL' }).catch(() => false);
  await Promise.all((state.proxies ?? []).map((p) => stopProxy(p, { signal: 'SIGKILL' }).catch(() => false)));
  await Promise.all(state.nodes.filter((n) => n.pid).map((n) => stopServer(n.pid!, n.datadir, { graceMs: 10_000, signal: 'SIGKILL' }).catch(() => false)));
  rmSync(state.dir, { recursive: true, force: true });
}

export async function sandboxUp(ctx: Ctx, o: UpOptions, attempt = 1): Promise<SandboxReport> {
  const t0 = Date.now();
  const dir = resolve(o.dir);
  if (o.zones.length < 1) throw badInput('--zones needs at least one zone');
  if (o.writerZone !== undefined && o.model !== 'global') throw badInput('--writer-zone is for a global cluster', { hint: 'add --model global' });
  if (o.writerZone !== undefined && !o.zones.includes(o.writerZone)) throw badInput(`--writer-zone ${o.writerZone} is not one of --zones (${o.zones.join(', ')})`);
  const existing = readState(dir);
  if (existing) return restartExisting(ctx, existing, o, t0);
  if (existsSync(dir) && !isEmptyDir(dir)) {
    throw badInput(`${dir} exists and is not a sandbox (no ${STATE_FILE})`, { hint: 'choose another --dir, or remove it' });
  }
  const kit = await findServerKit();
  // before anything is started: no haproxy is a usage error naming the package
  const haproxy = o.proxy ? await findHaproxy() : undefined;
  const count = o.zones.length * (o.replicas + 1);
  // the proxies' ports (write, read per zone) come after the servers'
  const proxyPorts = o.proxy ? 2 * o.zones.length : 0;
  // the relay's ports (`--wan-latency`) after those: one per ordered zone pair and far server or proxy listener
  const relayPorts = o.wan ? relayPortCount(o.zones, o.zones.flatMap((zone) => Array.from({ length: o.replicas + 1 + (o.proxy ? 2 : 0) }, (_, i) => ({ zone, target: String(i), host: HOST, port: 0 })))) : 0;
  const all = count + proxyPorts + relayPorts;
  let ports: number[];
  if (o.basePort !== undefined) {
    ports = Array.from({ length: all }, (_, i) => o.basePort! + i);
    for (const p of ports) {
      if (p > 65535) throw badInput(`--base-port ${o.basePort} leaves no room for ${all} ports`);
      if (!(await portFree(p))) throw badInput(`port ${HOST}:${p} is already in use`, { hint: `choose another --base-port (the sandbox needs ${all} consecutive free ports), or omit it to use free ports` });
    }
  } else {
    ports = await freePorts(all);
  }
  let state: SandboxState | undefined;
  let template = '';
  let offInterrupt = () => {};
  const secrets: Secrets = { admin: newSecret(), repl: newSecret(), app: newSecret() };
  try {
    await runSteps(ctx, [
      {
        title: `template datadir for ${kit.flavor} ${versionNumber(kit.version)}`,
        run: async () => {
          template = await templateDatadir(kit);
          return template;
        },
      },
      {
        title: `copy a datadir for each of ${count} nodes`,
        run: async () => {
          mkdirSync(dir, { recursive: true, mode: 0o700 });
          const realDir = realpathSync(dir);
          state = {
            version: 1,
            dir: realDir,
            flavor: kit.flavor,
            serverVersion: kit.version.replace(/^.*Ver\s+/, '').split(' ')[0] ?? kit.version,
            serverBin: kit.server,
            cluster: o.cluster,
            zones: o.zones,
            replicas: o.replicas,
            shards: o.shards,
            model: o.model ?? 'sharding',
            ...(o.model === 'global' ? { writerZone: o.writerZone ?? o.zones[0]! } : {}),
            createdAt: new Date().toISOString(),
            nodes: planNodes(realDir, o.zones, o.replicas, ports),
          };
          if (o.proxy) state.proxies = planProxies(realDir, o.zones, ports.slice(count));
          if (o.wan) {
            state.wan = { latencyMs: o.wan.latencyMs, jitterMs: o.wan.jitterMs, pid: null };
            writeRelayConfig(realDir, planRelay(o.zones, relayTargets(state), ports.slice(count + proxyPorts), o.wan, HOST));
          }
          const st = state;
          offInterrupt = onInterrupt(() => undo(st));
          writeState(st);
          await Promise.all(st.nodes.map((n) => copyDatadir(template, n.datadir)));
        },
      },
      {
        title: 'start the servers',
        run: async () => {
          await startNodes(ctx, kit, state!, state!.nodes);
          return state!.nodes.map((n) => `${n.name}:${n.port}`).join(' ');
        },
      },
      {
        title: 'create the ezctl, repl and app users',
        run: async () => {
          const st = state!;
          writeCnf(join(st.dir, 'client.cnf'), 'ezctl', secrets.admin);
          writeCnf(join(st.dir, 'app.cnf'), 'app', secrets.app);
          // the replication user, for the CHANGE MASTER of a switch or failover (replCredentials)
          writeCnf(join(st.dir, 'repl.cnf'), 'repl', secrets.repl);
          await Promise.all(st.nodes.map(async (n) => {
            const db = await connect(socketEndpoint(n, 'root'));
            try {
              await setupUsers(db, secrets);
            } finally {
              await db.close();
            }
          }));
        },
      },
      {
        title: 'wire GTID replication inside each zone',
        run: async () => {
          await wireReplication(kit, state!, secrets.admin, secrets.repl);
        },
      },
      ...(o.wan ? [{
        title: `start the WAN relay (${o.wan.latencyMs} ms round trip${o.wan.jitterMs ? `, jitter ${o.wan.jitterMs} ms` : ''} between zones)`,
        run: async () => {
          state!.wan!.pid = await startRelay(state!.dir);
          writeState(state!);
          return `${readRelayConfig(state!.dir)!.listeners.length} relayed ports (pid ${state!.wan!.pid})`;
        },
      }] : []),
      ...(haproxy ? [{
        title: `start an HAProxy ${await haproxyVersion(haproxy)} per zone (write and read listeners)`,
        run: async () => {
          await startProxies(ctx, state!, state!.proxies!);
          return state!.proxies!.map((p) => `${p.zone} write:${p.writePort} read:${p.readPort}`).join(' ');
        },
      }] : []),
      {
        title: 'write the topology file',
        run: async () => {
          const p = join(state!.dir, 'ezctl.yaml');
          writeFileSync(p, topologyYaml(state!), { mode: 0o600 });
          return p;
        },
      },
    ]);
  } catch (e) {
    if (state) await undo(state);
    else rmSync(dir, { recursive: true, force: true });
    offInterrupt();
    if (e instanceof EzError && (e as EzError & { portInUse?: boolean }).portInUse) {
      if (o.basePort === undefined && attempt < 3) {
        // Another process took a port we were told was free: try again with new ones.
        ctx.log.warn(`${e.message}; retrying with other free ports`);
        return sandboxUp(ctx, o, attempt + 1);
      }
      throw badInput(e.message, { hint: e.hint ?? '' });
    }
    throw e;
  }
  offInterrupt();
  return report(state!, state!.nodes.map((n) => n.name), false, t0);
}

async function wireReplication(kit: ServerKit, state: SandboxState, adminPassword: string, replPassword: string): Promise<void> {
  await Promise.all(state.nodes.filter((n) => n.role === 'replica').map(async (r) => {
    const master = state.nodes.find((n) => n.zone === r.zone && n.role === 'master')!;
    const db = await connect(socketEndpoint(r, 'ezctl', adminPassword));
    try {
      await startReplication(db, master, kit, replPassword);
    } finally {
      await db.close();
    }
  }));
}

function isEmptyDir(dir: string): boolean {
  try {
    return readdirSync(dir).length === 0;
  } catch {
    return false;
  }
}

/** A second `up`: report what runs, and start again any node that is down. */
async function restartExisting(ctx: Ctx, state: SandboxState, o: UpOptions, t0: number): Promise<SandboxReport> {
  const wanted = o.zones.join(',') !== state.zones.join(',') || o.replicas !== state.replicas;
  if (wanted) ctx.log.warn(`a sandbox already exists in ${state.dir} with zones ${state.zones.join(',')} and ${state.replicas} replica(s) per zone; \`ezctl sandbox down\` first to change its shape`);
  if (o.proxy && !state.proxies?.length) ctx.log.warn(`the sandbox in ${state.dir} has no proxies; \`ezctl sandbox down\` first, then \`up --proxy\``);
  if (o.wan && !state.wan) ctx.log.warn(`the sandbox in ${state.dir} has no WAN relay; \`ezctl sandbox down\` first, then \`up --wan-latency\``);
  const down = state.nodes.filter((n) => !nodeRunning(n));
  const proxiesDown = (state.proxies ?? []).filter((p) => !proxyRunning(p));
  const relayDown = !!state.wan && relayPid(state.dir) === undefined;
  if (relayDown) {
    for (const l of readRelayConfig(state.dir)!.listeners) {
      if (!(await portFree(l.listen))) throw runtimeError(`cannot restart the WAN relay: port ${HOST}:${l.listen} is taken by another process`, { hint: 'stop that process, or `ezctl sandbox down` and up again' });
    }
    state.wan!.pid = await startRelay(state.dir);
    writeState(state);
    ctx.log.info(`restarted the WAN relay (pid ${state.wan!.pid}), its links as they were last set`);
  }
  if (down.length === 0 && proxiesDown.length === 0) {
    ctx.log.info(`sandbox in ${state.dir} is already running (${state.nodes.length} servers${state.proxies?.length ? `, ${state.proxies.length} proxies` : ''})`);
    return report(state, relayDown ? ['relay'] : [], true, t0);
  }
  for (const n of down) {
    if (!(await portFree(n.port))) throw runtimeError(`cannot restart ${n.name}: port ${HOST}:${n.port} is taken by another process`, { hint: 'stop that process, or `ezctl sandbox down` and up again' });
  }
  for (const p of proxiesDown) {
    for (const port of [p.writePort, p.readPort]) {
      if (!(await portFree(port))) throw runtimeError(`cannot restart the proxy of ${p.zone}: port ${HOST}:${port} is taken by another process`, { hint: 'stop that process, or `ezctl sandbox down` and up again' });
    }
  }
  const names = [...down.map((n) => n.name), ...proxiesDown.map((p) => `proxy-${p.zone}`)];
  ctx.log.info(`restarting ${names.join(', ')}`);
  // a node comes back as the topology file says it is now (a switch or failover moved the master;
  // a fenced old master must never take writes again): read_only unless it is its zone's master
  for (const n of down) {
    const ro = readOnlyNow(ctx, state, n);
    if (ro !== n.readOnly) ctx.log.info(`${n.name} restarts ${ro ? 'read_only: the topology file no longer names it its zone\'s master' : 'writable: the topology file names it its zone\'s master'}`);
    n.readOnly = ro;
  }
  for (const n of down.filter((x) => x.readOnly && fencedInFile(state, x))) ctx.log.info(`${n.name} is fenced in the topology file: it restarts read_only and nothing is routed to it`);
  if (down.length) await startNodes(ctx, await findServerKit(), state, down);
  // from the configuration as it is: it holds the routes as they were last moved
  if (proxiesDown.length) await startProxies(ctx, state, proxiesDown);
  return report(state, names, true, t0);
}

/** The sandbox's topology file as it is now, or undefined when it cannot be read (then the state's roles hold). */
function fileNow(state: SandboxState): Topology | undefined {
  try {
    return loadTopology(join(state.dir, 'ezctl.yaml'));
  } catch {
    return undefined;
  }
}

/** The file's node for a sandbox node (by port: names may have been edited), or undefined. */
function fileNode(topo: Topology, state: SandboxState, n: SandboxNode): ResolvedNode | undefined {
  try {
    return topo.nodes(state.cluster).find((x) => x.port === n.port && (x.host === HOST || x.host === 'localhost'));
  } catch {
    return undefined;
  }
}

function fencedInFile(state: SandboxState, n: SandboxNode): boolean {
  const topo = fileNow(state);
  return !!(topo && fileNode(topo, state, n)?.fenced);
}

/**
 * Should this node start read_only? Yes unless the topology file names it its zone's master and
 * it is not fenced. A node the file no longer names at all starts read_only too. When the file
 * cannot be read, the role it was created with decides (and a warning says so).
 */
export function readOnlyNow(ctx: Ctx, state: SandboxState, n: SandboxNode): boolean {
  const topo = fileNow(state);
  if (!topo) {
    ctx.log.warn(`cannot read ${join(state.dir, 'ezctl.yaml')}: ${n.name} restarts ${n.readOnly ? 'read_only' : 'writable'}, as it was created`);
    return n.readOnly;
  }
  const f = fileNode(topo, state, n);
  return !(f && f.role === 'master' && !f.fenced);
}

export async function sandboxStatus(_ctx: Ctx, o: { dir: string }): Promise<SandboxReport> {
  const dir = resolve(o.dir);
  const state = readState(dir);
  if (!state) throw badInput(`no sandbox in ${dir}`, { hint: 'start one with `ezctl sandbox up`, or give --dir' });
  return report(state, [], true, Date.now());
}
