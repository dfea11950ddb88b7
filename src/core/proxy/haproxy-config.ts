// HAProxy for one zone of a cluster, as a model ezctl owns: the zone's nodes, which one takes
// writes, which ones serve reads, which ones are fenced. From the model come both the whole
// haproxy.cfg (written again, atomically, on every change: a restarted proxy routes the same)
// and the runtime API commands that make the running proxy route the same without a reload.
// The model travels inside the config file as one comment line, so the file is the only state.
//
// Shape: a TCP `write` frontend/backend with one server slot per node, exactly one of them
// enabled (the master); a TCP `read` frontend/backend with one slot per node, the read pool
// enabled, plus a backup slot `_fallback` pointing at the write node, used only when no pool
// node can take the connection. No health checks: routes change only when ezctl changes them
// (an HAProxy check marking a master down would close the write route on a network blip, and a
// TCP probe counts as an aborted connect on MariaDB); a dead read node is skipped by
// `option redispatch` + `retries`.
import { isIP } from 'node:net';
import type { RouteNode } from './routing.js';

export const MODEL_MARK = '# ezctl-model: ';
export const FALLBACK = '_fallback';
const WRITE = 'write';
const READ = 'read';

export interface ProxyModel {
  version: 1;
  /** "cluster/zone" */
  name: string;
  /** address the listeners bind to */
  bind: string;
  writePort: number;
  readPort: number;
  /** the runtime API's unix socket (mode 0600, level admin) */
  admin: string;
  /** every node the proxy has a slot for */
  nodes: RouteNode[];
  /** the node new write connections go to; null: the write route is closed */
  write: string | null;
  /** the read pool */
  read: string[];
  /** nodes kept out of every route */
  fenced: string[];
}

/** A change: the model after it, and the runtime API commands that make a running proxy match. */
export interface RoutePlan {
  model: ProxyModel;
  commands: string[];
}

// HAProxy's own rule for proxy and server names.
const SERVER_NAME = /^[A-Za-z0-9_.:-]+$/;

export function checkModel(m: ProxyModel): string[] {
  const problems: string[] = [];
  const names = new Set<string>();
  for (const n of m.nodes) {
    if (!SERVER_NAME.test(n.name)) problems.push(`node name ${JSON.stringify(n.name)} cannot name an HAProxy server (letters, digits, _ . : -)`);
    if (n.name === FALLBACK) problems.push(`node name ${FALLBACK} is reserved for the read pool's fallback slot`);
    if (names.has(n.name)) problems.push(`node ${n.name} is listed twice`);
    names.add(n.name);
    if (!/^[A-Za-z0-9.:_-]+$/.test(n.host)) problems.push(`node ${n.name}: host ${JSON.stringify(n.host)} is not a host name or address`);
  }
  for (const p of [m.admin]) if (/["\n\\]/.test(p)) problems.push(`path ${JSON.stringify(p)} holds a quote, backslash or newline`);
  if (m.write !== null && !names.has(m.write)) problems.push(`write node ${m.write} is not one of the proxy's nodes`);
  for (const r of m.read) if (!names.has(r)) problems.push(`read node ${r} is not one of the proxy's nodes`);
  if (m.write !== null && m.fenced.includes(m.write)) problems.push(`write node ${m.write} is fenced`);
  for (const r of m.read) if (m.fenced.includes(r)) problems.push(`read node ${r} is fenced`);
  return problems;
}

const addr = (n: RouteNode) => `${n.host.includes(':') ? `[${n.host}]` : n.host}:${n.port}`;
const node = (m: ProxyModel, name: string) => m.nodes.find((n) => n.name === name);

/** The whole haproxy.cfg of a model. */
export function renderConfig(m: ProxyModel): string {
  const problems = checkModel(m);
  if (problems.length) throw new Error(`cannot write the proxy configuration of ${m.name}: ${problems.join('; ')}`);
  const writeNode = m.write === null ? undefined : node(m, m.write);
  const server = (n: RouteNode, on: boolean) => `    server ${n.name} ${addr(n)}${on ? '' : ' disabled'}`;
  const lines = [
    `# HAProxy for ${m.name}, written by ezctl: it rewrites this whole file when it moves a route`,
    '# (and makes the same change in the running proxy through the admin socket). The line below is',
    '# the routing state the rest is made from; edit routes with ezctl, not here.',
    MODEL_MARK + JSON.stringify(m),
    'global',
    `    stats socket "${m.admin}" mode 600 level admin`,
    '    stats timeout 1m',
    '    maxconn 4000',
    '',
    'defaults',
    '    mode tcp',
    '    timeout connect 2s',
    // database sessions live long: as long as the server's own wait_timeout (8 h by default)
    '    timeout client 8h',
    '    timeout server 8h',
    '',
    `frontend ${WRITE}`,
    `    bind ${m.bind}:${m.writePort}`,
    `    default_backend ${WRITE}`,
    '',
    `backend ${WRITE}`,
    '    balance first',
    ...m.nodes.map((n) => server(n, n.name === m.write)),
    '',
    `frontend ${READ}`,
    `    bind ${m.bind}:${m.readPort}`,
    `    default_backend ${READ}`,
    '',
    `backend ${READ}`,
    '    balance roundrobin',
    '    option redispatch',
    '    retries 2',
    ...m.nodes.map((n) => server(n, m.read.includes(n.name))),
    writeNode ? `    server ${FALLBACK} ${addr(writeNode)} backup` : `    server ${FALLBACK} ${m.bind}:${m.writePort} backup disabled`,
    '',
  ];
  return lines.join('\n');
}

/** The model a config file written by ezctl carries; undefined for any other file. */
export function parseModel(cfg: string): ProxyModel | undefined {
  const line = cfg.split('\n').find((l) => l.startsWith(MODEL_MARK));
  if (!line) return undefined;
  const m = JSON.parse(line.slice(MODEL_MARK.length)) as ProxyModel;
  if (m.version !== 1 || !Array.isArray(m.nodes)) return undefined;
  return m;
}

const clone = (m: ProxyModel): ProxyModel => JSON.parse(JSON.stringify(m)) as ProxyModel;

/** Slots for a node the proxy has not seen, or a new address for one it has. */
function ensureNode(m: ProxyModel, n: RouteNode, commands: string[]): void {
  const known = node(m, n.name);
  if ((!known || known.host !== n.host || known.port !== n.port) && isIP(n.host) === 0) {
    throw new Error(`${n.name} is at ${n.host}, a host name: the running proxy can be given only an IP address (HAProxy's "set server ... addr" and "add server" without resolvers)`);
  }
  if (!known) {
    m.nodes.push({ name: n.name, host: n.host, port: n.port });
    // a server added at run time starts in maintenance: it takes nothing until enabled
    commands.push(`add server ${WRITE}/${n.name} ${addr(n)}`, `add server ${READ}/${n.name} ${addr(n)}`);
  } else if (known.host !== n.host || known.port !== n.port) {
    known.host = n.host;
    known.port = n.port;
    commands.push(`set server ${WRITE}/${n.name} addr ${n.host} port ${n.port}`, `set server ${READ}/${n.name} addr ${n.host} port ${n.port}`);
  }
}

function pointFallback(m: ProxyModel, commands: string[]): void {
  const w = m.write === null ? undefined : node(m, m.write);
  if (w) commands.push(`set server ${READ}/${FALLBACK} addr ${w.host} port ${w.port}`, `enable server ${READ}/${FALLBACK}`);
  else commands.push(`disable server ${READ}/${FALLBACK}`);
}

/**
 * Move the write route to `to`: the old write node is disabled (and its sessions shut) before the
 * new one is enabled, in one runtime API request, so the proxy never has two write nodes.
 */
export function planMoveWrite(current: ProxyModel, to: RouteNode, killExisting = true): RoutePlan {
  const m = clone(current);
  if (m.fenced.includes(to.name)) throw new Error(`${to.name} is fenced in the proxy of ${m.name}: unfence it before routing writes to it`);
  const commands: string[] = [];
  ensureNode(m, to, commands);
  for (const n of m.nodes) {
    if (n.name === to.name) continue;
    // every other slot, not only the recorded write node: a slot enabled by hand is closed too
    commands.push(`disable server ${WRITE}/${n.name}`);
    if (killExisting) commands.push(`shutdown sessions server ${WRITE}/${n.name}`);
  }
  commands.push(`enable server ${WRITE}/${to.name}`);
  m.write = to.name;
  pointFallback(m, commands);
  return { model: m, commands };
}

/** Reads go to exactly these nodes; the others keep their open sessions but get no new ones. */
export function planReadPool(current: ProxyModel, pool: RouteNode[]): RoutePlan {
  const m = clone(current);
  const commands: string[] = [];
  const fenced = pool.filter((n) => m.fenced.includes(n.name)).map((n) => n.name);
  if (fenced.length) throw new Error(`${fenced.join(', ')} ${fenced.length === 1 ? 'is' : 'are'} fenced in the proxy of ${m.name}: unfence before adding to the read pool`);
  for (const n of pool) ensureNode(m, n, commands);
  const want = new Set(pool.map((n) => n.name));
  for (const n of m.nodes) commands.push(`${want.has(n.name) ? 'enable' : 'disable'} server ${READ}/${n.name}`);
  m.read = m.nodes.filter((n) => want.has(n.name)).map((n) => n.name);
  pointFallback(m, commands);
  return { model: m, commands };
}

/** Out of every route, its sessions shut; the write route closes if it was the write node. */
export function planFence(current: ProxyModel, name: string): RoutePlan {
  const m = clone(current);
  if (!node(m, name)) throw new Error(`${name} is not a node of the proxy of ${m.name} (nodes: ${m.nodes.map((n) => n.name).join(', ')})`);
  const commands = [
    `disable server ${WRITE}/${name}`, `shutdown sessions server ${WRITE}/${name}`,
    `disable server ${READ}/${name}`, `shutdown sessions server ${READ}/${name}`,
  ];
  if (!m.fenced.includes(name)) m.fenced.push(name);
  m.read = m.read.filter((r) => r !== name);
  if (m.write === name) {
    m.write = null;
    // the fallback slot pointed at it
    commands.push(`disable server ${READ}/${FALLBACK}`, `shutdown sessions server ${READ}/${FALLBACK}`);
  }
  return { model: m, commands };
}

export function planUnfence(current: ProxyModel, name: string): RoutePlan {
  const m = clone(current);
  m.fenced = m.fenced.filter((f) => f !== name);
  return { model: m, commands: [] };
}

/** Lines the runtime API answers a successful command of ours with (most answer nothing). */
export function runtimeOutputProblems(output: string): string[] {
  return output.split('\n').map((l) => l.trim()).filter((l) => l && !/^(New server registered\.|IP changed from|no need to change the addr|port changed from)/.test(l));
}

// ---- `show servers state` ----

export interface ServerState {
  backend: string;
  server: string;
  addr: string;
  port: number;
  /** 0 stopped, 1 starting, 2 running, 3 stopping */
  opState: number;
  adminState: number;
}

// srv_admin_state bits (HAProxy's SRV_ADMF_*): forced, inherited, resolution and hostname
// maintenance, forced and inherited drain. 0x04 (maintenance from the config's `disabled`) stays
// set after `enable server` and means nothing then.
const MAINT = 0x01 | 0x02 | 0x20 | 0x40;
const DRAIN = 0x08 | 0x10;

/** Parse `show servers state` (format 1: a version line, a # header naming the columns, rows). */
export function parseServersState(text: string): ServerState[] {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const header = lines.find((l) => l.startsWith('#'));
  if (!header) throw new Error(`unexpected answer to "show servers state": ${text.slice(0, 200)}`);
  const cols = header.slice(1).trim().split(/\s+/);
  const at = (name: string) => {
    const i = cols.indexOf(name);
    if (i < 0) throw new Error(`"show servers state" has no column ${name}`);
    return i;
  };
  const [be, srv, ad, op, adm, port] = ['be_name', 'srv_name', 'srv_addr', 'srv_op_state', 'srv_admin_state', 'srv_port'].map(at) as [number, number, number, number, number, number];
  return lines.filter((l) => !l.startsWith('#') && /\s/.test(l)).map((l) => {
    const f = l.split(/\s+/);
    return { backend: f[be]!, server: f[srv]!, addr: f[ad]!, port: Number(f[port]), opState: Number(f[op]), adminState: Number(f[adm]) };
  });
}

/** Does the slot take new connections? */
export function takesTraffic(s: ServerState): boolean {
  return s.opState === 2 && (s.adminState & (MAINT | DRAIN)) === 0;
}

export interface RuntimeRoutes {
  write: ServerState[];
  read: ServerState[];
  fallback: ServerState | undefined;
}

/** What the running proxy routes to, from its `show servers state`. */
export function runtimeRoutes(states: ServerState[]): RuntimeRoutes {
  const on = states.filter(takesTraffic);
  return {
    write: on.filter((s) => s.backend === WRITE),
    read: on.filter((s) => s.backend === READ && s.server !== FALLBACK),
    fallback: on.find((s) => s.backend === READ && s.server === FALLBACK),
  };
}

/** Differences between the running proxy and the model (after a restart with an old file, a change by hand...). */
export function routeDrift(m: ProxyModel, r: RuntimeRoutes): string[] {
  const out: string[] = [];
  const names = (xs: ServerState[]) => xs.map((s) => s.server).sort();
  const w = names(r.write);
  if (w.length > 1) out.push(`the write route goes to ${w.length} nodes (${w.join(', ')}); exactly one is expected`);
  if (w.join(',') !== (m.write ?? '')) out.push(`the running proxy sends writes to ${w.join(', ') || 'nothing'}; its configuration says ${m.write ?? 'nothing'}`);
  const rd = names(r.read);
  if (rd.join(',') !== [...m.read].sort().join(',')) out.push(`the running proxy's read pool is ${rd.join(', ') || 'empty'}; its configuration says ${m.read.join(', ') || 'empty'}`);
  for (const f of m.fenced) if (w.includes(f) || rd.includes(f)) out.push(`fenced node ${f} is in a route of the running proxy`);
  for (const s of r.write) {
    const n = node(m, s.server);
    if (n && (n.port !== s.port || !sameAddr(n.host, s.addr))) out.push(`the write slot ${s.server} points at ${s.addr}:${s.port}; the configuration says ${addr(n)}`);
  }
  return out;
}

const sameAddr = (a: string, b: string) => a === b || (['localhost', '127.0.0.1'].includes(a) && ['localhost', '127.0.0.1'].includes(b));
