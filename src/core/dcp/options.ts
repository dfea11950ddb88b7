// A check's options: the flags given, over the cluster's `check:` section of the topology file,
// over the built-in defaults. Per-table forms: "db.t:condition" / "db.t:col1,col2", or without
// the prefix for every table.
import { badInput } from '../exit.js';
import { parseDuration } from '../throttle/duration.js';
import { parseLoadSpec, parseWindows } from '../throttle/specs.js';
import type { ThrottleOptions } from '../throttle/index.js';
import type { CheckFullOptions, CheckMode } from './check-full.js';
import type { HashFunction } from '../compare/checksum.js';

export interface CheckFlags {
  cluster?: string;
  zones?: string[];
  tables?: string;
  exclude?: string;
  where?: string[];
  ignoreColumns?: string[];
  mode?: CheckMode;
  hash?: HashFunction;
  concurrency?: number;
  chunkTime?: number;
  runTime?: number;
  resume?: boolean;
  delay?: number;
  rechecks?: number;
  keylessMaxRows?: number;
  maxLag?: number;
  maxLoad?: string;
  criticalLoad?: string;
  throttleFlagFile?: string;
  pauseWindow?: string;
}

/** What a cluster's `check:` section may hold (validated by the topology schema). */
export interface CheckSection {
  tables?: string[] | undefined;
  exclude?: string[] | undefined;
  where?: Record<string, string> | undefined;
  ignoreColumns?: Record<string, string[]> | undefined;
  mode?: CheckMode | undefined;
  hash?: HashFunction | undefined;
  concurrency?: number | undefined;
  chunkTime?: string | undefined;
  runTime?: string | undefined;
  delay?: string | undefined;
  maxLag?: string | undefined;
  maxLoad?: string | undefined;
  criticalLoad?: string | undefined;
  throttleFlagFile?: string | undefined;
  pauseWindow?: string | undefined;
}

const TABLE_PREFIX = /^([A-Za-z0-9_$]+\.[A-Za-z0-9_$]+):\s*([\s\S]*)$/;

/** ["db.t:cond", "cond"] → {"db.t": cond, "*": cond}; one entry per table. */
export function parseWhereList(list: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const m = TABLE_PREFIX.exec(item.trim());
    const [table, cond] = m ? [m[1]!, m[2]!.trim()] : ['*', item.trim()];
    if (!cond) throw badInput(`--where ${JSON.stringify(item)} has no condition`);
    if (out[table] !== undefined) throw badInput(`--where is given twice for ${table === '*' ? 'every table' : table}`);
    out[table] = cond;
  }
  return out;
}

/** ["db.t:a,b", "c"] → {"db.t": [a, b], "*": [c]}. */
export function parseIgnoreList(list: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const item of list) {
    const m = TABLE_PREFIX.exec(item.trim());
    const [table, cols] = m ? [m[1]!, m[2]!] : ['*', item];
    const names = cols.split(',').map((c) => c.trim()).filter(Boolean);
    if (names.length === 0) throw badInput(`--ignore-columns ${JSON.stringify(item)} names no column`);
    for (const n of names) if (!/^[^`\s]{1,64}$/.test(n)) throw badInput(`--ignore-columns: ${JSON.stringify(n)} is not a column name`);
    out[table] = [...(out[table] ?? []), ...names];
  }
  return out;
}

export function checkOptions(flags: CheckFlags, section: CheckSection | undefined): CheckFullOptions {
  const s = section ?? {};
  const dur = (v: string | undefined, what: string) => {
    if (v === undefined) return undefined;
    try {
      return parseDuration(v);
    } catch {
      throw badInput(`check.${what}: ${JSON.stringify(v)} is not a duration`);
    }
  };
  const o: CheckFullOptions = {};
  const set = <K extends keyof CheckFullOptions>(k: K, v: CheckFullOptions[K] | undefined) => {
    if (v !== undefined) o[k] = v;
  };
  set('cluster', flags.cluster);
  set('zones', flags.zones);
  set('tables', flags.tables ?? s.tables?.join(','));
  set('exclude', flags.exclude ?? s.exclude?.join(','));
  const where = flags.where?.length ? parseWhereList(flags.where) : s.where;
  set('where', where);
  const ignore = flags.ignoreColumns?.length ? parseIgnoreList(flags.ignoreColumns) : s.ignoreColumns;
  set('ignoreColumns', ignore);
  set('mode', flags.mode ?? s.mode);
  set('hash', flags.hash ?? s.hash);
  set('concurrency', flags.concurrency ?? s.concurrency);
  set('chunkTimeMs', flags.chunkTime ?? dur(s.chunkTime, 'chunkTime'));
  set('runTimeMs', flags.runTime ?? dur(s.runTime, 'runTime'));
  set('delayMs', flags.delay ?? dur(s.delay, 'delay'));
  set('resume', flags.resume);
  set('rechecks', flags.rechecks);
  set('keylessMaxRows', flags.keylessMaxRows);
  const t: ThrottleOptions = {};
  const maxLag = flags.maxLag ?? dur(s.maxLag, 'maxLag');
  if (maxLag !== undefined) {
    t.maxLagMs = maxLag;
    t.maxDrcLagMs = maxLag;
  }
  const maxLoad = flags.maxLoad ?? s.maxLoad;
  if (maxLoad !== undefined) t.maxLoad = (parseLoadSpec(maxLoad), maxLoad);
  const critical = flags.criticalLoad ?? s.criticalLoad;
  if (critical !== undefined) t.criticalLoad = (parseLoadSpec(critical), critical);
  const flag = flags.throttleFlagFile ?? s.throttleFlagFile;
  if (flag !== undefined) t.throttleFlagFile = flag;
  const windows = flags.pauseWindow ?? s.pauseWindow;
  if (windows !== undefined) t.pauseWindows = (parseWindows(windows), windows);
  if (Object.keys(t).length) o.throttle = t;
  return o;
}
