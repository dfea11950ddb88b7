// Table patterns, as DBAs write them in --tables/--exclude and in the topology file:
//   db.table   db.*   db.tmp_*   *.audit   /^shop\.(orders|users)$/   (a regex over "db.table")
import { badInput } from '../exit.js';

export type TableMatcher = (schema: string, table: string) => boolean;

function globToRegex(glob: string): RegExp {
  const esc = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${esc}$`);
}

export function compilePattern(p: string): TableMatcher {
  const t = p.trim();
  if (t.length > 2 && t.startsWith('/') && t.endsWith('/')) {
    let re: RegExp;
    try {
      re = new RegExp(t.slice(1, -1));
    } catch (e) {
      throw badInput(`table pattern ${t} is not a valid regular expression: ${(e as Error).message}`);
    }
    return (s, n) => re.test(`${s}.${n}`);
  }
  const dot = t.indexOf('.');
  if (dot <= 0 || dot === t.length - 1 || t.indexOf('.', dot + 1) >= 0) {
    throw badInput(`table pattern ${JSON.stringify(t)} is not db.table (globs * and ? allowed, or /regex/)`);
  }
  const sRe = globToRegex(t.slice(0, dot));
  const tRe = globToRegex(t.slice(dot + 1));
  return (s, n) => sRe.test(s) && tRe.test(n);
}

/** Comma-separated patterns → one matcher (any of them). */
export function compilePatterns(list: readonly string[] | string | undefined): TableMatcher | undefined {
  if (list === undefined) return undefined;
  const items = (typeof list === 'string' ? splitPatterns(list) : list).filter((x) => x.trim());
  if (items.length === 0) return undefined;
  const ms = items.map(compilePattern);
  return (s, n) => ms.some((m) => m(s, n));
}

/** Split on commas, except inside a /regex/ (which ends at a slash followed by a comma or the end). */
export function splitPatterns(s: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < s.length) {
    while (i < s.length && (s[i] === ',' || /\s/.test(s[i]!))) i++;
    if (i >= s.length) break;
    let end: number;
    if (s[i] === '/') {
      let k = i + 1;
      while (k < s.length && !(s[k] === '/' && /^\s*(,|$)/.test(s.slice(k + 1)))) k++;
      end = Math.min(s.length, k + 1);
    } else {
      end = s.indexOf(',', i);
      if (end < 0) end = s.length;
    }
    out.push(s.slice(i, end).trim());
    i = end;
  }
  return out;
}
