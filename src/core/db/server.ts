// What a server is and how it is set up: flavor, version, read_only, binlog settings, GTID
// position; and its replication state normalized across MariaDB's and MySQL's statements.
import type { Db, Row } from './connect.js';
import type { Flavor } from './gtid.js';

export interface ServerInfo {
  flavor: Flavor;
  version: string;
  serverId: number;
  readOnly: boolean;
  logBin: boolean;
  binlogFormat: string | null;
  binlogRowImage: string | null;
  binlogRowMetadata: string | null;
  logReplicaUpdates: boolean;
  gtidDomainId: number | null;
  /** MariaDB: gtid_current_pos; MySQL: gtid_executed */
  gtidPosition: string;
  /** MariaDB: gtid_binlog_pos (what this server's binlog holds); MySQL: gtid_executed */
  gtidBinlogPos: string;
}

export function flavorOf(version: string): Flavor {
  return /mariadb/i.test(version) ? 'mariadb' : 'mysql';
}

const on = (v: unknown) => v === 1 || v === '1' || v === 'ON' || v === 'on' || v === 1n;

export async function serverInfo(db: Db): Promise<ServerInfo> {
  const base = await db.one<Row>(
    'SELECT @@version AS version, @@server_id AS server_id, @@read_only AS read_only, @@log_bin AS log_bin, @@binlog_format AS binlog_format, @@binlog_row_image AS binlog_row_image, @@log_slave_updates AS log_replica_updates',
  );
  const version = String(base?.version ?? '');
  const flavor = flavorOf(version);
  let extra: Row | undefined;
  if (flavor === 'mariadb') {
    extra = await db.one('SELECT @@gtid_domain_id AS domain, @@gtid_current_pos AS pos, @@gtid_binlog_pos AS binlog_pos, @@binlog_row_metadata AS row_metadata');
  } else {
    extra = await db.one('SELECT NULL AS domain, @@gtid_executed AS pos, @@gtid_executed AS binlog_pos, @@binlog_row_metadata AS row_metadata');
  }
  return {
    flavor,
    version,
    serverId: Number(base?.server_id),
    readOnly: on(base?.read_only),
    logBin: on(base?.log_bin),
    binlogFormat: (base?.binlog_format as string) ?? null,
    binlogRowImage: (base?.binlog_row_image as string) ?? null,
    binlogRowMetadata: (extra?.row_metadata as string) ?? null,
    logReplicaUpdates: on(base?.log_replica_updates),
    gtidDomainId: extra?.domain === null || extra?.domain === undefined ? null : Number(extra.domain),
    gtidPosition: String(extra?.pos ?? '').replace(/\s+/g, ''),
    gtidBinlogPos: String(extra?.binlog_pos ?? '').replace(/\s+/g, ''),
  };
}

/** SHOW GLOBAL STATUS for the given names → numbers where numeric. */
export async function globalStatus(db: Db, names: readonly string[]): Promise<Record<string, string>> {
  if (names.length === 0) return {};
  const rows = await db.query<{ Variable_name: string; Value: string }>(
    `SHOW GLOBAL STATUS WHERE Variable_name IN (${names.map(() => '?').join(', ')})`,
    names,
  );
  const out: Record<string, string> = {};
  for (const r of rows) out[r.Variable_name] = r.Value;
  return out;
}

export interface ReplicaStatus {
  channel: string;
  sourceHost: string;
  sourcePort: number;
  ioState: 'Yes' | 'No' | 'Connecting' | string;
  sqlState: 'Yes' | 'No' | string;
  lagSeconds: number | null;
  usingGtid: string;
  /** MariaDB: Gtid_IO_Pos; MySQL: Retrieved_Gtid_Set */
  retrievedGtid: string;
  /** MariaDB: Gtid_Slave_Pos; MySQL: Executed_Gtid_Set */
  executedGtid: string;
  lastIoError: string;
  lastSqlError: string;
}

function pick(r: Row, ...names: string[]): unknown {
  for (const n of names) if (r[n] !== undefined) return r[n];
  return undefined;
}

/** One entry per replication channel; empty when the node replicates from nobody. */
export function normalizeReplicaRows(rows: Row[]): ReplicaStatus[] {
  return rows.map((r) => {
    const lag = pick(r, 'Seconds_Behind_Master', 'Seconds_Behind_Source');
    const ioErr = String(pick(r, 'Last_IO_Error') ?? '');
    const sqlErr = String(pick(r, 'Last_SQL_Error') ?? '');
    return {
      channel: String(pick(r, 'Connection_name', 'Channel_Name') ?? ''),
      sourceHost: String(pick(r, 'Master_Host', 'Source_Host') ?? ''),
      sourcePort: Number(pick(r, 'Master_Port', 'Source_Port') ?? 0),
      ioState: String(pick(r, 'Slave_IO_Running', 'Replica_IO_Running') ?? 'No'),
      sqlState: String(pick(r, 'Slave_SQL_Running', 'Replica_SQL_Running') ?? 'No'),
      lagSeconds: lag === null || lag === undefined || lag === '' ? null : Number(lag),
      usingGtid: String(pick(r, 'Using_Gtid', 'Auto_Position') ?? ''),
      retrievedGtid: String(pick(r, 'Gtid_IO_Pos', 'Retrieved_Gtid_Set') ?? '').replace(/\s+/g, ''),
      executedGtid: String(pick(r, 'Gtid_Slave_Pos', 'Executed_Gtid_Set') ?? '').replace(/\s+/g, ''),
      lastIoError: ioErr,
      lastSqlError: sqlErr,
    };
  });
}

export async function replicaStatus(db: Db, flavor: Flavor): Promise<ReplicaStatus[]> {
  if (flavor === 'mariadb') return normalizeReplicaRows(await db.query('SHOW ALL SLAVES STATUS'));
  try {
    return normalizeReplicaRows(await db.query('SHOW REPLICA STATUS'));
  } catch {
    return normalizeReplicaRows(await db.query('SHOW SLAVE STATUS'));
  }
}

/** Wait until this server has applied `position` (through replication or otherwise). */
export async function waitForGtid(db: Db, flavor: Flavor, position: string, timeoutSeconds: number): Promise<boolean> {
  if (!position) return true;
  if (flavor === 'mariadb') {
    // MASTER_GTID_WAIT follows gtid_slave_pos, which is what a replica applies.
    const r = await db.value<number | string>('SELECT MASTER_GTID_WAIT(?, ?)', [position, timeoutSeconds]);
    return Number(r) === 0;
  }
  const r = await db.value<number | string>('SELECT WAIT_FOR_EXECUTED_GTID_SET(?, ?)', [position, timeoutSeconds]);
  return Number(r) === 0;
}
