// The throttle flags every long-job command shares, so they read and behave the same everywhere.
// Bad values become commander's InvalidArgumentError: exit 2 before anything runs.
import { InvalidArgumentError, type Command } from 'commander';
import { EzError } from '../exit.js';
import { parseDuration } from './duration.js';
import { parseLoadSpec, parseWindows } from './specs.js';
import type { ThrottleOptions } from './index.js';

/** What commander hands the action for the flags addThrottleOptions adds. */
export interface ThrottleFlags {
  maxLag?: number;
  maxLoad?: string;
  criticalLoad?: string;
  throttleFlagFile?: string;
  pauseWindow?: string;
}

/** A core parser (throwing EzError) as a commander argument parser. */
function asArgParser<T>(parse: (value: string) => T): (value: string) => T {
  return (value) => {
    try {
      return parse(value);
    } catch (e) {
      if (e instanceof EzError) throw new InvalidArgumentError(e.message);
      throw e;
    }
  };
}

/** Validate, keep the text: the throttle parses it again where it builds the signals. */
const validated = (check: (value: string) => unknown) =>
  asArgParser((value: string) => {
    check(value);
    return value.trim();
  });

export const parseDurationArg = asArgParser(parseDuration);
export const parseLoadArg = validated(parseLoadSpec);
export const parseWindowsArg = validated(parseWindows);

export function addThrottleOptions(cmd: Command): Command {
  return cmd
    .option('--max-lag <duration>', 'pause while a replica in a zone, or DRC between zones, lags more than this (e.g. 1s, 1500ms)', parseDurationArg)
    .option('--max-load <status=n,...>', 'pause while a zone master has a status value above its limit (e.g. Threads_running=25,Threads_connected=500)', parseLoadArg)
    .option('--critical-load <status=n,...>', 'stop the job cleanly (exit 4) when a zone master has a status value above this limit', parseLoadArg)
    .option('--throttle-flag-file <path>', 'pause while this file exists (touch it to pause, remove it to go on)')
    .option('--pause-window <hh:mm-hh:mm,...>', 'pause during these local-time windows (e.g. 10:30-13:30,23:00-01:00; a window may cross midnight)', parseWindowsArg);
}

/** The parsed flags as ThrottleOptions: --max-lag limits both replica and DRC lag. */
export function throttleOptionsFrom(flags: ThrottleFlags): ThrottleOptions {
  const o: ThrottleOptions = {};
  if (flags.maxLag !== undefined) {
    o.maxLagMs = flags.maxLag;
    o.maxDrcLagMs = flags.maxLag;
  }
  if (flags.maxLoad !== undefined) o.maxLoad = flags.maxLoad;
  if (flags.criticalLoad !== undefined) o.criticalLoad = flags.criticalLoad;
  if (flags.throttleFlagFile !== undefined) o.throttleFlagFile = flags.throttleFlagFile;
  if (flags.pauseWindow !== undefined) o.pauseWindows = flags.pauseWindow;
  return o;
}
