// Connection strings accepted wherever a node is asked for:
//   mysql://user@host:port/db   (also mariadb://; IPv6 as [::1])
//   h=host,P=3306,u=user,D=db,t=table,S=/path/to/socket   (percona-toolkit style)
// A password in a connection string is refused: it would show in `ps` and shell history.

export interface ConnectionString {
  host: string;
  port?: number;
  socket?: string;
  user?: string;
  database?: string;
  table?: string;
}

const PASSWORD_REFUSED =
  'a password in a connection string would show in ps and shell history; give it through the credentials passwordEnv, --defaults-file or --ask-pass';

function parsePort(s: string): number {
  if (!/^\d+$/.test(s)) throw new Error(`port ${JSON.stringify(s)} is not a number`);
  const n = Number(s);
  if (n < 1 || n > 65535) throw new Error(`port ${n} is not a port (1-65535)`);
  return n;
}

export function parseConnectionString(input: string): ConnectionString {
  const s = input.trim();
  if (!s) throw new Error('empty connection string');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) return parseUrl(s);
  if (/^[A-Za-z]=/.test(s)) return parsePercona(s);
  // Bare host[:port]; user:password@host is no form we take, but say why rather than echo it
  if (/^[^:@/[\s]*:[^@]*@/.test(s)) throw new Error(PASSWORD_REFUSED);
  return parseHostPort(s);
}

export function parseHostPort(s: string): ConnectionString {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (v6) return v6[2] ? { host: v6[1]!, port: parsePort(v6[2]) } : { host: v6[1]! };
  const m = /^([^:/\s@,=]+)(?::([^:]*))?$/.exec(s);
  if (!m) throw new Error(`${JSON.stringify(redactConnectionString(s))} is not host:port, mysql://user@host:port/db or h=host,P=port`);
  return m[2] !== undefined ? { host: m[1]!, port: parsePort(m[2]) } : { host: m[1]! };
}

/**
 * The text with any password replaced by ***, for messages: URL user:password@ (with or without
 * the mysql:// scheme) and percona p=... (everything after it, since a password may hold commas).
 */
export function redactConnectionString(s: string): string {
  return s
    .replace(/^(\s*[a-z][a-z0-9+.-]*:\/\/[^:@/]*):.*@/i, '$1:***@')
    .replace(/^(\s*[^:@/[\s]*):(?!\/\/).*@/, '$1:***@')
    .replace(/(^|,)\s*p=.*$/, '$1p=***');
}

function parseUrl(s: string): ConnectionString {
  const scheme = s.slice(0, s.indexOf(':')).toLowerCase();
  if (scheme !== 'mysql' && scheme !== 'mariadb') throw new Error(`scheme ${scheme}:// is not mysql:// or mariadb://`);
  // Look for user:password@ before URL() does: a password holding "/" (u:a/b@h) would otherwise
  // end the authority early and be taken for a port and a database name.
  const beforeQuery = s.slice(s.indexOf('://') + 3).split(/[?#]/)[0]!;
  const at = beforeQuery.lastIndexOf('@');
  if (at >= 0 && /:./.test(beforeQuery.slice(0, at))) throw new Error(PASSWORD_REFUSED);
  let url: URL;
  try {
    // URL() does not know mysql://, but parses it as a generic hierarchical URL.
    url = new URL(s);
  } catch {
    // Name the bad port when that is the reason (URL() refuses ports above 65535 and non-digits).
    const authority = beforeQuery.slice(at + 1).split('/')[0]!;
    const port = /^(?:\[[^\]]*\]|[^:]*):(.+)$/.exec(authority)?.[1];
    if (port !== undefined) parsePort(port);
    throw new Error(`${JSON.stringify(redactConnectionString(s))} is not a valid mysql:// URL`);
  }
  if (url.password) throw new Error(PASSWORD_REFUSED);
  if (!url.hostname) throw new Error('the URL names no host');
  const out: ConnectionString = { host: url.hostname.replace(/^\[|\]$/g, '') };
  if (url.port) out.port = parsePort(url.port);
  if (url.username) out.user = decodeURIComponent(url.username);
  const path = decodeURIComponent(url.pathname.replace(/^\//, ''));
  if (path) {
    const [db, table, ...rest] = path.split('/');
    if (rest.length) throw new Error(`path /${path} has more than /db/table`);
    if (db) out.database = db;
    if (table) out.table = table;
  }
  const socket = url.searchParams.get('socket');
  if (socket) out.socket = socket;
  return out;
}

function parsePercona(s: string): ConnectionString {
  const out: Partial<ConnectionString> = {};
  for (const part of s.split(',')) {
    const eq = part.indexOf('=');
    if (eq !== 1) throw new Error(`${JSON.stringify(part)} is not a key=value pair like h=host (keys: h P u D t S)`);
    const key = part[0]!;
    const value = part.slice(2);
    switch (key) {
      case 'h': out.host = value; break;
      case 'P': out.port = parsePort(value); break;
      case 'u': out.user = value; break;
      case 'D': out.database = value; break;
      case 't': out.table = value; break;
      case 'S': out.socket = value; break;
      case 'p': throw new Error(PASSWORD_REFUSED);
      case 'F': throw new Error('F= (defaults file) is given with --defaults-file, not inside the connection string');
      default: throw new Error(`unknown key ${key}= (keys: h P u D t S)`);
    }
  }
  if (!out.host && !out.socket) throw new Error('no h=host (or S=socket) given');
  return { host: out.host ?? 'localhost', ...out } as ConnectionString;
}

/** host:port for messages; never includes credentials. */
export function describeAddress(n: { host?: string; port?: number; socket?: string }): string {
  if (n.socket && !n.host) return n.socket;
  const host = n.host && n.host.includes(':') ? `[${n.host}]` : n.host ?? 'localhost';
  return `${host}:${n.port ?? 3306}`;
}

const LOOPBACK = new Set(['localhost', '127.0.0.1', '::1']);

/** A host as a server is identified by it: lower case, the loopback spellings as one. */
export function hostKey(host: string): string {
  const h = host.toLowerCase();
  return LOOPBACK.has(h) ? '127.0.0.1' : h;
}

export function sameHost(a: string, b: string): boolean {
  return hostKey(a) === hostKey(b);
}

/** One server named two ways (`localhost:3306` and `127.0.0.1:3306`). */
export function sameServer(a: { host: string; port: number }, b: { host: string; port: number }): boolean {
  return a.port === b.port && sameHost(a.host, b.host);
}
