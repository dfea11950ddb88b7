// The dbus job's names and its control protocol: its lease rows and job row live in `_ezctl` on
// the move's TARGET (cluster 'dbus', target = the move's name), its apply checkpoints there too
// (one stream per source: `dbus:<move>:<source label>`), its control socket on the host it runs.
import { join } from 'node:path';
import { homedir } from 'node:os';
import type { Ctx } from '../context.js';
import { command, jobKind } from '../control/commands.js';
import { loadMoveServers, type DbusStatus } from './spec.js';
import type { ResolvedNode } from '../config/load.js';

/** the `cluster` column of a dbus job's rows: moves are not a cluster's jobs (a target may be any instance) */
export const DBUS_CLUSTER = 'dbus';

/** the `cluster` column of a move's cut-over and rollback jobs (their lease and journal at the target) */
export const cutoverLeaseCluster = (move: string) => `dbus-cut:${move}`.slice(0, 64);

/** The checkpoint name (`_ezctl.apply_checkpoint.name`) of a move's stream from one source. */
export const streamName = (move: string, label: string): string => `dbus:${move}:${label}`;

/** A reader's server id on a source: stable per stream, apart from DRC's and the replicas' (small ids). */
export function serverIdOf(name: string): number {
  let h = 2166136261;
  for (const c of Buffer.from(name)) h = Math.imul(h ^ c, 16777619) >>> 0;
  return 3_000_000_000 + (h % 1_000_000_000);
}

/** Where the job's control socket lives on this host. */
export async function socketFor(ctx: Ctx, move: string): Promise<string> {
  let dir: string;
  try {
    dir = (await ctx.topology()).stateDir();
  } catch {
    dir = join(process.env.XDG_STATE_HOME || join(homedir(), '.local', 'state'), 'ezctl');
  }
  return join(dir, `dbus-${move.replace(/[^A-Za-z0-9_.-]/g, '_')}.sock`);
}

export const dbusJob = jobKind('dbus job', {
  status: command<DbusStatus>()('the move\'s state: per source the positions read and applied, lag; per table the rows copied'),
  pause: command<DbusStatus>()('stop the copy and the apply; the positions are kept'),
  resume: command<DbusStatus>()('go on from the kept positions'),
  end: command<{ state: string }>()('end the job as done (a cut-over or a rollback finished: C3): the streams stop, the checkpoints stay', { state: { type: 'string', oneOf: ['cut-over', 'rolled-back'] } }),
  abort: command<{ dropped: string[]; kept: string[] }>()('end the job: the streams stop, its checkpoints go; the target tables stay unless drop-target', { 'drop-target': { type: 'boolean', optional: true } }),
});

/**
 * Where `ezctl jobs` finds the moves' jobs: each move declared in the topology file keeps its job
 * rows at its target (the move's under cluster 'dbus', its cut-over's and rollback's under
 * 'dbus-cut:<move>'); a target shared by several moves is read once for 'dbus'. Moves given only
 * by `--spec` files are not declared anywhere `jobs` can see.
 */
export async function dbusJobPlaces(ctx: Ctx): Promise<Array<{ cluster: string; zone: string; node: ResolvedNode }>> {
  let names: string[];
  try {
    names = Object.keys((await ctx.topology()).file.dbus?.moves ?? {});
  } catch {
    return [];
  }
  const out: Array<{ cluster: string; zone: string; node: ResolvedNode }> = [];
  const seen = new Set<string>();
  for (const name of names) {
    const { target } = await loadMoveServers(ctx, { name });
    const node = target.node!;
    const at = node.socket ?? `${node.host}:${node.port}`;
    if (!seen.has(at)) {
      seen.add(at);
      out.push({ cluster: DBUS_CLUSTER, zone: target.label, node });
    }
    out.push({ cluster: cutoverLeaseCluster(name), zone: 'target', node });
  }
  return out;
}
