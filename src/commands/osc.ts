// ezctl osc: an online schema change in every zone of a cluster (mm-ost).
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { action, CLUSTER_OPTION, addCopyOptions, copyOptionsFrom, durationOption, examples, integer, leaseOption, nameList, type CopyFlags } from './common.js';
import { addThrottleOptions, throttleOptionsFrom, type ThrottleFlags } from '../core/throttle/options.js';
import { ExitCode } from '../core/exit.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

interface OscFlags extends ThrottleFlags, CopyFlags {
  cluster?: string;
  table: string;
  alter: string;
  zones?: string[];
  execute?: boolean;
  instant: 'auto' | 'never';
  map?: string[];
  postponeCutOverFlagFile?: string;
  resume?: boolean;
  includeTriggers?: boolean;
  lockWaitTimeout?: number;
  dropOldTable?: boolean;
  lease: number;
}

export function registerOsc(program: Command): void {
  const osc = program
    .command('osc')
    .description('online schema change in every zone: ghost table, chunked copy, binlog apply, checksum, cut-overs within a second of each other; prints the plan unless --execute')
    .option('--table <db.table>', 'the table to change (required); a name holding a dot or backtick in backticks: db.`my.table`')
    .option('--alter <changes>', 'the changes, as in ALTER TABLE t <changes> (e.g. "ADD COLUMN note VARCHAR(64) NULL") (required)')
    .option(...CLUSTER_OPTION)
    .option('--zones <list>', 'only these zones (default: all)', nameList)
    .option('--execute', 'run it (without it: the plan, the checks, nothing changed)')
    .option('--instant <mode>', 'auto: change in place where every zone can do it instantly (default); never: always copy', (v: string) => {
      if (v !== 'auto' && v !== 'never') throw new InvalidArgumentError(`${JSON.stringify(v)} is not auto or never`);
      return v;
    }, 'auto')
    .option('--map <old:new>', 'a column the ALTER renames, and its new name (repeatable)', collect)
    .option('--postpone-cut-over-flag-file <path>', 'when every zone is ready, wait to cut over while this file exists')
    .option('--resume', 'continue a change whose process died (kill -9, a crash): from each zone\'s saved copy key and binlog position')
    .option('--include-triggers', 'carry the table\'s triggers to the new table at the cut-over (without it a table with triggers is refused); on the new table they are named <name>_ezosc (a name ending so loses the suffix instead)')
    .addOption(durationOption('--lock-wait-timeout <duration>', 'how long any DDL or lock of the job other than the cut-over waits for a metadata lock (ghost creation, index build, copy, drop) before stopping and naming the session that holds it', { bare: 's', as: 's', whole: true, min: '1s', max: '1h', default: '10s' }))
    .option('--drop-old-table', 'after the cut-over, drop the original (kept as <table>_ezdel by default) in every zone, once the throttle lets it through')
    .addOption(leaseOption());
  addCopyOptions(osc);
  addThrottleOptions(osc);
  osc
    .addHelpText(
      'after',
      '\nExit 0 done (or, without --execute, the plan printed); 4 refused (nothing changed): another job holds\n' +
        'the table (`ezctl jobs` lists them; one that died is continued by --resume), no unique key both\n' +
        'shapes share, foreign keys, triggers without --include-triggers, a rename without --map, zones that\n' +
        'differ, DRC unhealthy; 3 failed (the original untouched, the helper tables dropped; or, when a session\n' +
        'held a metadata lock past --lock-wait-timeout, kept for --resume or `osc abort`, that session named).\n' +
        'After the cut-over the original is kept as <table>_ezdel (gh-ost and pt-osc keep theirs too, by default):\n' +
        'a later change of the table refuses while it exists; --drop-old-table drops it, `ezctl osc cleanup` lists\n' +
        'and drops kept and orphaned helper tables.\n' +
        examples(
          "ezctl osc --table ezdemo.orders --alter 'ADD COLUMN note VARCHAR(64) NULL'",
          "ezctl osc --table ezdemo.orders --alter 'MODIFY amount DECIMAL(14,2) NOT NULL' --execute --max-load Threads_running=25",
          "ezctl osc --table ezdemo.users --alter 'CHANGE nick nickname VARCHAR(32)' --map nick:nickname --execute",
        ),
    )
    .action(action(async (ctx, o: OscFlags) => {
      if (!o.table || !o.alter) throw new InvalidArgumentError('osc needs --table db.table and --alter "..."');
      const { runOsc } = await import('../core/osc/engine.js');
      const { renderOsc } = await import('../core/osc/render.js');
      const r = await runOsc(ctx, {
        table: o.table,
        alter: o.alter,
        instant: o.instant,
        ...(o.cluster ? { cluster: o.cluster } : {}),
        ...(o.zones ? { zones: o.zones } : {}),
        ...(o.execute ? { execute: true } : {}),
        ...(o.map ? { map: o.map } : {}),
        ...copyOptionsFrom(o),
        ...(o.postponeCutOverFlagFile ? { postponeCutOverFlagFile: o.postponeCutOverFlagFile } : {}),
        ...(o.resume ? { resume: true } : {}),
        ...(o.includeTriggers ? { includeTriggers: true } : {}),
        ...(o.lockWaitTimeout !== undefined ? { lockWaitTimeoutS: o.lockWaitTimeout } : {}),
        ...(o.dropOldTable ? { dropOldTable: true } : {}),
        leaseMs: o.lease,
        throttle: throttleOptionsFrom(o),
        onProgress: (zs) => {
          if (!ctx.opts.quiet) ctx.log.info(`osc: ${zs.map((z) => `${z.zone} ${z.phase} ${z.rowsCopied} rows, ${z.chunks} chunks, backlog ${z.backlog}`).join('; ')}`);
        },
      });
      ctx.result(r, () => renderOsc(r));
      return !r.execute && r.refusals.length ? ExitCode.refused : ExitCode.ok;
    }));

  // the running job's control socket
  const control = (name: import('../core/osc/engine.js').OscCommand, description: string, build?: (c: Command) => Command, args?: (o: Record<string, unknown>, a: string[]) => Record<string, unknown>) => {
    let c = osc
      .command(name)
      .description(description)
      .option('--table <db.table>', 'the table being changed (required)')
      .option(...CLUSTER_OPTION);
    if (build) c = build(c);
    c.addHelpText('after', examples(`ezctl osc ${name}${name === 'set' ? ' chunk-time=1s' : ''} --table ezdemo.orders`)).action(
      action(async (ctx, o: { table?: string; cluster?: string } & Record<string, unknown>, a) => {
        if (!o.table) throw new InvalidArgumentError(`osc ${name} needs --table db.table`);
        const { oscControl } = await import('../core/osc/engine.js');
        const extra = args?.(o, a);
        // the arguments are checked against the job's declaration before anything is sent
        const r = await oscControl(ctx, { table: o.table, cmd: name, ...(o.cluster ? { cluster: o.cluster } : {}), ...(extra ? { args: extra as never } : {}) });
        const { renderOscStatus } = await import('../core/osc/render.js');
        ctx.result(r, () => renderOscStatus(r));
      }, { parentOptions: true }),
    );
  };
  control('status', 'progress of the running change: rows copied per zone, backlog, throttle reason');
  control('pause', 'pause the copy in every zone (the binlog apply keeps up)');
  control('resume', 'resume a paused copy');
  control('cut-over', 'cut over now, even while the --postpone-cut-over-flag-file exists');
  control('abort', 'stop the change: the ghost and helper tables are dropped, the original stays as it was; with no live job (its process died), drops what it left in every zone and its saved state; a change of several tables (an int2bigint family) is stopped whole, named by any of its tables');
  registerCleanup(osc);
  control('set', 'change a setting of the running job (chunk-time=DURATION)', (c) => c.argument('<key=value>'), (_o, a) => {
    const m = /^([a-z-]+)=(.+)$/.exec(a[0] ?? '');
    if (!m) throw new InvalidArgumentError(`${JSON.stringify(a[0])} is not key=value`);
    return { key: m[1], value: m[2] };
  });
}

interface CleanupFlags extends ThrottleFlags {
  cluster?: string;
  zones?: string[];
  execute?: boolean;
}

function registerCleanup(osc: Command): void {
  const c = osc
    .command('cleanup')
    .description("list the helper tables schema changes left in every zone (old tables kept as <t>_ezdel, ghosts, cut-over sentries and plan probes of jobs that died) and, with --execute, drop them; a running job's tables are never dropped")
    .option(...CLUSTER_OPTION)
    .option('--zones <list>', 'only these zones (default: all)', nameList)
    .option('--execute', 'drop them (without it: the list, nothing changed)');
  addThrottleOptions(c);
  c.addHelpText(
    'after',
    '\nA helper table is kept when its table\'s change answers on its control socket on this host, holds its\n' +
      'lease in any zone (a job running on another host, from before its first helper table: GET_LOCK, freed\n' +
      'when the job dies), or has saved state in that zone (a job on another host, or one that died: `--resume`\n' +
      'continues it, `ezctl osc abort` ends it), or when its table itself is missing (the helper may hold its\n' +
      'only copy). Each DROP waits for the throttle (--max-lag, --max-load, --pause-window: a DROP slows writes\n' +
      'by about 0.45 s per GB of table here), then at most 10 s for the table\'s metadata lock (a session that\n' +
      'holds it longer is named, the table kept); the zone\'s replicas follow; DRC carries nothing of it to the\n' +
      'other zones. Exit 0 done (or listed), 3 when a drop failed.\n' +
      examples('ezctl osc cleanup', 'ezctl osc cleanup --execute --max-lag 2s'),
  ).action(action(async (ctx, o: CleanupFlags) => {
    const { oscCleanup } = await import('../core/osc/cleanup.js');
    const { renderOscCleanup } = await import('../core/osc/render.js');
    const r = await oscCleanup(ctx, {
      ...(o.cluster ? { cluster: o.cluster } : {}),
      ...(o.zones ? { zones: o.zones } : {}),
      ...(o.execute ? { execute: true } : {}),
      throttle: throttleOptionsFrom(o),
    });
    ctx.result(r, () => renderOscCleanup(r));
    return r.tables.some((t) => t.error) ? ExitCode.runtime : ExitCode.ok;
  }, { parentOptions: true }));
}
