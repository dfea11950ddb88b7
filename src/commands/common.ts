// Helpers shared by the command definitions: the action wrapper that builds the context from
// the global options, and option parsers that reject bad values with exit 2 before anything runs.
import { InvalidArgumentError, Option, type Command } from 'commander';
import { makeCtx, type Ctx, type GlobalOptions } from '../core/context.js';
import { parseDuration } from '../core/throttle/duration.js';
import { copySettingsOf, type CopySettings } from '../core/copy/settings.js';
import type { ExitCode } from '../core/exit.js';

export type Handler<O> = (ctx: Ctx, opts: O, args: string[]) => Promise<ExitCode | void>;

/** Wrap a handler: build the context, run it, hand its exit code to the launcher. */
export function action<O>(handler: Handler<O>, how: { parentOptions?: boolean } = {}) {
  return async (...all: unknown[]): Promise<void> => {
    const cmd = all.at(-1) as Command;
    const globals = cmd.optsWithGlobals() as GlobalOptions & O;
    const ctx = makeCtx(globals);
    const args = all.slice(0, -2).filter((a): a is string => typeof a === 'string');
    // a subcommand whose options its parent also declares (osc status --table) gets them from there
    const code = await handler(ctx, (how.parentOptions ? globals : cmd.opts()) as O, args);
    if (typeof code === 'number') process.exitCode = code;
  };
}

export function integer(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    if (!/^-?\d+$/.test(value.trim())) throw new InvalidArgumentError(`${JSON.stringify(value)} is not a whole number`);
    const n = Number(value);
    if (n < min || n > max) throw new InvalidArgumentError(`${n} is out of range (${min}-${max})`);
    return n;
  };
}

export function decimal(min: number, max: number) {
  return (value: string): number => {
    // Plain decimal notation only: Number() alone would also take "0x10", "0b1" and "Infinity".
    const n = Number(value);
    if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(value.trim()) || !Number.isFinite(n)) throw new InvalidArgumentError(`${JSON.stringify(value)} is not a number`);
    if (n < min || n > max) throw new InvalidArgumentError(`${n} is out of range (${min}-${max})`);
    return n;
  };
}

/** An option parser that takes one of a fixed set of words: oneOf('mode', ['a', 'b']) says "is not a mode (a or b)". */
export function oneOf<T extends string>(what: string, values: readonly T[]) {
  const listed = values.length > 1 ? `${values.slice(0, -1).join(', ')} or ${values.at(-1)}` : values.join('');
  return (value: string): T => {
    if ((values as readonly string[]).includes(value)) return value as T;
    throw new InvalidArgumentError(`${JSON.stringify(value)} is not a ${what} (${listed})`);
  };
}

/** "bj,sh" → ["bj", "sh"], each a plain name. */
export function nameList(value: string): string[] {
  const list = value.split(',').map((s) => s.trim()).filter(Boolean);
  if (list.length === 0) throw new InvalidArgumentError('empty list');
  for (const n of list) if (!/^[A-Za-z0-9_-]+$/.test(n)) throw new InvalidArgumentError(`${JSON.stringify(n)} is not a plain name (letters, digits, _ -)`);
  if (new Set(list).size !== list.length) throw new InvalidArgumentError(`${JSON.stringify(value)} names something twice`);
  return list;
}

export interface DurationSpec {
  /** the unit of a bare number, for compatibility: the unit the option took before it took durations (default s) */
  bare?: 'ms' | 's';
  /** the unit of the value the command receives (default ms) */
  as?: 'ms' | 's';
  /** bounds, as durations ("1s", "10m") */
  min?: string;
  max?: string;
  /** the value must be a whole number of `as` units (it goes to a server variable that counts seconds) */
  whole?: boolean;
}

/**
 * The one option parser for durations: "500ms", "10s", "1.5m", "1h"; a bare number is in the
 * option's old unit (`bare`). Returns the value in `as` units; refuses anything else, or a value
 * out of range, with commander's InvalidArgumentError (exit 2 before anything runs).
 */
export function duration(spec: DurationSpec = {}): (value: string) => number {
  const bare = spec.bare ?? 's';
  const per = spec.as === 's' ? 1000 : 1;
  const bound = (d: string | undefined): number | undefined => (d === undefined ? undefined : parseDuration(d));
  const min = bound(spec.min);
  const max = bound(spec.max);
  return (value: string): number => {
    const t = value.trim();
    let ms: number;
    try {
      ms = parseDuration(bare === 'ms' && /^\d+(\.\d+)?$/.test(t) ? `${t}ms` : t);
    } catch {
      throw new InvalidArgumentError(`${JSON.stringify(value)} is not a duration (like 500ms, 10s, 2m, 1h; a bare number is ${bare === 's' ? 'seconds' : 'milliseconds'})`);
    }
    if ((min !== undefined && ms < min) || (max !== undefined && ms > max)) {
      const range = min !== undefined && max !== undefined ? `${spec.min}-${spec.max}` : min !== undefined ? `at least ${spec.min}` : `at most ${spec.max}`;
      throw new InvalidArgumentError(`${JSON.stringify(value)} is out of range (${range})`);
    }
    if (spec.whole && ms % per !== 0) throw new InvalidArgumentError(`${JSON.stringify(value)} is not a whole number of seconds (the server counts this wait in seconds)`);
    return ms / per;
  };
}

/**
 * A duration option whose default --help shows as a duration: durationOption('--connect-timeout
 * <duration>', 'give up connecting after this long', { bare: 's', as: 's', default: '5s' }).
 */
export function durationOption(flags: string, description: string, spec: DurationSpec & { default?: string } = {}): Option {
  const parse = duration(spec);
  const o = new Option(flags, description).argParser(parse);
  return spec.default === undefined ? o : o.default(parse(spec.default), spec.default);
}

/** "500ms", "2s", "1.5m", "1h", or plain seconds → milliseconds: duration() with its defaults. */
export const parseDurationMs = duration();

export function examples(...lines: string[]): string {
  return '\nExamples:\n' + lines.map((l) => `  $ ${l}`).join('\n') + '\n';
}

/** The flags of a job that copies tables online (osc, migrate int2bigint --execute). */
export interface CopyFlags {
  chunkTime?: number;
  copyThreads?: number;
  cutOverLockTimeout?: number;
  cutOverRetries?: number;
  /** commander's --no-defer-indexes: false when given */
  deferIndexes?: boolean;
}

/** --cluster, as every command that works on one cluster declares it. */
export const CLUSTER_OPTION = ['--cluster <name>', 'cluster (default: the only one)'] as const;

export function addCopyOptions(cmd: Command): Command {
  return cmd
    .option('--chunk-time <duration>', 'target time per copied chunk (default 0.5s)', parseDurationMs)
    .option('--copy-threads <n>', 'chunks of disjoint key ranges copied at once in each zone (default 1); on 2 cores with DRC running, two copied 0.76-1.16x as fast as one', integer(1, 16))
    .option('--cut-over-lock-timeout <duration>', 'how long a cut-over waits for the table locks per attempt, whole seconds (default 3s; a bare number is seconds)', duration({ bare: 's', as: 's', min: '1s', max: '1m', whole: true }))
    .option('--cut-over-retries <n>', 'cut-over attempts before giving up (default 5)', integer(1, 100))
    .option('--no-defer-indexes', "keep the ghost's plain secondary indexes during the copy instead of building them after it in one online ALTER (which replicas replay as one statement)");
}

/** The copy flags given, as the copy's settings (core/copy/settings.ts): the one type that goes on to the chunk loop. */
export function copyOptionsFrom(f: CopyFlags): CopySettings {
  return copySettingsOf({
    ...(f.deferIndexes === false ? { deferIndexes: false } : {}),
    chunkTimeMs: f.chunkTime,
    copyThreads: f.copyThreads,
    cutOverLockTimeoutS: f.cutOverLockTimeout,
    cutOverRetries: f.cutOverRetries,
  });
}

/** --lease of every long job (osc, check full, repair, migrate): its lease in `_ezctl.job_leases` in every zone. */
export function leaseOption() {
  return durationOption('--lease <duration>', "the job's lease in every zone (`ezctl jobs`), renewed every third of it: a job that cannot renew it for two thirds stops itself; one that died is taken over by --resume (check full, repair and drc-ts: also by a new run) once it expires (at once when it ran on this host)", { bare: 's', as: 'ms', min: '3s', max: '10m', default: '30s' });
}
