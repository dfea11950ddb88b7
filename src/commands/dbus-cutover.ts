// ezctl dbus cutover / rollback (part C3), and the hidden `dbus reverse` the cut-over starts in the
// background. Registered on the `dbus` command by registerDbusCutover(dbus).
import type { Command } from 'commander';
import { action, durationOption, examples, leaseOption } from './common.js';
import { ExitCode, badInput, refused } from '../core/exit.js';

interface Flags { spec?: string; execute?: boolean; timeout: number; lockWait: number; maxLag?: number; force?: boolean; resume?: string; rollback?: string; lease: number }

export function registerDbusCutover(dbus: Command): void {
  const common = (c: Command) =>
    c
      .argument('<name>', 'the move (dbus.moves.<name> in the topology file, or in --spec)')
      .option('--spec <file>', "a YAML file declaring the move (instead of the topology file's dbus.moves)")
      .option('--execute', 'do it (without it: the preflight and every step it would take; nothing changed)')
      .addOption(durationOption('--lock-wait <duration>', "the bound of each table's fence (its metadata lock: the table's open transactions end first); past it the job rolls back", { bare: 's', as: 'ms', min: '1s', default: '3s' }))
      .option('--force', 'flip even when rows differ (they are named in the report)')
      .option('--resume <job>', 'continue a cut-over or rollback that died: forward past its flip, rolled back before it (the same command again does this too)')
      .option('--rollback <job>', 'undo a cut-over or rollback job that stopped before its flip')
      .addOption(leaseOption());

  common(
    dbus
      .command('cutover')
      .description("move the moved tables' writes from the sources to the target: preflight (the move's job following within --max-lag, every side reachable, nothing fenced by another move, no switch on its clusters; all refusals at once, exit 4), then block the move's route record, fence the tables on every source (triggers refusing every client's writes, root's too), read the sources' final positions, wait until the target applied them, verify (settle 0; a difference stops it unless --force), fence the target, start the reverse stream (target -> sources) in the background, flip the route record to the target (the point of no return), lift the target's fence. Rolled back before the flip, resumed after it"),
  )
    .addOption(durationOption('--timeout <duration>', "the bound of wait-applied (the target applying the sources' final positions): past it the cut-over is rolled back", { bare: 's', as: 'ms', min: '100ms', default: '30s' }))
    .addOption(durationOption('--max-lag <duration>', "refuse while the move's apply lags more than this", { bare: 's', as: 'ms', default: '1s' }))
    .addHelpText('after', examples('ezctl dbus cutover orders-out', 'ezctl dbus cutover orders-out --execute', 'ezctl --json dbus cutover orders-out --execute --timeout 10s', 'ezctl dbus cutover orders-out --rollback 20261204-120102-3fa9c1'))
    .action(action(async (ctx, o: Flags, args) => run(ctx, o, args[0]!, 'cutover')));

  common(
    dbus
      .command('rollback')
      .description("move a cut-over move's writes back to its sources the same way: block the route record, fence the target, read its final position, wait until the reverse stream applied it at every source, verify, flip the route record to the sources (the point of no return), stop the reverse stream, lift the sources' fence; the target keeps its fence. Writes taken at the target are at the sources")
  )
    .addOption(durationOption('--timeout <duration>', "the bound of drain-reverse (the sources applying the target's final position): past it the rollback is undone", { bare: 's', as: 'ms', min: '100ms', default: '30s' }))
    .addHelpText('after', examples('ezctl dbus rollback orders-out', 'ezctl dbus rollback orders-out --execute'))
    .action(action(async (ctx, o: Flags, args) => run(ctx, o, args[0]!, 'rollback')));

  dbus
    .command('reverse', { hidden: true })
    .description('the reverse stream of a cut-over move (target -> sources), until SIGTERM: started by `dbus cutover`')
    .argument('<name>')
    .option('--spec <file>')
    .option('--from <gtid>', "the target's position to start after (a stream with a checkpoint resumes from it); without it: ready, waiting for the cut-over to give it")
    .action(action(async (ctx, o: { spec?: string; from?: string }, args) => {
      const { runReverse } = await import('../core/dbus/cutover.js');
      const r = await runReverse(ctx, { name: args[0]!, ...(o.from !== undefined ? { from: o.from } : {}), ...(o.spec ? { spec: o.spec } : {}) });
      ctx.result(r, () => `reverse stream of ${args[0]} stopped (${r.stoppedBy})`);
      return r.stoppedBy === 'signal' ? ExitCode.interrupted : ExitCode.ok;
    }));
}

async function run(ctx: import('../core/context.js').Ctx, o: Flags, name: string, command: 'cutover' | 'rollback'): Promise<ExitCode> {
  const { dbusCutover } = await import('../core/dbus/cutover.js');
  const { dbusRollback, dbusAgain } = await import('../core/dbus/rollback.js');
  const { renderDbusCutover } = await import('../core/dbus/render-cutover.js');
  const { resultError } = await import('../core/steps/engine.js');
  const base = { name, ...(o.spec ? { spec: o.spec } : {}), leaseMs: o.lease };
  let r;
  if (o.resume !== undefined || o.rollback !== undefined) {
    if (o.resume !== undefined && o.rollback !== undefined) throw badInput('--resume and --rollback: give one');
    r = await dbusAgain(ctx, { ...base, jobId: (o.resume ?? o.rollback)!, mode: o.resume !== undefined ? 'resume' : 'rollback' });
  } else if (command === 'cutover') {
    r = await dbusCutover(ctx, { ...base, execute: !!o.execute, timeoutMs: o.timeout, lockWaitMs: o.lockWait, force: !!o.force, ...(o.maxLag !== undefined ? { maxLagMs: o.maxLag } : {}) });
  } else {
    r = await dbusRollback(ctx, { ...base, execute: !!o.execute, timeoutMs: o.timeout, lockWaitMs: o.lockWait, force: !!o.force });
  }
  const err = r.result ? resultError(r.result) : r.exitCode !== 0 ? refused(r.message ?? 'refused', { details: r.refusals.length > 1 ? r.refusals : [] }) : undefined;
  ctx.result(r, () => renderDbusCutover(r));
  if (err && !ctx.opts.json) throw err;
  return (err ? err.exitCode : ExitCode.ok) as ExitCode;
}
