// The control socket of a running `check full`: status (tables done of all, rows, the tables
// under way, ETA), pause and resume through its throttler, stop at the next chunk boundary (the
// run kept as unfinished, so `check full --resume` continues it). One check full per cluster on
// a host at a time, as one osc per table: `ezctl check status|pause|resume|stop --cluster C`.
import { join } from 'node:path';
import type { Ctx } from '../context.js';
import type { Topology } from '../config/load.js';
import { sendJob } from '../control/commands.js';
import { openRunControl, runJob, type RunControl, type RunStatus } from '../control/run.js';

export const checkJob = runJob('check full');
export type CheckCommand = keyof typeof checkJob.commands;

/** Where a running check full of this cluster answers (beside osc's sockets). */
export function checkSocketPath(topo: Topology, cluster: string): string {
  return join(topo.stateDir(), `check-${cluster}.sock`);
}

/** Claim the cluster's check socket before the run is opened; refused (exit 4) while another check full answers there. */
export function openCheckControl(topo: Topology, cluster: string, onStop: () => void): Promise<RunControl> {
  return openRunControl(checkSocketPath(topo, cluster), checkJob, {
    cluster,
    unit: 'tables',
    onStop,
    cli: 'ezctl check',
    busyHint: `\`ezctl check status --cluster ${cluster}\` shows it; wait for it, or \`ezctl check stop --cluster ${cluster}\` (then \`check full --resume\` continues it)`,
  });
}

/** `ezctl check status|pause|resume|stop`: one request to the cluster's running check full. */
export async function checkControl(ctx: Ctx, o: { cluster?: string; cmd: CheckCommand }): Promise<RunStatus> {
  const topo = await ctx.topology();
  const cluster = topo.cluster(o.cluster).name;
  return sendJob({ kind: checkJob, path: checkSocketPath(topo, cluster), job: `check full of cluster ${cluster}`, fix: `start one with \`ezctl check full --cluster ${cluster}\`` }, o.cmd);
}
