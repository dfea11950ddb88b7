// ezctl jobs: the long jobs of the clusters (osc, migrate, check, repair, switches), from any host.
import type { Command } from 'commander';
import { action, examples } from './common.js';
import { ExitCode } from '../core/exit.js';

export function registerJobs(program: Command): void {
  program
    .command('jobs')
    .description('the long jobs of every cluster, read from each zone master, and of the D-Bus moves the topology file declares, read from each move\'s target (so from any host): running, stopped (their lease dead: --resume continues them) and failed; --all adds finished ones')
    .option('--cluster <name>', 'only this cluster, or `dbus` for the moves, `dbus-cut:<move>` for a move\'s cut-overs (default: every cluster and move of the topology file)')
    .option('--all', 'finished jobs too: done, aborted, and failures a later job on the same target replaced')
    .addHelpText(
      'after',
      '\nA job holds a lease on its target (a table db.t; check-full for check full; the whole cluster for a switch) in every zone it\n' +
        'touches, renewed while it runs (every third of --lease, 30s by default); a second job on the same target\n' +
        'is refused (exit 4) naming it. A job whose lease expired, or whose process on this host is gone, is\n' +
        'shown as stopped ("dead"): the same command with --resume continues it, from any host.\n' +
        'Exit 0 listed; 3 when a zone master could not be read (what could be read is listed).\n' +
        examples('ezctl jobs', 'ezctl jobs --cluster demo --all', 'ezctl --json jobs'),
    )
    .action(action(async (ctx, o: { cluster?: string; all?: boolean }) => {
      const { listJobs } = await import('../core/job/list.js');
      const { renderJobs } = await import('../core/job/render.js');
      const { dbusJobPlaces } = await import('../core/dbus/index.js');
      const places = await dbusJobPlaces(ctx);
      const r = await listJobs(ctx, { ...(o.cluster ? { cluster: o.cluster } : {}), ...(o.all ? { all: true } : {}), places });
      for (const e of r.errors) ctx.log.error(`cluster ${e.cluster} zone ${e.zone}: ${e.error}`);
      ctx.result(r, () => renderJobs(r));
      return r.errors.length ? ExitCode.runtime : ExitCode.ok;
    }));
}
