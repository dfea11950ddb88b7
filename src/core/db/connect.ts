// Connections through mysql2 with a connect timeout, a fixed session time zone, and errors
// that name the node and the cause (never the password).
import mysql from 'mysql2/promise';
import type { Connection, FieldPacket, Pool, PoolOptions, ResultSetHeader, RowDataPacket } from 'mysql2/promise';
import type { Connection as CoreConnection, TypeCast } from 'mysql2';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { EzError, ExitCode, runtimeError, badInput } from '../exit.js';
import { describeAddress } from '../config/dsn.js';
import { readDefaultsFile } from '../config/defaults-file.js';
import { expandPath, type ResolvedNode } from '../config/load.js';
import type { Credentials } from '../config/schema.js';
import { addressFrom } from '../config/via.js';

export interface Endpoint {
  /** for messages: "bj-master 127.0.0.1:3307" */
  label: string;
  host: string;
  port: number;
  socket?: string;
  user: string;
  password?: string;
  /** where the password came from, for messages: "$EZCTL_PASSWORD", "defaults file x.cnf", "--ask-pass", "none" */
  passwordSource: string;
  database?: string;
  tls?: ResolvedNode['tls'];
  baseDir?: string;
}

export interface SecretOptions {
  /** global --defaults-file: overrides user and password from the topology file */
  defaultsFile?: string;
  /** global --ask-pass: a function that prompts once per user */
  askPass?: (user: string) => Promise<string>;
  /** where warnings about credentials go (a defaults file ignored); stderr when not given */
  warn?: (message: string) => void;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 5000;

/**
 * Turn a topology node + secret options into a connectable endpoint, as seen from a zone: another
 * zone's node is reached at its address seen from there (`via:`, config/via.ts), every other
 * connection at the node's own address.
 */
export async function resolveEndpoint(node: ResolvedNode, secrets: SecretOptions = {}, fromZone?: string): Promise<Endpoint> {
  const a = addressFrom(node, fromZone);
  const label = a.seenFrom ? `${node.name} ${describeAddress(node)} (from ${a.seenFrom} at ${describeAddress(a)})` : `${node.name} ${describeAddress(node)}`;
  return endpointFrom({ host: a.host, port: a.port, socket: a.socket, tls: node.tls, label }, node.credentials, node.baseDir, secrets);
}

export async function endpointFrom(
  addr: { host: string; port: number; socket?: string | undefined; tls?: ResolvedNode['tls']; label?: string; database?: string },
  creds: Credentials,
  baseDir: string,
  secrets: SecretOptions = {},
): Promise<Endpoint> {
  let user = creds.user;
  let password: string | undefined;
  let passwordSource = 'none';
  if (creds.defaultsFile) {
    const path = expandPath(creds.defaultsFile, baseDir);
    const df = readDefaultsFile(path, secrets.warn ? { warn: secrets.warn } : {});
    user ??= df.user;
    if (df.password !== undefined) {
      password = df.password;
      passwordSource = `defaults file ${path}`;
    }
  }
  if (creds.passwordEnv) {
    const v = process.env[creds.passwordEnv];
    if (v === undefined) {
      throw badInput(`environment variable ${creds.passwordEnv} (named by credentials.passwordEnv) is not set`, {
        hint: `export ${creds.passwordEnv} with the password of user ${user ?? 'root'}, or use a defaults file`,
      });
    }
    password = v;
    passwordSource = `$${creds.passwordEnv}`;
  }
  if (secrets.defaultsFile) {
    const df = readDefaultsFile(expandPath(secrets.defaultsFile, process.cwd()), secrets.warn ? { warn: secrets.warn } : {});
    if (df.user !== undefined) user = df.user;
    if (df.password !== undefined) {
      password = df.password;
      passwordSource = `--defaults-file ${secrets.defaultsFile}`;
    }
  }
  user ??= 'root';
  if (secrets.askPass) {
    password = await secrets.askPass(user);
    passwordSource = '--ask-pass';
  }
  const ep: Endpoint = {
    label: addr.label ?? describeAddress(addr),
    host: addr.host,
    port: addr.port,
    user,
    passwordSource,
    baseDir,
  };
  if (addr.socket) ep.socket = addr.socket;
  if (password !== undefined) ep.password = password;
  if (addr.tls) ep.tls = addr.tls;
  if (addr.database) ep.database = addr.database;
  return ep;
}

function sslOptions(ep: Endpoint): PoolOptions['ssl'] | undefined {
  if (!ep.tls) return undefined;
  const base = ep.baseDir ?? process.cwd();
  const read = (p?: string) => (p ? readFileSync(expandPath(p, base)) : undefined);
  const out: Record<string, unknown> = { rejectUnauthorized: ep.tls.rejectUnauthorized ?? true };
  if (ep.tls.ca) out.ca = read(ep.tls.ca);
  if (ep.tls.cert) out.cert = read(ep.tls.cert);
  if (ep.tls.key) out.key = read(ep.tls.key);
  return out as PoolOptions['ssl'];
}

/** mysql2 options for an endpoint; the binlog reader uses the same ones, so values decode alike. */
export function mysqlOptions(ep: Endpoint, timeoutMs: number): PoolOptions {
  const o: PoolOptions = {
    host: ep.host,
    port: ep.port,
    user: ep.user,
    connectTimeout: timeoutMs,
    // Values come back as the server prints them: no float rounding, no time zone shifts,
    // BIGINT UNSIGNED and DECIMAL exact.
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: true,
    decimalNumbers: false,
    jsonStrings: true,
    timezone: 'Z',
    multipleStatements: false,
    charset: 'utf8mb4_general_ci',
  };
  if (ep.socket) o.socketPath = ep.socket;
  if (ep.password !== undefined) o.password = ep.password;
  if (ep.database) o.database = ep.database;
  const ssl = sslOptions(ep);
  if (ssl) o.ssl = ssl;
  return o;
}

// MariaDB names for the server error numbers mysql2 has no name for (its table is MySQL 8's),
// where ezctl matches on the name: a killed connection must be retried like a lost one.
const MARIADB_ONLY_NAMES: Record<number, string> = { 1927: 'ER_CONNECTION_KILLED' };

/**
 * A server error as the mysql and mariadb clients print it: "ERROR 1064 (42000): <the server's
 * own message>". No symbolic name: mysql2 names error numbers by MySQL 8's table, and MariaDB
 * 10.11 uses 360 of its 1218 numbers for other errors (its 4161, "Unknown data type", is MySQL's
 * ER_INSTALL_COMPONENT_SET_UNUSED_VALUE); the number and the message are right on both servers.
 * Errors of the client or the network keep their code (ECONNRESET, PROTOCOL_CONNECTION_LOST).
 */
export function describeDbError(err: unknown): string {
  const e = err as { code?: string; errno?: number; sqlState?: string; sqlMessage?: string; message?: string };
  if (e && typeof e.errno === 'number' && e.errno > 0 && e.sqlMessage !== undefined) {
    return `ERROR ${e.errno}${e.sqlState ? ` (${e.sqlState})` : ''}: ${e.sqlMessage}`;
  }
  const msg = e?.message ?? String(err);
  return e?.code && !msg.includes(e.code) ? `${msg} (${e.code})` : msg;
}

/** The error's symbolic name where it means the same on MySQL and MariaDB (or is MariaDB's own). */
function errorName(e: { code?: string; errno?: number }): string | undefined {
  return e.code ?? (typeof e.errno === 'number' ? MARIADB_ONLY_NAMES[e.errno] : undefined);
}

/** Explain a connection failure: which node, what happened, what to do. Never the password. */
export function connectError(ep: Endpoint, err: unknown): EzError {
  const e = err as { code?: string; errno?: number; message?: string; sqlMessage?: string };
  const where = ep.label.includes(describeAddress(ep)) ? ep.label : `${ep.label} (${describeAddress(ep)})`;
  switch (e.code) {
    case 'ECONNREFUSED':
      return runtimeError(`cannot connect to ${where}: connection refused`, { hint: 'is the server running and listening on that port?', cause: err });
    case 'ETIMEDOUT':
      return runtimeError(`cannot connect to ${where}: no answer within the connect timeout`, { hint: 'check the host, the port and any firewall; raise --connect-timeout if the network is slow', cause: err });
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return runtimeError(`cannot connect to ${where}: host name does not resolve`, { hint: 'check the host name in the topology file', cause: err });
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return runtimeError(`cannot connect to ${where}: host unreachable`, { hint: 'check the network route to that host', cause: err });
    case 'ENOENT':
      return runtimeError(`cannot connect to ${where}: socket ${ep.socket ?? ''} does not exist`, { hint: 'is the server running? check the socket path', cause: err });
    case 'ER_ACCESS_DENIED_ERROR':
    case 'ER_ACCESS_DENIED_NO_PASSWORD_ERROR':
      return runtimeError(`access denied for user ${JSON.stringify(ep.user)} at ${where} (password ${ep.password === undefined ? 'not given' : 'given'}, from ${ep.passwordSource})`, {
        hint: 'check the user and the password source: credentials.passwordEnv, credentials.defaultsFile, --defaults-file or --ask-pass',
        cause: err,
      });
    case 'ER_DBACCESS_DENIED_ERROR':
    case 'ER_BAD_DB_ERROR':
      return runtimeError(`cannot use database at ${where}: ${describeDbError(err)}`, { cause: err });
    default:
      return runtimeError(`cannot connect to ${where}: ${describeDbError(err)}`, { cause: err });
  }
}

/**
 * A LOAD DATA LOCAL's content goes to the server one packet per piece: a piece larger than the
 * server's max_allowed_packet (16 MiB by default) would be refused (ERROR 1153), whatever the file.
 */
const LOAD_PIECE_BYTES = 256 * 1024;

function* pieces(data: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

export type Row = Record<string, unknown>;

export interface ReadOptions {
  /**
   * Geometries as the server's own bytes (SRID and WKB), which it takes back as a value, instead of
   * mysql2's decoded object, which no INSERT can carry: for reads whose values are written again.
   */
  geometryAsBytes?: boolean;
}

const geometryAsBytes: TypeCast = (field, next) => (field.type === 'GEOMETRY' ? field.buffer() : next());
export type Param = string | number | bigint | boolean | null | Buffer | Date;

/** A single connection with the helpers every capability needs. */
export class Db {
  constructor(
    readonly conn: Connection,
    readonly ep: Endpoint,
  ) {}

  async query<T extends Row = Row>(sql: string, params: readonly Param[] = [], opts: ReadOptions = {}): Promise<T[]> {
    try {
      const [rows] = opts.geometryAsBytes
        ? await this.conn.query<RowDataPacket[]>({ sql, typeCast: geometryAsBytes }, params as unknown[])
        : await this.conn.query<RowDataPacket[]>(sql, params as unknown[]);
      return rows as unknown as T[];
    } catch (e) {
      throw queryError(this.ep, sql, e);
    }
  }

  /**
   * Rows as arrays of values in the select list's order, decoded like query()'s: no object per row
   * and no column-name lookups, for a copy that sends the values straight on (copy/strategy.ts).
   */
  async queryArrays(sql: string, params: readonly Param[] = [], opts: ReadOptions = {}): Promise<unknown[][]> {
    try {
      const [rows] = await this.conn.query<RowDataPacket[][]>({ sql, rowsAsArray: true, ...(opts.geometryAsBytes ? { typeCast: geometryAsBytes } : {}) }, params as unknown[]);
      return rows as unknown as unknown[][];
    } catch (e) {
      throw queryError(this.ep, sql, e);
    }
  }

  /**
   * Rows as the server sent them, one at a time as they arrive: each row its text-protocol packet
   * (`buf[from, to)`: a length-coded string per value, 0xfb for NULL; text as the session's
   * utf8mb4, numbers and dates as their text), after the columns' metadata. No value is made into
   * a JS string, number or Buffer and no row is kept: for a copy that only passes the bytes on
   * (copy/strategy.ts). The bytes are valid only during the call.
   *
   * mysql2 has no public hook for this: its query command's row parser (`_rowParser`, set once
   * the columns are read) is replaced on this command alone by one that hands over the packet.
   * copy-apply.test.ts copies every kind of value through it (mysql2 pinned in package-lock.json).
   */
  queryRawPackets(
    sql: string,
    params: readonly Param[],
    onFields: (fields: FieldPacket[]) => void,
    onRow: (buf: Buffer, from: number, to: number) => void,
  ): Promise<void> {
    const core = (this.conn as unknown as { connection: CoreConnection }).connection;
    return new Promise<void>((resolve, reject) => {
      let failed: unknown;
      const rowParser = {
        next(packet: { buffer: Buffer; offset: number; end: number }): null {
          if (!failed) {
            try {
              onRow(packet.buffer, packet.offset, packet.end);
            } catch (e) {
              failed = e;
            }
          }
          return null;
        },
      };
      const cmd = core
        .query({ sql, rowsAsArray: true, typeCast: false }, params as unknown[])
        .on('fields', (fields: FieldPacket[]) => {
          try {
            if (!failed) onFields(fields);
          } catch (e) {
            failed = e;
          }
        })
        // a row that comes as a value means the parser above was not used (another mysql2): never a silent skip
        .on('result', (row: unknown) => {
          if (row !== null) failed ??= new Error(`${this.ep.label}: the installed mysql2 does not hand over row packets (Db.queryRawPackets); install the version in package-lock.json`);
        })
        .on('error', (e: unknown) => (failed ? reject(failed) : reject(queryError(this.ep, sql, e))))
        .on('end', () => (failed ? reject(failed) : resolve()));
      Object.defineProperty(cmd, '_rowParser', { configurable: true, get: () => rowParser, set: () => undefined });
    });
  }

  async exec(sql: string, params: readonly Param[] = []): Promise<ResultSetHeader> {
    try {
      const [res] = await this.conn.query<ResultSetHeader>(sql, params as unknown[]);
      return res;
    } catch (e) {
      throw queryError(this.ep, sql, e);
    }
  }

  /**
   * LOAD DATA LOCAL INFILE with the file's content given: the server's request for the file is
   * answered with `data` whatever name it asks for, so a server can read nothing else of this host.
   */
  async loadLocal(sql: string, data: Buffer): Promise<ResultSetHeader> {
    try {
      const [res] = await this.conn.query<ResultSetHeader>({ sql, infileStreamFactory: () => Readable.from(pieces(data, LOAD_PIECE_BYTES)) });
      return res;
    } catch (e) {
      throw queryError(this.ep, sql, e);
    }
  }

  async one<T extends Row = Row>(sql: string, params: readonly Param[] = []): Promise<T | undefined> {
    return (await this.query<T>(sql, params))[0];
  }

  async value<T = unknown>(sql: string, params: readonly Param[] = []): Promise<T | undefined> {
    const row = await this.one(sql, params);
    return row ? (Object.values(row)[0] as T) : undefined;
  }

  /**
   * The connection was opened with multipleStatements (connect's option): a caller may send
   * several statements as one query, one round trip (the server stops at the first error).
   */
  get multipleStatements(): boolean {
    return Boolean((this.conn as unknown as { config?: { multipleStatements?: boolean } }).config?.multipleStatements);
  }

  async close(): Promise<void> {
    try {
      await this.conn.end();
    } catch {
      this.conn.destroy();
    }
  }
}

export class QueryError extends EzError {
  readonly code: string | undefined;
  readonly errno: number | undefined;
  constructor(message: string, code: string | undefined, errno: number | undefined, cause: unknown) {
    super(ExitCode.runtime, message, { cause });
    this.code = code;
    this.errno = errno;
  }
}

function queryError(ep: Endpoint, sql: string, err: unknown): EzError {
  if (err instanceof EzError) return err;
  const e = err as { code?: string; errno?: number };
  const short = sql.replace(/\s+/g, ' ').slice(0, 120);
  return new QueryError(`${ep.label}: ${describeDbError(err)} in: ${short}`, errorName(e), e.errno, err);
}

export async function connect(ep: Endpoint, opts: { timeoutMs?: number; multipleStatements?: boolean } = {}): Promise<Db> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  let conn: Connection;
  try {
    // multipleStatements only where asked (a caller batching its own statements, every value a
    // placeholder): one round trip for several statements across the distance between zones
    conn = await mysql.createConnection({ ...mysqlOptions(ep, timeoutMs), ...(opts.multipleStatements ? { multipleStatements: true } : {}) });
  } catch (e) {
    throw connectError(ep, e);
  }
  // A connection error after connect must not crash the process: queries report it.
  conn.on('error', () => {});
  const db = new Db(conn, ep);
  await db.exec("SET time_zone = '+00:00'");
  return db;
}

/** A pool for concurrent work against one node; same options and time zone as connect(). */
export function pool(ep: Endpoint, opts: { size?: number; timeoutMs?: number } = {}): Pool {
  const p = mysql.createPool({ ...mysqlOptions(ep, opts.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS), connectionLimit: opts.size ?? 4, waitForConnections: true });
  p.on('connection', (c) => {
    c.query("SET time_zone = '+00:00'");
  });
  return p;
}
