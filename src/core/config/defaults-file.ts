// Reads a ~/.my.cnf-style option file ([client] user=, password=, host=, port=, socket=),
// the same format the mysql client and percona-toolkit read with --defaults-file.
import { readFileSync, statSync } from 'node:fs';
import { badInput } from '../exit.js';

export interface ClientOptions {
  user?: string;
  password?: string;
  host?: string;
  port?: number;
  socket?: string;
}

const SECTIONS = new Set(['client', 'mysql', 'mariadb', 'client-mariadb', 'ezctl']);

// Values are read the way the client library reads them (mysys my_default.c), so a password
// that works with `mysql --defaults-file` works here: a # outside quotes starts a comment even
// without a space before it; then surrounding spaces and one pair of matching quotes go; then
// the escapes \n \t \r \b \s \" \' \\ are decoded, and any other backslash is kept as is.
function removeEndComment(line: string): string {
  let quote = '';
  let escape = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if ((c === '"' || c === "'") && !escape) {
      if (!quote) quote = c;
      else if (quote === c) quote = '';
    }
    if (!quote && c === '#') return line.slice(0, i);
    escape = !escape && c === '\\';
  }
  return line;
}

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', b: '\b', s: ' ', '"': '"', "'": "'", '\\': '\\' };

function unquote(v: string): string {
  let t = v.trim();
  if (t.length >= 2 && (t[0] === '"' || t[0] === "'") && t.at(-1) === t[0]) t = t.slice(1, -1);
  let out = '';
  for (let i = 0; i < t.length; i++) {
    if (t[i] === '\\' && i < t.length - 1) {
      const c = t[++i]!;
      out += ESCAPES[c] ?? `\\${c}`;
    } else out += t[i];
  }
  return out;
}

export function parseDefaultsFile(content: string, path = '(defaults file)'): ClientOptions {
  const out: ClientOptions = {};
  let section = '';
  content.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';') || line.startsWith('!')) return;
    const sec = /^\[([^\]]+)\]/.exec(line);
    if (sec) {
      section = sec[1]!.trim().toLowerCase();
      return;
    }
    if (!SECTIONS.has(section)) return;
    const opt = removeEndComment(line);
    const eq = opt.indexOf('=');
    // A bare `password` means "ask for it" to the mysql client, not an empty password: ignore
    // options without a value rather than invent one.
    if (eq < 0) return;
    const key = opt.slice(0, eq).trim().toLowerCase().replace(/_/g, '-');
    const value = unquote(opt.slice(eq + 1));
    switch (key) {
      case 'user': out.user = value; break;
      case 'password': out.password = value; break;
      case 'host': out.host = value; break;
      case 'socket': out.socket = value; break;
      case 'port':
        if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 65535) {
          throw badInput(`${path}:${i + 1}: port ${JSON.stringify(value)} is not a port (1-65535)`);
        }
        out.port = Number(value);
        break;
      default: break; // other client options are not ours to interpret
    }
  });
  return out;
}

/** Warnings already given, so that a file read once per node is named once per run. */
const warned = new Set<string>();

/**
 * Read a defaults file as the mysql client does. A world-writable regular file is ignored with
 * a warning (mysys my_default.c: "World-writable config file '...' is ignored"): anyone on the
 * host could have put their own user and password in it. Like the client, a group-writable file
 * or one owned by another user (/etc/mysql/debian.cnf, shared through a group) is read.
 */
export function readDefaultsFile(path: string, opts: { warn?: (message: string) => void } = {}): ClientOptions {
  const cannot = (e: unknown) =>
    badInput(`cannot read defaults file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      hint: 'give a readable file in ~/.my.cnf format ([client] user=... password=...)',
    });
  let st;
  try {
    st = statSync(path);
  } catch (e) {
    throw cannot(e);
  }
  if (st.isFile() && (st.mode & 0o002) !== 0) {
    if (!warned.has(path)) {
      warned.add(path);
      const warn = opts.warn ?? ((m: string) => process.stderr.write(`warning: ${m}\n`));
      warn(`World-writable config file '${path}' is ignored: any user on this host can change it; fix: chmod o-w ${path}`);
    }
    return {};
  }
  let content: string;
  try {
    content = readFileSync(path, 'utf8');
  } catch (e) {
    throw cannot(e);
  }
  return parseDefaultsFile(content, path);
}
