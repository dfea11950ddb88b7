// ezctl check: consistency checks between zones (full, incremental, schema).
import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import { action, CLUSTER_OPTION, durationOption, examples, integer, leaseOption, nameList, oneOf, parseDurationMs } from './common.js';
import { registerCheckSchema } from './check-schema.js';
import { addThrottleOptions } from '../core/throttle/options.js';
import { ExitCode } from '../core/exit.js';

const hash = oneOf('row hash', ['crc64', 'md5', 'crc32'] as const);
const mode = oneOf('mode', ['count', 'checksum', 'rows'] as const);
const collect = (v: string, prev: string[] = []) => [...prev, v];

/** What a check's exit code says, for cron: the same in check full and check incr. */
const CHECK_EXIT_CODES =
  '\nExit: 0 consistent (every table compared, nothing differs); 1 differences: rows, a table\n' +
  'missing in a zone, a structure difference (also when some tables were skipped); 4 nothing\n' +
  'found different, but some table was not compared (named in the report with the reason: no\n' +
  'usable key and more rows than --keyless-max-rows, a key not alike in every zone; add a key,\n' +
  'raise the limit, or --exclude it); 3 a failure, e.g. a zone master lost (the message names it).\n';

export function registerCheck(program: Command): void {
  const check = program
    .command('check')
    .description('consistency checks between zones: full, incremental, schema')
    .addHelpText('after', examples('ezctl check full --cluster demo', 'ezctl check incr --cluster demo --until-now', 'ezctl check schema --cluster demo'));

  const full = check
    .command('full')
    .description('compare every row of the selected tables across zones: chunk checksums computed by each server, differing chunks narrowed to rows; exit 1 on differences, 4 when a table could not be compared')
    .option(...CLUSTER_OPTION)
    .option('--zones <list>', 'only these zones, comma-separated; the first gives the chunk bounds and keeps the results (default: all)', nameList)
    .option('--tables <patterns>', 'only these tables: db.table, db.*, /regex/ (comma-separated)')
    .option('--exclude <patterns>', 'leave out these tables (same patterns)')
    .option('--where <[db.t:]condition>', 'check only rows matching an SQL condition; prefix db.t: for one table (repeatable)', collect)
    .option('--ignore-columns <[db.t:]a,b>', 'do not compare these columns; prefix db.t: for one table (repeatable)', collect)
    .option('--mode <mode>', 'count: row counts only; checksum: chunk checksums (default); rows: every row hash compared', mode)
    .option('--hash <fn>', 'row hash: crc64 (64 bits, MariaDB 10.8+; the default there), md5 (64 bits, any server; the default elsewhere), crc32 (32 bits, fastest, as pt-table-checksum)', hash)
    .option('--concurrency <n>', 'tables checked at once (default 2)', integer(1, 64))
    .option('--chunk-time <duration>', 'target time per chunk; the chunk size adapts to it (default 0.5s)', parseDurationMs)
    .option('--run-time <duration>', 'stop at a chunk boundary after this long; --resume continues', parseDurationMs)
    .option('--resume', 'continue the latest unfinished run of this cluster (a new run when there is none)')
    .option('--delay <duration>', 'at least this long before a difference is re-checked (default: measured DRC lag + 1s)', parseDurationMs)
    .option('--rechecks <n>', 'times a difference is re-checked, with backoff, before it is reported (default 5)', integer(0, 20))
    .option('--keyless-max-rows <n>', 'tables without a key up to this many rows are compared as a multiset (default 100000)', integer(0))
    .option('--report <file>', 'also write the JSON report to this file')
    .addOption(leaseOption());
  addThrottleOptions(full);
  full
    .addHelpText(
      'after',
      '\nDefaults for every option can live in the topology file under clusters.<name>.check.\n' +
        'Results are kept in _ezctl (check_runs, check_tables, check_diffs) at the first zone\'s master;\n' +
        '`ezctl repair` reads them from there.\n' +
        'While it runs it answers `ezctl check status|pause|resume|stop` (one check full per cluster on a host\n' +
        'at a time: a second is refused, exit 4). After `check stop` it exits 130, as after Ctrl-C; the run is\n' +
        'kept unfinished and --resume continues it.\n' +
        'It is a job (`ezctl jobs`, kind check-full) holding the lease `check-full` of the cluster in every zone:\n' +
        'a second check full of the cluster on any host is refused (exit 4) naming it, an osc or repair of a\n' +
        'table is not; --resume takes over one that died.\n' +
        CHECK_EXIT_CODES +
        examples(
          'ezctl check full --cluster demo',
          "ezctl check full --tables 'ezdemo.*' --exclude 'ezdemo.tmp_*' --mode rows",
          "ezctl check full --where 'ezdemo.orders:created_at >= NOW() - INTERVAL 1 DAY' --ignore-columns 'ezdemo.users:last_login'",
          'ezctl check full --run-time 30m --resume --max-load Threads_running=25   # nightly cron',
        ),
    )
    .action(action(async (ctx, o: import('../core/dcp/options.js').CheckFlags & { report?: string; lease: number }) => {
      // loaded together: the module files are read while the topology file is parsed
      const [{ checkFull, checkExitCode }, { checkOptions }, { renderCheckReport, progressPrinter }, topo] = await Promise.all([
        import('../core/dcp/check-full.js'),
        import('../core/dcp/options.js'),
        import('../core/dcp/render.js'),
        ctx.topology(),
      ]);
      const opts = checkOptions(o, topo.cluster(o.cluster).config.check);
      const progress = ctx.opts.quiet ? undefined : progressPrinter();
      let r;
      try {
        r = await checkFull(ctx, { ...opts, control: true, job: { leaseMs: o.lease } }, progress ? (p) => progress.update(p) : undefined);
      } finally {
        progress?.end();
      }
      if (o.report) {
        const { writeFileSync } = await import('node:fs');
        const { jsonReplacer } = await import('../core/context.js');
        writeFileSync(o.report, JSON.stringify(r, jsonReplacer, 2) + '\n');
      }
      ctx.result(r, () => renderCheckReport(r));
      return r.stoppedBy === 'interrupt' || r.stoppedBy === 'operator' ? ExitCode.interrupted : checkExitCode(r);
    }));

  registerCheckControl(check);

  check
    .command('incr')
    .description('check only the rows changed since the last run: keys read from every zone\'s binlog, compared after DRC\'s lag; exit 1 on differences, 4 when changed rows could not be compared')
    .option(...CLUSTER_OPTION)
    .option('--zones <list>', 'only these zones (default: all)', nameList)
    .option('--tables <patterns>', 'only these tables: db.table, db.*, /regex/ (comma-separated)')
    .option('--exclude <patterns>', 'leave out these tables (same patterns)')
    .option('--delay <duration>', 'wait at least this long before comparing (default: measured DRC lag + 1s)', parseDurationMs)
    .option('--rechecks <n>', 'times a difference is re-checked, with backoff, before it is reported (default 5)', integer(0, 20))
    .option('--hash <fn>', 'row hash: crc64 (default on MariaDB 10.8+), md5, crc32 (as check full)', hash)
    .option('--until-now', 'check the changes up to now, then exit (the default; for cron)')
    .option('--follow', 'keep checking, one window after another, until interrupted')
    .option('--window <duration>', 'with --follow: how much change each window collects (default 5s)', parseDurationMs)
    .addHelpText(
      'after',
      '\nThe first run records where each zone\'s binlog ends and checks nothing; every later run checks\n' +
        'exactly the changes since the previous one (positions kept in _ezctl.check_incr_position).\n' +
        'A table missing in a zone is reported on every run; changes to a table without a key every\n' +
        'zone shares cannot be looked up by key and are reported as not compared.\n' +
        CHECK_EXIT_CODES +
        examples('ezctl check incr --cluster demo --until-now   # every 5 minutes from cron', 'ezctl check incr --follow --window 10s'),
    )
    .action(action(async (ctx, o: { cluster?: string; zones?: string[]; tables?: string; exclude?: string; delay?: number; rechecks?: number; hash?: 'crc64' | 'md5' | 'crc32'; follow?: boolean; untilNow?: boolean; window?: number }) => {
      if (o.follow && o.untilNow) throw new InvalidArgumentError('--follow and --until-now exclude each other');
      const { checkIncr } = await import('../core/dcp/check-incr.js');
      const { renderCheckReport } = await import('../core/dcp/render.js');
      const opts: import('../core/dcp/check-incr.js').CheckIncrOptions = {};
      for (const k of ['cluster', 'zones', 'tables', 'exclude', 'rechecks', 'hash', 'follow'] as const) if (o[k] !== undefined) (opts as Record<string, unknown>)[k] = o[k];
      if (o.delay !== undefined) opts.delayMs = o.delay;
      if (o.window !== undefined) opts.windowMs = o.window;
      if (o.follow) {
        opts.onWindow = (w) => {
          const diffs = w.tables.reduce((n, t) => n + t.missing + t.changed, 0);
          if (ctx.opts.json) process.stdout.write(JSON.stringify({ runId: w.runId, keys: w.keys, consistent: w.consistent, differences: diffs, missingTables: w.missingTables, skipped: w.skipped }) + '\n');
          else ctx.log.info(`window ${w.runId}: ${w.keys} changed keys checked, ${diffs} differences`);
          for (const t of w.tables) for (const d of t.diffs) ctx.log.warn(`${t.table}: ${d.kind} ${JSON.stringify(d.key)}`);
          for (const m of w.missingTables) ctx.log.warn(`${m.table}: table missing in ${m.missingIn.join(', ')} (exists in ${m.presentIn.join(', ')})`);
          for (const s of w.skipped) ctx.log.warn(`${s.table}: not compared: ${s.reason}`);
        };
      }
      const r = await checkIncr(ctx, opts);
      if (o.follow) return r.stoppedBy === 'interrupt' ? ExitCode.interrupted : ExitCode.ok;
      ctx.result(r, () =>
        r.firstRun && r.keys === 0
          ? `${r.consistent ? '' : `${renderCheckReport(r)}\n`}first run: recorded each zone's binlog position (${Object.entries(r.positions).map(([z, p]) => `${z} ${p.to}`).join(', ')}); the next run checks the changes from here`
          : `${renderCheckReport(r)}\n${r.keys} changed keys checked (${r.keysPerSecond} keys/s, after a ${r.settleDelayMs} ms settle delay)`,
      );
      const { checkExitCode } = await import('../core/dcp/check-full.js');
      return checkExitCode(r);
    }));

  registerCheckSchema(check);
}

export function registerRepair(program: Command): void {
  program
    .command('repair')
    .description('make the zones agree on the rows a check found different: the newest DRC timestamp wins; prints the SQL unless --execute')
    .option(...CLUSTER_OPTION)
    .option('--run <id>', 'the check run to repair (default: the latest)')
    .option('--report <file>', 'repair from a report written by check full --report')
    .option('--tables <patterns>', 'check these tables now and repair what is found')
    .option('--prefer-zone <zone>', 'this zone\'s version wins (its absence deletes the row elsewhere); needed for tables without the DRC timestamp column')
    .option('--execute', 'apply the fixes (without it: print the SQL, change nothing)')
    .addOption(leaseOption())
    .addHelpText(
      'after',
      '\nEach key is read again in every zone first; what already agrees is left alone. A row missing\n' +
        'in a zone is restored unless DRC\'s conflict log has a newer delete of it. Fixes are written\n' +
        'under DRC\'s GTID domain, so DRC does not carry them back, and compared again afterwards.\n' +
        'Without the DRC timestamp column there is no last writer: repair refuses (exit 4, nothing\n' +
        'changed) unless --prefer-zone names the winner.\n' +
        'Exit 0 when every difference is fixed and verified (without --execute: has a planned fix);\n' +
        '1 when differences remain: a key still different after the fix, or a difference repair cannot\n' +
        'fix, each named with why (a table missing in a zone, a table without a key, a table the check\n' +
        'did not compare); 3 a failure, e.g. a zone master lost; 4 refused.\n' +
        'With --execute it is a job (`ezctl jobs`, kind repair) holding the lease of every table it writes:\n' +
        'a second repair (or an osc) of one of them is refused while it runs (exit 4, naming it).\n' +
        examples('ezctl repair --cluster demo', 'ezctl repair --run 20261123T101500-ab12cd --execute', "ezctl repair --tables 'ezdemo.orders' --prefer-zone bj --execute"),
    )
    .action(action(async (ctx, o: { cluster?: string; run?: string; report?: string; tables?: string; preferZone?: string; execute?: boolean; lease: number }) => {
      const { repair, renderRepair, repairExitCode } = await import('../core/dcp/repair.js');
      const opts: import('../core/dcp/repair.js').RepairOptions = {};
      if (o.cluster) opts.cluster = o.cluster;
      if (o.run) opts.run = o.run;
      if (o.report) opts.reportFile = o.report;
      if (o.tables) opts.tables = o.tables;
      if (o.preferZone) opts.preferZone = o.preferZone;
      if (o.execute) opts.execute = true;
      opts.leaseMs = o.lease;
      const r = await repair(ctx, opts);
      ctx.result(r, () => renderRepair(r));
      return repairExitCode(r);
    }));
}

/** `ezctl check status|pause|resume|stop`: the running check full's control socket, as `ezctl osc status`. */
function registerCheckControl(check: Command): void {
  const verbs = [
    ['status', 'progress of the running check full: tables done of all, rows, the tables under way, ETA, paused or throttled'],
    ['pause', 'pause the running check full before its next chunk (until resume)'],
    ['resume', 'resume a paused check full'],
    ['stop', 'stop the running check full at its next chunk boundary: it reports what it compared and exits 130; the run is kept unfinished, `check full --resume` continues it'],
  ] as const;
  for (const [name, description] of verbs) {
    check
      .command(name)
      .description(description)
      .option(...CLUSTER_OPTION)
      .addHelpText('after', `\nExit 0 answered; 3 no check full of the cluster answers on this host.\n${examples(`ezctl check ${name} --cluster demo`)}`)
      .action(action(async (ctx, o: { cluster?: string }) => {
        const [{ checkControl }, { renderRunStatus }] = await Promise.all([import('../core/dcp/control.js'), import('../core/control/run.js')]);
        const r = await checkControl(ctx, { cmd: name, ...(o.cluster ? { cluster: o.cluster } : {}) });
        ctx.result(r, () => renderRunStatus(r));
      }));
  }
}
