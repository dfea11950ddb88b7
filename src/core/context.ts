// What every command action receives: the global options, a logger, the result writer, and
// lazy access to the topology file and to connections (loaded only by commands that need them).
import { Logger } from './ui/log.js';
import type { Topology, ResolvedNode } from './config/load.js';
import type { Db, Endpoint, SecretOptions } from './db/connect.js';

export interface GlobalOptions {
  config?: string;
  json: boolean;
  verbose: number;
  quiet: boolean;
  color: boolean;
  defaultsFile?: string;
  askPass: boolean;
  /** seconds, possibly fractional (--connect-timeout 500ms is 0.5) */
  connectTimeout: number;
  /** the zone this process connects from (--from-zone; then $EZCTL_ZONE, then the topology's first zone): another zone's nodes are reached at their address as seen from it (`via:`) */
  fromZone?: string;
}

/** Whose side a connection is made from (config/via.ts): a zone, instead of the operator's. */
export interface ConnectFrom { fromZone?: string }

export interface Ctx {
  opts: GlobalOptions;
  log: Logger;
  /** Write the command's result to stdout: one JSON document with --json, text otherwise. */
  result(value: unknown, text: () => string): void;
  topology(): Promise<Topology>;
  secrets(): SecretOptions;
  /** the node's endpoint as seen from `o.fromZone`, by default from the operator's zone (opts.fromZone) */
  endpoint(node: ResolvedNode, o?: ConnectFrom): Promise<Endpoint>;
  connect(node: ResolvedNode, o?: ConnectFrom): Promise<Db>;
}

export function makeCtx(opts: GlobalOptions): Ctx {
  const log = new Logger({ verbose: opts.verbose, quiet: opts.quiet, color: opts.color });
  let topo: Promise<Topology> | undefined;
  let secrets: SecretOptions | undefined;
  let zone: Promise<string | undefined> | undefined;
  const operatorZone = (): Promise<string | undefined> => {
    zone ??= (async () => {
      const [{ operatorZone: pick }, { badInput }] = await Promise.all([import('./config/via.js'), import('./exit.js')]);
      const zones = await ctx.topology().then((t) => t.file.zones, () => [] as string[]);
      const z = pick(zones, opts.fromZone);
      if (z !== undefined && zones.length && !zones.includes(z)) {
        throw badInput(`${opts.fromZone !== undefined ? '--from-zone' : '$EZCTL_ZONE'} ${JSON.stringify(z)} is not a zone of the topology file`, { hint: `zones: ${zones.join(', ')}` });
      }
      return z;
    })();
    return zone;
  };
  const ctx: Ctx = {
    opts,
    log,
    result(value, text) {
      if (opts.json) process.stdout.write(JSON.stringify(value, jsonReplacer, 2) + '\n');
      else {
        const t = text();
        if (t) process.stdout.write(t.endsWith('\n') ? t : t + '\n');
      }
    },
    topology() {
      topo ??= import('./config/load.js').then((m) => m.loadTopology(opts.config));
      return topo;
    },
    secrets() {
      if (!secrets) {
        secrets = { warn: (m) => log.warn(m) };
        if (opts.defaultsFile) secrets.defaultsFile = opts.defaultsFile;
        if (opts.askPass) {
          const asked = new Map<string, Promise<string>>();
          secrets.askPass = (user) => {
            let p = asked.get(user);
            if (!p) {
              p = import('./ui/prompt.js').then((m) => m.promptSecret(`Password for ${user}: `));
              asked.set(user, p);
            }
            return p;
          };
        }
      }
      return secrets;
    },
    async endpoint(node, o) {
      const { resolveEndpoint } = await import('./db/connect.js');
      // the operator's zone matters only for a node another zone reaches differently
      const from = o?.fromZone ?? (node.via ? await operatorZone() : undefined);
      return resolveEndpoint(node, ctx.secrets(), from);
    },
    async connect(node, o) {
      const { connect } = await import('./db/connect.js');
      return connect(await ctx.endpoint(node, o), { timeoutMs: opts.connectTimeout * 1000 });
    },
  };
  return ctx;
}

/** BigInt and Buffer values survive JSON output (as decimal strings and hex). */
export function jsonReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value && typeof value === 'object' && (value as { type?: string }).type === 'Buffer' && Array.isArray((value as { data?: unknown }).data)) {
    return Buffer.from((value as { data: number[] }).data).toString('hex');
  }
  return value;
}
