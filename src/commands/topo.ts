// ezctl topo: see what runs, and check it against the file and what the tools need.
import type { Command } from 'commander';
import { action, examples } from './common.js';
import { ExitCode } from '../core/exit.js';

export function registerTopo(program: Command): void {
  const topo = program
    .command('topo')
    .description('show and validate the topology: every node, role, version, read_only, GTID, lag')
    .addHelpText('after', examples('ezctl topo show', 'ezctl topo check --cluster orders'));

  topo
    .command('show')
    .description('one row per node: zone, role, address, version, read_only, GTID, source, threads, lag, last error')
    .option('--cluster <name>', 'only this cluster')
    .addHelpText('after', examples('ezctl topo show --cluster demo', 'ezctl --json topo show'))
    .action(action(async (ctx, o: { cluster?: string }) => {
      const { topoShow, renderTopoShow } = await import('../core/topo/show.js');
      const rows = await topoShow(ctx, o);
      ctx.result(rows, () => renderTopoShow(rows));
      return rows.some((r) => r.error) ? ExitCode.runtime : ExitCode.ok;
    }));

  topo
    .command('check')
    .description('compare what runs with the file and with what DRC needs; exit 4 with one line per problem')
    .option('--cluster <name>', 'only this cluster')
    .addHelpText('after', examples('ezctl topo check', 'ezctl --json topo check'))
    .action(action(async (ctx, o: { cluster?: string }) => {
      const { topoCheck } = await import('../core/topo/check.js');
      const r = await topoCheck(ctx, o);
      ctx.result(r, () => (r.problems.length ? r.problems.map((p) => `${p.node ? p.node + ': ' : ''}${p.message}`).join('\n') : `ok: ${r.nodesChecked} nodes, ${r.tablesChecked} tables checked`));
      return r.problems.length ? ExitCode.refused : ExitCode.ok;
    }));
}
