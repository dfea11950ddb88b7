// The topology file (ezctl.yaml): zones, clusters, nodes, credentials, the DRC timestamp
// column and the shard→zone map. Validation yields one line per problem, naming the field
// path, the value found and what was expected.
import { z } from 'zod';
import { hostKey, parseConnectionString, parseHostPort, redactConnectionString } from './dsn.js';
import { dbusSectionSchema } from './dbus-schema.js';

const show = (v: unknown): string => {
  if (v === undefined) return 'missing';
  if (typeof v === 'string') return JSON.stringify(v);
  try {
    const s = JSON.stringify(v);
    return s.length > 60 ? s.slice(0, 57) + '...' : s;
  } catch {
    return String(v);
  }
};

const port = z
  .number({ error: (i) => `${show(i.input)} is not a port (1-65535)` })
  .int({ error: (i) => `${show(i.input)} is not a port (1-65535)` })
  .min(1, { error: (i) => `${show(i.input)} is not a port (1-65535)` })
  .max(65535, { error: (i) => `${show(i.input)} is not a port (1-65535)` });

const text = (what: string) =>
  z.string({ error: (i) => (i.input === undefined ? `missing (expected ${what})` : `${show(i.input)} is not ${what}`) }).min(1, { error: () => `empty (expected ${what})` });

const identifierLike = /^[A-Za-z0-9_$-]+$/;
const name = (what: string) =>
  text(what).regex(identifierLike, { error: (i) => `${show(i.input)} is not a valid ${what} (letters, digits, _ $ -)` });

export const credentialsSchema = z
  .strictObject({
    user: text('a user name').optional(),
    passwordEnv: name('environment variable name').optional(),
    defaultsFile: text('a path to a ~/.my.cnf-style file').optional(),
    password: z.never({ error: () => 'passwords do not belong in the topology file: use passwordEnv (an environment variable name) or defaultsFile' }).optional(),
  });
export type Credentials = z.infer<typeof credentialsSchema>;

const tlsSchema = z.strictObject({
  ca: text('a path').optional(),
  cert: text('a path').optional(),
  key: text('a path').optional(),
  rejectUnauthorized: z.boolean().optional(),
});

// "host:port" (a proxy listener, an address through a relay).
const hostPort = (what: string) => text(`${what} (host:port)`).superRefine((v, ctx) => {
  try {
    if (parseHostPort(v).port === undefined) ctx.addIssue({ code: 'custom', message: `${show(v)} has no port (expected ${what} as host:port)`, input: v });
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `${show(v)}: ${(e as Error).message}`, input: v });
  }
});

// A node's address as seen from another zone, when that zone's side does not reach it at
// host:port (a relay, a NAT, a cross-zone VIP): { <zone>: "host:port" }. Connections from a zone
// with no entry, and from the node's own zone, use host:port (config/via.ts).
const viaSchema = z.record(name('zone name'), hostPort('the address seen from that zone'));

const nodeObject = z
  .strictObject({
    name: name('node name').optional(),
    host: text('a host name or address').optional(),
    port: port.optional(),
    socket: text('a socket path').optional(),
    tls: tlsSchema.optional(),
    credentials: credentialsSchema.optional(),
    via: viaSchema.optional(),
  })
  .superRefine((n, ctx) => {
    if (!n.host && !n.socket) ctx.addIssue({ code: 'custom', message: 'missing (a node needs host or socket)', path: ['host'] });
  });

// A node may be written as an object or as a connection string (mysql://user@host:port/db or
// h=,P=,u=): strings are turned into objects first so that errors keep their exact field path.
const nodeSchema = z.preprocess((v, ctx) => {
  if (typeof v !== 'string') return v;
  try {
    const d = parseConnectionString(v);
    const node: Record<string, unknown> = { host: d.host, port: d.port ?? 3306 };
    if (d.socket) node.socket = d.socket;
    if (d.user) node.credentials = { user: d.user };
    return node;
  } catch (e) {
    // Never echo a password given in the string (the error may be about exactly that).
    const safe = redactConnectionString(v);
    ctx.addIssue({ code: 'custom', message: `${show(safe)}: ${(e as Error).message}`, input: safe });
    return z.NEVER;
  }
}, nodeObject);
export type NodeConfig = z.output<typeof nodeObject>;

// The zone's proxy (a routing target, src/core/proxy/): where the application connects to write
// and to read, and how ezctl moves those routes (HAProxy's admin socket and the haproxy.cfg ezctl
// wrote, which it rewrites on each change). Relative paths are from this file's folder.
const proxySchema = z.strictObject({
  kind: z.enum(['haproxy'], { error: (i) => `${show(i.input)} is not a proxy kind ezctl drives (haproxy); route other proxies from hooks` }).default('haproxy'),
  write: hostPort('the write listener'),
  read: hostPort('the read listener').optional(),
  admin: text('the path of the runtime API\'s unix socket'),
  config: text('the path of the haproxy.cfg ezctl wrote'),
  // its listeners as seen from other zones: { <zone>: { write: host:port, read: host:port } }
  via: z.record(name('zone name'), z.strictObject({ write: hostPort('the write listener seen from that zone'), read: hostPort('the read listener seen from that zone').optional() })).optional(),
});
export type ProxyConfig = z.output<typeof proxySchema>;

const zoneNodesSchema = z.strictObject({
  master: nodeSchema,
  replicas: z.array(nodeSchema).default([]),
  proxy: proxySchema.optional(),
  // Nodes that must never take writes again (an old master after `emha failover`, until `emha
  // rejoin`): DRC neither reads from nor writes to them, the proxy routes nothing to them, and
  // the sandbox restarts them read_only. Each is a node name of this zone.
  fenced: z.array(name('node name')).optional(),
});

// Shard ids owned by a zone: "0-31", "0-15,48-63", or a list of numbers.
const shardRangeSchema = z.unknown().transform((v, ctx): number[] => {
  try {
    if (typeof v === 'number') v = [v];
    if (typeof v === 'string' || (Array.isArray(v) && v.every((x) => Number.isInteger(x) && x >= 0))) return parseShardRanges(v as string | number[]);
    throw new Error(`${show(v)} is not a shard range (like "0-31,40" or [0, 1, 2])`);
  } catch (e) {
    // Messages name the offending part; prefix the whole value only when it says more.
    const m = (e as Error).message;
    ctx.addIssue({ code: 'custom', message: m.startsWith(show(v)) ? m : `${show(v)}: ${m}`, input: v });
    return z.NEVER;
  }
});

const shardsSchema = z.strictObject({
  zones: z.record(z.string(), shardRangeSchema),
  // "db.table": "shard_key_column"
  tables: z.record(z.string().regex(/^[^.\s]+\.[^.\s]+$/, { error: (i) => `${show(i.input)} is not db.table` }), name('column name')).default({}),
});

// DRC settings of a cluster: which tables travel (the cluster's databases, then include/exclude
// patterns like db.*, db.tmp_*, /regex/), how often heartbeats are written.
const drcSchema = z.strictObject({
  include: z.array(text('a table pattern (db.table, db.*, /regex/)')).optional(),
  exclude: z.array(text('a table pattern (db.table, db.*, /regex/)')).optional(),
  heartbeatIntervalMs: z.number().int().min(50, { error: (i) => `${show(i.input)} is below 50 ms` }).max(500, { error: (i) => `${show(i.input)} is above 500 ms (lag would be measured too coarsely)` }).optional(),
  drcDomainOffset: z.number().int().min(1).max(2 ** 31).optional(),
});

// Defaults for `ezctl check` on this cluster, so cron lines stay short; flags override them.
const duration = z.string().regex(/^\d+(\.\d+)?\s*(ms|s|m|h)?$/, { error: (i) => `${show(i.input)} is not a duration (like 500ms, 2s, 30m)` });
const tableKey = z.string().regex(/^([^.\s]+\.[^.\s]+|\*)$/, { error: (i) => `${show(i.input)} is not db.table (or * for every table)` });
const checkSchema = z.strictObject({
  tables: z.array(text('a table pattern (db.table, db.*, /regex/)')).optional(),
  exclude: z.array(text('a table pattern (db.table, db.*, /regex/)')).optional(),
  where: z.record(tableKey, text('an SQL condition')).optional(),
  ignoreColumns: z.record(tableKey, z.array(name('column name'))).optional(),
  mode: z.enum(['count', 'checksum', 'rows'], { error: (i) => `${show(i.input)} is not a mode (count, checksum or rows)` }).optional(),
  hash: z.enum(['crc64', 'md5', 'crc32'], { error: (i) => `${show(i.input)} is not a row hash (crc64, md5 or crc32)` }).optional(),
  concurrency: z.number().int().min(1).max(64).optional(),
  chunkTime: duration.optional(),
  runTime: duration.optional(),
  delay: duration.optional(),
  maxLag: duration.optional(),
  maxLoad: text('status=n,...').optional(),
  criticalLoad: text('status=n,...').optional(),
  throttleFlagFile: text('a file path').optional(),
  pauseWindow: text('hh:mm-hh:mm,...').optional(),
});

// Hooks of multi-step operations (switches): an executable (run, with args; no shell) or a URL
// (POSTed to), given one JSON document at each phase boundary. `events` picks the phases (all when
// absent); steps/hooks.ts runs them. Global hooks run before a cluster's own.
export const HOOK_EVENTS = ['start', 'preflight-done', 'before-ponr', 'after-ponr', 'step-done', 'success', 'failure', 'rollback-done'] as const;
export type HookEvent = (typeof HOOK_EVENTS)[number];
const hookSchema = z
  .strictObject({
    run: text('a path to an executable').optional(),
    args: z.array(z.string()).optional(),
    url: z.url({ protocol: /^https?$/, error: (i) => `${show(i.input)} is not an http(s) URL` }).optional(),
    events: z.array(z.enum(HOOK_EVENTS, { error: (i) => `${show(i.input)} is not a hook event (${HOOK_EVENTS.join(', ')})` })).min(1, { error: () => 'empty (leave events out for every event)' }).optional(),
    timeout: duration.optional(),
  })
  .superRefine((h, ctx) => {
    if (!h.run === !h.url) ctx.addIssue({ code: 'custom', path: ['run'], message: h.run ? 'a hook is run or url, not both' : 'missing (a hook needs run: an executable, or url:)' });
    if (h.args && !h.run) ctx.addIssue({ code: 'custom', path: ['args'], message: 'args belong to a run: hook' });
  });
export type HookConfig = z.output<typeof hookSchema>;
const hooksSchema = z.array(hookSchema);

const clusterSchema = z
  .strictObject({
    model: z.enum(['sharding', 'global'], { error: (i) => `${show(i.input)} is not a cluster model (sharding or global)` }).default('sharding'),
    writerZone: name('zone name').optional(),
    databases: z.array(name('database name')).optional(),
    credentials: credentialsSchema.optional(),
    // the replication user for CHANGE MASTER (emha): this cluster's, over the file's
    replCredentials: credentialsSchema.optional(),
    drcTimestampColumn: name('column name').optional(),
    zones: z.record(z.string(), zoneNodesSchema),
    shards: shardsSchema.optional(),
    drc: drcSchema.optional(),
    check: checkSchema.optional(),
    hooks: hooksSchema.optional(),
  });

export const topologySchema = z
  .strictObject({
    version: z.literal(1, { error: (i) => `${show(i.input)} is not a supported version (1)` }).default(1),
    zones: z.array(name('zone name')).min(1, { error: () => 'empty (at least one zone)' }),
    credentials: credentialsSchema.default({}),
    appCredentials: credentialsSchema.optional(),
    // the replication user a switch or failover gives CHANGE MASTER (user + passwordEnv or defaultsFile)
    replCredentials: credentialsSchema.optional(),
    drcTimestampColumn: name('column name').default('drc_ts'),
    // where daemons keep pid files, logs and control sockets (relative to this file)
    stateDir: text('a directory path').optional(),
    hooks: hooksSchema.optional(),
    // Checked here rather than below: entries with a bad name are dropped from the value the
    // refinement sees, and must not make the record look empty.
    clusters: z.record(name('cluster name'), clusterSchema).refine((r) => Object.keys(r).length > 0, { error: () => 'empty (at least one cluster)' }),
    // moves of tables and databases between instances (ezctl dbus; config/dbus-schema.ts)
    dbus: dbusSectionSchema.optional(),
  })
  // Runs even when fields above failed (when: always), so every problem of a file is listed at
  // once; it therefore reads the value defensively.
  .superRefine((t, ctx) => {
    const declared: string[] = Array.isArray(t.zones) ? t.zones.filter((z): z is string => typeof z === 'string') : [];
    const zones = new Set(declared);
    if (zones.size !== declared.length) ctx.addIssue({ code: 'custom', path: ['zones'], message: `${show(t.zones)} names a zone twice` });
    // A field that failed its type check still holds the raw input here (e.g. an array).
    const isMap = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);
    const clusters = isMap(t.clusters) ? Object.entries(t.clusters) : [];
    for (const [cname, c] of clusters) {
      if (!isMap(c)) continue;
      const base = ['clusters', cname];
      const czones: Record<string, unknown> = isMap(c.zones) ? c.zones : {};
      if (Array.isArray(t.zones)) {
        for (const z of Object.keys(czones)) {
          if (!zones.has(z)) ctx.addIssue({ code: 'custom', path: [...base, 'zones', z], message: `zone ${show(z)} is not declared in zones (${declared.join(', ')})` });
        }
      }
      if (isMap(c.zones) && Object.keys(czones).length === 0) ctx.addIssue({ code: 'custom', path: [...base, 'zones'], message: 'empty (a cluster needs at least one zone)' });
      // One server is one node of a cluster: the same host:port (or socket) twice would make DRC
      // read and write one server as two zones, or count a master as its own replica.
      const seen = new Map<string, string>();
      for (const [z, zn] of Object.entries(czones)) {
        if (!isMap(zn)) continue;
        const nodes: Array<[unknown, (string | number)[], string]> = [[zn.master, ['master'], `${z}-master`]];
        if (Array.isArray(zn.replicas)) zn.replicas.forEach((r, i) => nodes.push([r, ['replicas', i], `${z}-replica${i + 1}`]));
        const names = new Set(nodes.map(([n, , generated]) => (isMap(n) && typeof n.name === 'string' ? n.name : generated)));
        if (Array.isArray(zn.fenced)) {
          zn.fenced.forEach((f, i) => {
            if (typeof f === 'string' && !names.has(f)) ctx.addIssue({ code: 'custom', path: [...base, 'zones', z, 'fenced', i], message: `${show(f)} is not a node of zone ${z} (${[...names].join(', ')})` });
          });
        }
        const viaZones = (v: unknown, path: (string | number)[]) => {
          if (!isMap(v)) return;
          for (const vz of Object.keys(v)) {
            if (vz === z) ctx.addIssue({ code: 'custom', path: [...path, vz], message: `zone ${show(vz)} is this node's own zone: inside a zone the node is reached at its own address` });
            else if (Array.isArray(t.zones) && !zones.has(vz)) ctx.addIssue({ code: 'custom', path: [...path, vz], message: `zone ${show(vz)} is not declared in zones (${declared.join(', ')})` });
          }
        };
        if (isMap(zn.proxy)) viaZones(zn.proxy.via, [...base, 'zones', z, 'proxy', 'via']);
        for (const [n, rel, generated] of nodes) {
          if (!isMap(n)) continue;
          viaZones(n.via, [...base, 'zones', z, ...rel, 'via']);
          const where = serverKey(n);
          if (!where) continue;
          const path = [...base, 'zones', z, ...rel];
          const label = `${typeof n.name === 'string' ? n.name : generated} (${path.join('.')})`;
          const prev = seen.get(where.key);
          if (prev) ctx.addIssue({ code: 'custom', path, message: `${where.text} is also ${prev}: two nodes cannot be one server` });
          else seen.set(where.key, label);
        }
      }
      if (c.model === 'global') {
        if (!c.writerZone) ctx.addIssue({ code: 'custom', path: [...base, 'writerZone'], message: 'missing (a global cluster needs the zone that takes writes)' });
        else if (!(c.writerZone in czones)) ctx.addIssue({ code: 'custom', path: [...base, 'writerZone'], message: `${show(c.writerZone)} is not one of this cluster's zones (${Object.keys(czones).join(', ')})` });
      } else if (c.writerZone && c.model === 'sharding') {
        ctx.addIssue({ code: 'custom', path: [...base, 'writerZone'], message: 'only a global cluster has a writer zone (this one is sharding)' });
      }
      const shardZones = isMap(c.shards) && isMap(c.shards.zones) ? Object.entries(c.shards.zones) : [];
      const owner = new Map<number, string>();
      for (const [z, ids] of shardZones) {
        if (!(z in czones)) ctx.addIssue({ code: 'custom', path: [...base, 'shards', 'zones', z], message: `zone ${show(z)} is not one of this cluster's zones` });
        if (!Array.isArray(ids)) continue;
        for (const id of ids) {
          const prev = owner.get(id);
          if (prev !== undefined) {
            ctx.addIssue({ code: 'custom', path: [...base, 'shards', 'zones', z], message: `shard ${id} is already owned by zone ${prev}` });
            break;
          }
          owner.set(id, z);
        }
      }
    }
    // A declared zone no cluster has nodes in is a zone nothing runs in: a forgotten block of
    // nodes, or a zone that should not be listed.
    // (Only when every cluster lists its zones: an empty or broken list is reported already.)
    if (clusters.length && Array.isArray(t.zones) && clusters.every(([, c]) => isMap(c) && isMap(c.zones) && Object.keys(c.zones).length > 0)) {
      t.zones.forEach((z, i) => {
        if (typeof z !== 'string' || declared.indexOf(z) !== i) return;
        const used = clusters.some(([, c]) => isMap(c) && isMap(c.zones) && z in c.zones);
        if (!used) ctx.addIssue({ code: 'custom', path: ['zones', i], message: `zone ${show(z)} has no nodes in any cluster (add them under clusters.<name>.zones.${z}, or remove ${z} from zones)` });
      });
    }
  }, { when: () => true });

/** Which server a node is, for finding one server named twice: its socket, or host:port. */
function serverKey(n: Record<string, unknown>): { key: string; text: string } | undefined {
  if (typeof n.socket === 'string' && n.socket) return { key: `socket ${n.socket}`, text: `socket ${n.socket}` };
  if (typeof n.host !== 'string' || !n.host) return undefined;
  const port = typeof n.port === 'number' ? n.port : 3306;
  // the loopback spellings reach the same server
  const host = hostKey(n.host);
  return { key: `${host}:${port}`, text: `${n.host.includes(':') ? `[${n.host}]` : n.host}:${port}` };
}

export type TopologyFile = z.output<typeof topologySchema>;
export type ClusterConfig = TopologyFile['clusters'][string];

/** "0-31,40,48-63" → sorted unique ids. */
export function parseShardRanges(v: string | number[]): number[] {
  if (Array.isArray(v)) return [...new Set(v)].sort((a, b) => a - b);
  const out = new Set<number>();
  for (const part of v.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(part);
    if (!m) throw new Error(`${JSON.stringify(part)} is not a shard id or range like 0-31`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw new Error(`${JSON.stringify(part)} is not a shard range (it ends before it starts)`);
    if (hi - lo > 1_000_000) throw new Error(`${JSON.stringify(part)} is not a shard range (more than 1000000 ids)`);
    for (let i = lo; i <= hi; i++) out.add(i);
  }
  if (out.size === 0) throw new Error('no shard ids');
  return [...out].sort((a, b) => a - b);
}

// What zod's type names mean to someone writing YAML.
const KIND: Record<string, string> = {
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
  boolean: 'true or false',
  string: 'a string',
  number: 'a number',
};

/** Zod issues → one line each: "path.to.field: message". */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((i) => {
    const path = i.path.map(String).join('.');
    let msg = i.message;
    if (i.code === 'unrecognized_keys') {
      return i.keys.map((k) => `${path ? path + '.' : ''}${k}: unknown field`).join('\n');
    }
    // A bad record key (cluster name, db.table): the key schema's own message says why.
    if (i.code === 'invalid_key' && i.issues.length) msg = i.issues.map((x) => x.message).join('; ');
    if (i.code === 'invalid_type' && /received undefined/.test(msg)) msg = `missing (expected ${KIND[i.expected] ?? i.expected})`;
    // zod's own wording ("Invalid input: expected array, received string") names no value:
    // say what was found when it was reported (safeParse with reportInput) and is not secret.
    else if (i.code === 'invalid_type' && /^Invalid input/.test(msg) && i.expected in KIND && 'input' in i) msg = `${show(i.input)} is not ${KIND[i.expected]}`;
    return `${path || '(top level)'}: ${msg}`;
  }).flatMap((l) => l.split('\n'));
}
