// ezctl dbus: move tables and databases between instances with live sync (D-Bus).
import type { Command } from 'commander';
import { action, durationOption, examples, integer, leaseOption, parseDurationMs } from './common.js';
import { addThrottleOptions, throttleOptionsFrom, type ThrottleFlags } from '../core/throttle/options.js';
import { ExitCode, EzError, badInput } from '../core/exit.js';
import { onInterrupt } from '../core/signals.js';
import { registerDbusCutover } from './dbus-cutover.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];
const SPEC = ['--spec <file.yaml>', 'read the move from this YAML (dbus: moves: NAME: ...) instead of the topology file'] as const;

interface StartFlags extends ThrottleFlags {
  spec?: string;
  execute?: boolean;
  resume?: boolean;
  chunkTime?: number;
  copyThreads?: number;
  lease: number;
  ddlDone?: string[];
  /** commander's --no-defer-indexes: false when given */
  deferIndexes?: boolean;
}

export function registerDbus(program: Command): void {
  const dbus = program
    .command('dbus')
    .description('move tables and databases to another instance with live sync: plan, start (copy + binlog follow), status, pause, resume, abort, verify, cutover, rollback');

  dbus
    .command('plan')
    .description('what the move does: tables, row estimates, the target DDL, refusals; nothing changed')
    .argument('<name>', 'the move (dbus.moves.<name>)')
    .option(...SPEC)
    .addHelpText('after', '\nExit 0 the plan can run; 4 refused (listed); 2 the declaration is wrong (the path in it named).\n' + examples('ezctl dbus plan orders-out', 'ezctl dbus plan orders-out --spec move.yaml --json'))
    .action(action(async (ctx, o: { spec?: string }, a) => {
      const { startMove } = await import('../core/dbus/run.js');
      const { renderPlan } = await import('../core/dbus/render.js');
      const r = await startMove(ctx, { name: a[0]!, ...(o.spec ? { spec: o.spec } : {}), execute: false, resume: false, throttle: {} });
      ctx.result(r.plan, () => renderPlan(r.plan));
      return r.plan.refusals.length ? ExitCode.refused : ExitCode.ok;
    }));

  const start = dbus
    .command('start')
    .description('run the move: target tables created, each source\'s position taken, every table copied chunk by chunk while each source\'s binlog is applied; then follows live until `dbus abort` or a cut-over; prints the plan unless --execute')
    .argument('<name>', 'the move (dbus.moves.<name>)')
    .option(...SPEC)
    .option('--execute', 'run it (without it: the plan, nothing changed)')
    .option('--resume', 'continue a move whose process stopped (kill -9, a crash, an interrupt): from the positions and copy keys kept on the target')
    .option('--ddl-done <gtid>', 'a source DDL that stopped the stream, already made on the target too: go past it (repeatable)', collect)
    .option('--chunk-time <duration>', 'target time per copied chunk (default 0.5s)', parseDurationMs)
    .option('--copy-threads <n>', 'chunks of disjoint key ranges copied at once between two servers, each on its own pair of sessions (default 4; within one server always 1)', integer(1, 16))
    .option('--no-defer-indexes', 'a target table the move creates keeps its plain secondary indexes during the copy instead of building them after it in one online ALTER')
    .addOption(leaseOption());
  addThrottleOptions(start);
  start
    .addHelpText(
      'after',
      '\nExit 0 ended by `dbus abort` (or a cut-over); 4 refused, nothing changed: a refusal of the plan, a target\n' +
        'table with rows, kept positions without --resume, a kept position whose binlog was purged; 3 failed (the\n' +
        'positions kept: --resume continues): a source DDL on a moved table (named with its statement), shards of a\n' +
        'merge logging different changes (both named; the same ALTER on every shard is made once on the target), a\n' +
        'lost server; 130 interrupted (positions kept).\n' +
        examples('ezctl dbus start orders-out --execute', 'ezctl dbus start orders-out --execute --resume --max-load Threads_running=25'),
    )
    .action(action(async (ctx, o: StartFlags, a) => {
      const { startMove } = await import('../core/dbus/run.js');
      const { renderStart, renderStatus } = await import('../core/dbus/render.js');
      let last = '';
      const r = await startMove(ctx, {
        name: a[0]!,
        ...(o.spec ? { spec: o.spec } : {}),
        execute: !!o.execute,
        resume: !!o.resume,
        throttle: throttleOptionsFrom(o),
        leaseMs: o.lease,
        ...(o.chunkTime !== undefined ? { chunkTimeMs: o.chunkTime } : {}),
        ...(o.copyThreads !== undefined ? { copyThreads: o.copyThreads } : {}),
        ...(o.ddlDone ? { ddlDone: o.ddlDone } : {}),
        ...(o.deferIndexes === false ? { deferIndexes: false } : {}),
        onProgress: (s) => {
          const line = renderStatus(s).split('\n')[0]!;
          if (line !== last && !ctx.opts.quiet) ctx.log.info(line);
          last = line;
        },
      });
      ctx.result(r.execute ? r : r.plan, () => renderStart(r));
      return !r.execute && r.plan.refusals.length ? ExitCode.refused : ExitCode.ok;
    }));

  dbus
    .command('status')
    .description('the move\'s state: per source the positions read and applied and the lag, per table the rows copied, a merge\'s unique-key conflicts (count and the last, both rows); from the job on this host, else its rows on the target (any host)')
    .argument('<name>', 'the move')
    .option(...SPEC)
    .addHelpText('after', examples('ezctl dbus status orders-out', 'ezctl --json dbus status orders-out'))
    .action(action(async (ctx, o: { spec?: string }, a) => {
      const { dbusStatus } = await import('../core/dbus/status.js');
      const { renderStatus } = await import('../core/dbus/render.js');
      const s = await dbusStatus(ctx, a[0]!, o.spec ? { spec: o.spec } : {});
      ctx.result(s, () => renderStatus(s));
      return s.state === 'failed' ? ExitCode.runtime : ExitCode.ok;
    }));

  for (const cmd of ['pause', 'resume'] as const) {
    dbus
      .command(cmd)
      .description(cmd === 'pause' ? 'stop the copy and the apply of the running move (the positions are kept; warns when a source\'s binlog retention nears them)' : 'go on from the kept positions')
      .argument('<name>', 'the move')
      .option(...SPEC)
      .action(action(async (ctx, o: { spec?: string }, a) => {
        const { dbusControl } = await import('../core/dbus/status.js');
        const { renderStatus } = await import('../core/dbus/render.js');
        const r = await dbusControl(ctx, { name: a[0]!, ...(o.spec ? { spec: o.spec } : {}) }, cmd);
        for (const s of r.status.sources) if (s.retentionWarning) ctx.log.warn(`source ${s.label}: ${s.retentionWarning}`);
        ctx.result(r.status, () => renderStatus(r.status));
      }));
  }

  dbus
    .command('abort')
    .description('end the move: the running job stops (or a dead one\'s rows are ended) and its positions go; the target tables stay (said so) unless --drop-target')
    .argument('<name>', 'the move')
    .option(...SPEC)
    .option('--drop-target', 'drop the move\'s target tables too')
    .action(action(async (ctx, o: { spec?: string; dropTarget?: boolean }, a) => {
      const { dbusControl } = await import('../core/dbus/status.js');
      const r = await dbusControl(ctx, { name: a[0]!, ...(o.spec ? { spec: o.spec } : {}) }, 'abort', { dropTarget: !!o.dropTarget });
      ctx.result(r, () => [`move ${a[0]}: aborted`, r.dropped?.length ? `target tables dropped: ${r.dropped.join(', ')}` : '', r.kept?.length ? `target tables kept: ${r.kept.join(', ')} (--drop-target drops them)` : ''].filter(Boolean).join('\n'));
    }));
  dbus
    .command('verify')
    .description("compare the move's sources and target row for row, by the chunk checksums of `check` through the move's mappings (renamed tables, mapped columns, the source's where filter); under live writes a differing row is looked at again once the move's apply has caught up; nothing written")
    .argument('<name>', 'the move')
    .option(...SPEC)
    .option('--tables <list>', 'only these tables, comma-separated: target tables db.t, or source tables db.t / label:db.t')
    .addOption(durationOption('--settle <duration>', 'the delay before a differing row is looked at again (after the apply caught up); 0: no re-check (the writes are held)', { bare: 'ms', as: 'ms', default: '500ms' }))
    .addHelpText('after', '\nExit 0 the target holds what the sources say; 1 rows differ (each listed: table, key, why); 4 nothing found\ndifferent but a table could not be compared (named: still copying, missing); 2 bad input; 3 a server\ncannot be reached.\n' + examples('ezctl dbus verify orders-out', 'ezctl --json dbus verify orders-out --tables shop.orders'))
    .action(action(async (ctx, o: { spec?: string; tables?: string; settle: number }, a) => {
      const { loadMove } = await import('../core/dbus/spec.js');
      const { dbusVerify, verifyExitCode } = await import('../core/dbus/verify.js');
      const { renderVerify } = await import('../core/dbus/render-verify.js');
      const tables = o.tables?.split(',').map((t) => t.trim()).filter(Boolean);
      if (o.tables !== undefined && !tables?.length) throw badInput('--tables: no table named', { hint: 'db.t[,db.t2]' });
      const move = await loadMove(ctx, { name: a[0]!, ...(o.spec ? { spec: o.spec } : {}) });
      const stop = new AbortController();
      const off = onInterrupt(() => stop.abort());
      try {
        const r = await dbusVerify(ctx, move, { ...(tables ? { tables } : {}), settleMs: o.settle, signal: stop.signal, ...(o.spec ? { spec: o.spec } : {}) });
        ctx.result(r, () => renderVerify(r));
        return verifyExitCode(r);
      } catch (e) {
        if (stop.signal.aborted) throw new EzError(ExitCode.interrupted, `dbus verify ${a[0]} interrupted`);
        throw e;
      } finally {
        off();
      }
    }));

  registerDbusCutover(dbus); // C3: dbus cutover / rollback (and the hidden dbus reverse)
}
