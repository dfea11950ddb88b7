// ezctl drill: fault drills against a running topology (a sandbox) under the reference workload.
import type { Command } from 'commander';
import { action, CLUSTER_OPTION, durationOption, examples, integer } from './common.js';
import { ExitCode, badInput } from '../core/exit.js';

export function registerDrill(program: Command): void {
  program
    .command('drill')
    .argument('<name>', 'a drill (`ezctl drill list`), or `list`, or `cleanup` (revert what a killed drill left: processes stopped, servers down or under libfaketime, links cut)')
    .description('run a named fault under the sandbox workload: inject, watch invariants (never two writable masters in a zone, DRC lag, detection and recovery), undo, drc wait, check full, the ledger of acknowledged writes against every zone; exit 1 with the evidence when an invariant breaks')
    .option(...CLUSTER_OPTION)
    .option('--zone <name>', 'the zone the fault hits (default: the first zone; zone-loss: the last)')
    .addOption(durationOption('--duration <duration>', 'how long the fault is held', { bare: 's', min: '1s', max: '1h', default: '60s' }))
    .option('--tps <n>', 'the workload\'s transactions per second, per zone', integer(1, 10_000), 20)
    .option('--kills <n>', 'drc-crash: how many times the daemon is killed', integer(1, 100))
    .option('--seed <n>', 'repeat the random choices (drc-crash\'s kill points, the workload\'s writes)', integer(0))
    .option('--allow-non-sandbox', 'run against a topology that is not a sandbox: only the drills that need no access to the hosts')
    .addHelpText('after', `
Exit status: 0 every invariant held; 1 an invariant broke (the evidence: rows, GTIDs, nodes);
2 bad input; 3 runtime failure; 4 refused by the preflight (nothing done).
${examples('ezctl drill list', 'ezctl drill master-kill --cluster demo --duration 10s', 'ezctl --json drill drc-crash --kills 5 --duration 30s', 'ezctl drill clock-skew --zone sh', 'ezctl drill cleanup')}`)
    .action(action(async (ctx, o: { cluster?: string; zone?: string; duration: number; tps: number; kills?: number; seed?: number; allowNonSandbox?: boolean }, args) => {
      const name = args[0]!;
      const m = await import('../core/drill/index.js');
      if (name === 'list') {
        const list = Object.entries(m.DRILLS).map(([n, d]) => ({ name: n, summary: d.summary, hostAccess: d.hostAccess ?? null }));
        ctx.result(list, () => m.renderDrillList());
        return ExitCode.ok;
      }
      if (name === 'cleanup') {
        const r = await m.drillCleanup(ctx);
        ctx.result(r, () => m.renderCleanup(r));
        return r.failed.length ? ExitCode.runtime : ExitCode.ok;
      }
      if (!m.drillNames().includes(name)) throw badInput(`no drill named ${JSON.stringify(name)}`, { hint: `drills: ${m.drillNames().join(', ')}; or list, cleanup` });
      const r = await m.runDrill(ctx, {
        name, durationMs: o.duration, tps: o.tps, allowNonSandbox: !!o.allowNonSandbox,
        ...(o.cluster !== undefined ? { cluster: o.cluster } : {}), ...(o.zone !== undefined ? { zone: o.zone } : {}),
        ...(o.kills !== undefined ? { kills: o.kills } : {}), ...(o.seed !== undefined ? { seed: o.seed } : {}),
      });
      ctx.result(r, () => m.renderDrill(r));
      return r.passed ? ExitCode.ok : ExitCode.differences;
    }));
}
