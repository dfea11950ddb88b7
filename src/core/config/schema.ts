// The topology file (ezctl.yaml): zones, clusters, nodes, credentials, the DRC timestamp
// column and the shard→zone map. Validation yields one line per problem, naming the field
// path, the value found and what was expected.
import { z } from 'zod';
import { parseConnectionString } from './dsn.js';

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

const nodeObject = z
  .strictObject({
    name: name('node name').optional(),
    host: text('a host name or address').optional(),
    port: port.optional(),
    socket: text('a socket path').optional(),
    tls: tlsSchema.optional(),
    credentials: credentialsSchema.optional(),
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
    ctx.addIssue({ code: 'custom', message: `${show(v)}: ${(e as Error).message}`, input: v });
    return z.NEVER;
  }
}, nodeObject);
export type NodeConfig = z.output<typeof nodeObject>;

const zoneNodesSchema = z.strictObject({
  master: nodeSchema,
  replicas: z.array(nodeSchema).default([]),
});

// Shard ids owned by a zone: "0-31", "0-15,48-63", or a list of numbers.
const shardRangeSchema = z.unknown().transform((v, ctx): number[] => {
  try {
    if (typeof v === 'number') v = [v];
    if (typeof v === 'string' || (Array.isArray(v) && v.every((x) => Number.isInteger(x) && x >= 0))) return parseShardRanges(v as string | number[]);
    throw new Error('is not a shard range (like "0-31,40" or [0, 1, 2])');
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `${show(v)} ${(e as Error).message}`, input: v });
    return z.NEVER;
  }
});

const shardsSchema = z.strictObject({
  zones: z.record(z.string(), shardRangeSchema),
  // "db.table": "shard_key_column"
  tables: z.record(z.string().regex(/^[^.\s]+\.[^.\s]+$/, { error: (i) => `${show(i.input)} is not db.table` }), name('column name')).default({}),
});

const clusterSchema = z
  .strictObject({
    model: z.enum(['sharding', 'global'], { error: (i) => `${show(i.input)} is not a cluster model (sharding or global)` }).default('sharding'),
    writerZone: name('zone name').optional(),
    databases: z.array(name('database name')).optional(),
    credentials: credentialsSchema.optional(),
    drcTimestampColumn: name('column name').optional(),
    zones: z.record(z.string(), zoneNodesSchema),
    shards: shardsSchema.optional(),
  });

export const topologySchema = z
  .strictObject({
    version: z.literal(1, { error: (i) => `${show(i.input)} is not a supported version (1)` }).default(1),
    zones: z.array(name('zone name')).min(1, { error: () => 'empty (at least one zone)' }),
    credentials: credentialsSchema.default({}),
    appCredentials: credentialsSchema.optional(),
    drcTimestampColumn: name('column name').default('drc_ts'),
    clusters: z.record(name('cluster name'), clusterSchema),
  })
  .superRefine((t, ctx) => {
    const zones = new Set(t.zones);
    if (zones.size !== t.zones.length) ctx.addIssue({ code: 'custom', path: ['zones'], message: `${show(t.zones)} names a zone twice` });
    for (const [cname, c] of Object.entries(t.clusters)) {
      const base = ['clusters', cname];
      for (const z of Object.keys(c.zones)) {
        if (!zones.has(z)) ctx.addIssue({ code: 'custom', path: [...base, 'zones', z], message: `zone ${show(z)} is not declared in zones (${t.zones.join(', ')})` });
      }
      if (Object.keys(c.zones).length === 0) ctx.addIssue({ code: 'custom', path: [...base, 'zones'], message: 'empty (a cluster needs at least one zone)' });
      if (c.model === 'global') {
        if (!c.writerZone) ctx.addIssue({ code: 'custom', path: [...base, 'writerZone'], message: 'missing (a global cluster needs the zone that takes writes)' });
        else if (!(c.writerZone in c.zones)) ctx.addIssue({ code: 'custom', path: [...base, 'writerZone'], message: `${show(c.writerZone)} is not one of this cluster's zones (${Object.keys(c.zones).join(', ')})` });
      } else if (c.writerZone) {
        ctx.addIssue({ code: 'custom', path: [...base, 'writerZone'], message: 'only a global cluster has a writer zone (this one is sharding)' });
      }
      if (c.shards) {
        const owner = new Map<number, string>();
        for (const [z, ids] of Object.entries(c.shards.zones)) {
          if (!(z in c.zones)) ctx.addIssue({ code: 'custom', path: [...base, 'shards', 'zones', z], message: `zone ${show(z)} is not one of this cluster's zones` });
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
    }
  });

export type TopologyFile = z.output<typeof topologySchema>;
export type ClusterConfig = TopologyFile['clusters'][string];

/** "0-31,40,48-63" → sorted unique ids. */
export function parseShardRanges(v: string | number[]): number[] {
  if (Array.isArray(v)) return [...new Set(v)].sort((a, b) => a - b);
  const out = new Set<number>();
  for (const part of v.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(part);
    if (!m) throw new Error(`"${part}" is not a shard id or range like 0-31`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw new Error(`range ${part} ends before it starts`);
    if (hi - lo > 1_000_000) throw new Error(`range ${part} is too large`);
    for (let i = lo; i <= hi; i++) out.add(i);
  }
  if (out.size === 0) throw new Error('no shard ids');
  return [...out].sort((a, b) => a - b);
}

/** Zod issues → one line each: "path.to.field: message". */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((i) => {
    const path = i.path.map(String).join('.');
    let msg = i.message;
    if (i.code === 'unrecognized_keys') {
      return i.keys.map((k) => `${path ? path + '.' : ''}${k}: unknown field`).join('\n');
    }
    if (i.code === 'invalid_type' && /received undefined/.test(msg)) msg = `missing (expected ${i.expected})`;
    return `${path || '(top level)'}: ${msg}`;
  }).flatMap((l) => l.split('\n'));
}
