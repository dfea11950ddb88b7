// Finds, parses and validates the topology file, and resolves it into nodes with their
// credentials. Order of discovery: --config, $EZCTL_CONFIG, ./ezctl.yaml, ./.ezctl/sandbox/ezctl.yaml.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { LineCounter, parseDocument } from 'yaml';
import { badInput } from '../exit.js';
import { topologySchema, formatIssues, type ClusterConfig, type Credentials, type NodeConfig, type TopologyFile } from './schema.js';
import { describeAddress } from './dsn.js';
import { parseVia, type HostPort } from './via.js';

export const DEFAULT_SANDBOX_DIR = '.ezctl/sandbox';

export function configCandidates(explicit: string | undefined, env = process.env, cwd = process.cwd()): { path: string; source: string }[] {
  if (explicit) return [{ path: resolve(cwd, explicit), source: '--config' }];
  if (env.EZCTL_CONFIG) return [{ path: resolve(cwd, env.EZCTL_CONFIG), source: '$EZCTL_CONFIG' }];
  return [
    { path: resolve(cwd, 'ezctl.yaml'), source: './ezctl.yaml' },
    { path: resolve(cwd, DEFAULT_SANDBOX_DIR, 'ezctl.yaml'), source: `./${DEFAULT_SANDBOX_DIR}/ezctl.yaml` },
  ];
}

export function findConfig(explicit: string | undefined, env = process.env, cwd = process.cwd()): string {
  const candidates = configCandidates(explicit, env, cwd);
  for (const c of candidates) if (existsSync(c.path)) return c.path;
  if (explicit || env.EZCTL_CONFIG) {
    const c = candidates[0]!;
    throw badInput(`topology file ${c.path} (from ${c.source}) does not exist`);
  }
  throw badInput('no topology file found', {
    hint: `looked for ${candidates.map((c) => c.source).join(' and ')}; pass --config FILE, set EZCTL_CONFIG, or run \`ezctl sandbox up\``,
  });
}

export type Role = 'master' | 'replica';

export interface ResolvedNode {
  cluster: string;
  zone: string;
  role: Role;
  /** zone/role index, e.g. "bj-master", "bj-replica1" unless named in the file */
  name: string;
  host: string;
  port: number;
  socket?: string;
  tls?: NodeConfig['tls'];
  credentials: Credentials;
  /** directory the topology file lives in: relative defaults files resolve from here */
  baseDir: string;
  /** listed in its zone's `fenced`: it must never take writes again (DRC and the proxy refuse it) */
  fenced?: boolean;
  /** its address as seen from other zones (`via:`); config/via.ts addressFrom picks one */
  via?: Record<string, HostPort>;
}

export function nodeLabel(n: Pick<ResolvedNode, 'host' | 'port' | 'socket'>): string {
  return describeAddress(n);
}

export class Topology {
  constructor(
    readonly file: TopologyFile,
    readonly path: string,
  ) {}

  get dir(): string {
    return dirname(this.path);
  }

  get clusterNames(): string[] {
    return Object.keys(this.file.clusters);
  }

  /** The named cluster; with no name, the only one (or a usage error naming the choices). */
  cluster(name?: string): { name: string; config: ClusterConfig } {
    const names = this.clusterNames;
    if (name === undefined) {
      if (names.length === 1) return { name: names[0]!, config: this.file.clusters[names[0]!]! };
      throw badInput(`the topology file has ${names.length} clusters; say which with --cluster`, { hint: `clusters: ${names.join(', ')}` });
    }
    const config = this.file.clusters[name];
    if (!config) throw badInput(`cluster ${JSON.stringify(name)} is not in ${this.path}`, { hint: `clusters: ${names.join(', ')}` });
    return { name, config };
  }

  /** Where daemons of this topology keep pid files, logs and control sockets. */
  stateDir(): string {
    if (this.file.stateDir) return expandPath(this.file.stateDir, this.dir);
    const base = process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
    return join(base, 'ezctl', createHash('sha1').update(this.path).digest('hex').slice(0, 12));
  }

  drcTimestampColumn(cluster: string): string {
    return this.file.clusters[cluster]?.drcTimestampColumn ?? this.file.drcTimestampColumn;
  }

  /** Every node of a cluster (or of all clusters), masters first within each zone. */
  nodes(clusterName?: string): ResolvedNode[] {
    const names = clusterName === undefined ? this.clusterNames : [this.cluster(clusterName).name];
    const out: ResolvedNode[] = [];
    for (const cname of names) {
      const c = this.file.clusters[cname]!;
      for (const zone of this.file.zones) {
        const zn = c.zones[zone];
        if (!zn) continue;
        out.push(this.resolveNode(cname, c, zone, 'master', zn.master, 0));
        zn.replicas.forEach((r, i) => out.push(this.resolveNode(cname, c, zone, 'replica', r, i + 1)));
      }
    }
    return out;
  }

  /** The names a zone's `fenced` list holds (empty when none). */
  fencedNames(clusterName: string, zone: string): string[] {
    return [...(this.cluster(clusterName).config.zones[zone]?.fenced ?? [])];
  }

  /** The node of a cluster by its name (any zone), or undefined. */
  node(clusterName: string, name: string): ResolvedNode | undefined {
    return this.nodes(clusterName).find((n) => n.name === name);
  }

  master(clusterName: string, zone: string): ResolvedNode {
    const n = this.nodes(clusterName).find((x) => x.zone === zone && x.role === 'master');
    if (!n) throw badInput(`cluster ${clusterName} has no zone ${JSON.stringify(zone)}`, { hint: `zones: ${this.zonesOf(clusterName).join(', ')}` });
    return n;
  }

  /** The zones a command works on: the ones asked for (all when none), each one the cluster has. */
  zonesChosen(clusterName: string, asked?: string[]): string[] {
    const known = this.zonesOf(clusterName);
    const unknown = (asked ?? []).filter((z) => !known.includes(z));
    if (unknown.length) throw badInput(`cluster ${clusterName} has no zone ${unknown.map((z) => JSON.stringify(z)).join(', ')}`, { hint: `zones: ${known.join(', ')}` });
    return asked ?? known;
  }

  zonesOf(clusterName: string): string[] {
    const c = this.cluster(clusterName).config;
    return this.file.zones.filter((z) => z in c.zones);
  }

  private resolveNode(cluster: string, c: ClusterConfig, zone: string, role: Role, n: NodeConfig, index: number): ResolvedNode {
    const credentials: Credentials = { ...this.file.credentials, ...c.credentials, ...n.credentials };
    const out: ResolvedNode = {
      cluster,
      zone,
      role,
      name: n.name ?? (role === 'master' ? `${zone}-master` : `${zone}-replica${index}`),
      host: n.host ?? 'localhost',
      port: n.port ?? 3306,
      credentials,
      baseDir: this.dir,
    };
    if (n.socket) out.socket = n.socket;
    if (n.tls) out.tls = n.tls;
    if (n.via) out.via = parseVia(n.via)!;
    if (c.zones[zone]?.fenced?.includes(out.name)) out.fenced = true;
    return out;
  }
}

export function expandPath(p: string, baseDir: string): string {
  if (p === '~' || p.startsWith('~/')) return resolve(homedir(), p.slice(2));
  return isAbsolute(p) ? p : resolve(baseDir, p);
}

/** YAML text as plain data; a syntax error is refused (exit 2) with one `path:line:col: message` line per problem. */
export function parseYamlFile(text: string, path: string): unknown {
  // With prettyErrors off, errors carry only offsets: the line counter turns them into line:col.
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: false, lineCounter });
  if (doc.errors.length) {
    throw badInput(`${path} is not valid YAML`, {
      details: doc.errors.map((e) => {
        const pos = e.linePos?.[0] ?? (e.pos ? lineCounter.linePos(e.pos[0]) : undefined);
        return `${path}${pos ? `:${pos.line}:${pos.col}` : ''}: ${e.message.split('\n')[0]}`;
      }),
    });
  }
  return doc.toJS();
}

/** Parse and validate topology text; every problem becomes one line of the thrown error. */
export function parseTopology(text: string, path: string): Topology {
  const raw = parseYamlFile(text, path);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    throw badInput(`${path}: expected a mapping with zones: and clusters:`);
  }
  const parsed = topologySchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) {
    const lines = formatIssues(parsed.error.issues);
    throw badInput(`${path} has ${lines.length} problem${lines.length === 1 ? '' : 's'}`, { details: lines });
  }
  return new Topology(parsed.data, path);
}

export function loadTopology(explicit?: string): Topology {
  const path = findConfig(explicit);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw badInput(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseTopology(text, path);
}
