// Reads a ~/.my.cnf-style option file ([client] user=, password=, host=, port=, socket=),
// the same format the mysql client and percona-toolkit read with --defaults-file.
import { readFileSync } from 'node:fs';
import { badInput } from '../exit.js';

export interface ClientOptions {
  user?: string;
  password?: string;
  host?: string;
  port?: number;
  socket?: string;
}

const SECTIONS = new Set(['client', 'mysql', 'mariadb', 'client-mariadb', 'ezctl']);

function unquote(v: string): string {
  const t = v.trim();
  if (t.length >= 2 && (t[0] === '"' || t[0] === "'") && t.at(-1) === t[0]) {
    return t.slice(1, -1).replace(/\\(.)/g, (_, c: string) => ({ n: '\n', t: '\t', '\\': '\\' } as Record<string, string>)[c] ?? c);
  }
  return t.replace(/\s+#.*$/, '');
}

export function parseDefaultsFile(content: string, path = '(defaults file)'): ClientOptions {
  const out: ClientOptions = {};
  let section = '';
  content.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (!line || line.startsWith('#') || line.startsWith(';') || line.startsWith('!')) return;
    const sec = /^\[([^\]]+)\]$/.exec(line);
    if (sec) {
      section = sec[1]!.trim().toLowerCase();
      return;
    }
    if (!SECTIONS.has(section)) return;
    const eq = line.indexOf('=');
    const key = (eq < 0 ? line : line.slice(0, eq)).trim().toLowerCase().replace(/_/g, '-');
    const value = eq < 0 ? '' : unquote(line.slice(eq + 1));
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

export function readDefaultsFile(path: string): ClientOptions {
  let content: string;
  try {
    content = readFileSync(path, 'utf8');
  } catch (e) {
    throw badInput(`cannot read defaults file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      hint: 'give a readable file in ~/.my.cnf format ([client] user=... password=...)',
    });
  }
  return parseDefaultsFile(content, path);
}
