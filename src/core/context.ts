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
}

export interface Ctx {
  opts: GlobalOptions;
  log: Logger;
  /** Write the command's result to stdout: one JSON document with --json, text otherwise. */
  result(value: unknown, text: () => string): void;
  topology(): Promise<Topology>;
  secrets(): SecretOptions;
  endpoint(node: ResolvedNode): Promise<Endpoint>;
  connect(node: ResolvedNode): Promise<Db>;
}

export function makeCtx(opts: GlobalOptions): Ctx {
  const log = new Logger({ verbose: opts.verbose, quiet: opts.quiet, color: opts.color });
  let topo: Promise<Topology> | undefined;
  let secrets: SecretOptions | undefined;
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
    async endpoint(node) {
      const { resolveEndpoint } = await import('./db/connect.js');
      return resolveEndpoint(node, ctx.secrets());
    },
    async connect(node) {
      const { connect } = await import('./db/connect.js');
      return connect(await ctx.endpoint(node), { timeoutMs: opts.connectTimeout * 1000 });
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
