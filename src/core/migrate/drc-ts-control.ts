// The control socket of a running `migrate drc-ts --execute`: status (steps done of all, the step
// under way, ETA), pause and resume before the next step, stop after the step under way (each
// step is whole: the same command with the printed --value continues from what each zone has).
// One per cluster on a host at a time: `ezctl migrate drc-ts status|pause|resume|stop --cluster C`.
import { join } from 'node:path';
import type { Ctx } from '../context.js';
import type { Topology } from '../config/load.js';
import { sendJob } from '../control/commands.js';
import { openRunControl, runJob, type RunControl, type RunStatus } from '../control/run.js';

export const drcTsJob = runJob('migrate drc-ts');
export type DrcTsCommand = keyof typeof drcTsJob.commands;

/** Where a running migrate drc-ts of this cluster answers (beside osc's and check's sockets). */
export function drcTsSocketPath(topo: Topology, cluster: string): string {
  return join(topo.stateDir(), `drc-ts-${cluster}.sock`);
}

/** Claim the cluster's drc-ts socket before the first step; refused (exit 4) while another answers there. */
export function openDrcTsControl(topo: Topology, cluster: string, onStop: () => void): Promise<RunControl> {
  return openRunControl(drcTsSocketPath(topo, cluster), drcTsJob, {
    cluster,
    unit: 'steps',
    onStop,
    cli: 'ezctl migrate drc-ts',
    busyHint: `\`ezctl migrate drc-ts status --cluster ${cluster}\` shows it; wait for it, or \`ezctl migrate drc-ts stop --cluster ${cluster}\``,
  });
}

/** `ezctl migrate drc-ts status|pause|resume|stop`: one request to the cluster's running migration. */
export async function drcTsControl(ctx: Ctx, o: { cluster?: string; cmd: DrcTsCommand }): Promise<RunStatus> {
  const topo = await ctx.topology();
  const cluster = topo.cluster(o.cluster).name;
  return sendJob({ kind: drcTsJob, path: drcTsSocketPath(topo, cluster), job: `migrate drc-ts of cluster ${cluster}`, fix: `start one with \`ezctl migrate drc-ts --cluster ${cluster} --execute\`` }, o.cmd);
}
