// DRC's contract with every other tool, part 2: the names of an online schema change's helper
// tables. One place makes ezctl osc's names and recognizes them (and gh-ost's): DRC never
// replicates such a table nor forwards a statement about one (each zone runs its own change),
// and `osc cleanup` finds what a dead job left by them.
import { badInput } from '../exit.js';

export interface OscHelperNames {
  /** the copy being built */
  ghost: string;
  /** the original after the cut-over */
  old: string;
}

/** The cut-over's sentry and its stand-in, named after a table of the change (osc/cutover.ts picks which). */
export function oscSentryNames(table: string): { sentry: string; standIn: string } {
  return { sentry: `${table}_ezcut`, standIn: `${table}_ezcut0` };
}

/**
 * The helper tables: t_ezgho for the ghost, t_ezdel for the original after the cut-over (and
 * t_ezcut/t_ezcut0 for the cut-over's sentry, see osc/cutover.ts). Unlike gh-ost's _t_gho/_t_del
 * they start with the table's own name and so sort after it: the cut-over RENAME, which takes its
 * metadata locks in name order, queues on the table itself, ahead of any write waiting there.
 */
export function oscHelperNames(table: string): OscHelperNames {
  const names = { ghost: `${table}_ezgho`, old: `${table}_ezdel` };
  if (`${table}_ezcut0`.length > 64) throw badInput(`table name ${table} is too long for its helper tables (${table}_ezcut0 must fit in 64 characters)`);
  return names;
}

/** osc's plan tries an ALTER on an empty twin of the table, created unlogged under this name. */
export function oscProbeName(pid: number): string {
  return `_ezctl_osc_probe_${pid}`;
}

export type HelperKind = 'ghost' | 'old' | 'sentry' | 'probe';

const OSC_HELPER = /^(.+)_ez(gho|del|cut0|cut)$/;
const OSC_PROBE = /^_ezctl_osc_probe_(\d+)$/;
const KIND = { gho: 'ghost', del: 'old', cut: 'sentry', cut0: 'sentry' } as const;

/** What an ezctl osc helper table's name says: its kind and the table it belongs to ('' for a probe, with the pid that made it). */
export function parseHelperName(name: string): { kind: HelperKind; of: string; pid?: number } | undefined {
  const p = OSC_PROBE.exec(name);
  if (p) return { kind: 'probe', of: '', pid: Number(p[1]) };
  const m = OSC_HELPER.exec(name);
  return m ? { kind: KIND[m[2] as keyof typeof KIND], of: m[1]! } : undefined;
}

/** a helper table's name around its table's name (`name`, a regex source): gh-ost's and ezctl osc's */
const helperName = (name: string) => `(?:_${name}_(?:gho|ghc|del)|${name}_ez(?:gho|del|cut|cut0))`;
const HELPER_TABLE = new RegExp(`^${helperName('.+')}$`);
/** the same names inside a statement's text, quoted or not */
const HELPER_IN_STATEMENT = new RegExp(`(?:^|[\\s\`.,(])${helperName('\\w+')}(?=[\\s\`.,();]|$)`);

/** A schema change's ghost, changelog, old table or sentry (ezctl osc's or gh-ost's). */
export function isHelperTable(table: string): boolean {
  return HELPER_TABLE.test(table);
}

/**
 * A statement about a schema change's helper tables (creating or altering the ghost, the
 * cut-over's RENAME and sentry): each zone runs its own, so DRC never forwards one, even with
 * --replicate-ddl.
 */
export function namesHelperTable(query: string): boolean {
  return HELPER_IN_STATEMENT.test(query);
}
