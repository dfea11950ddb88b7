import { test } from 'node:test';
import assert from 'node:assert/strict';
import { flavorOf, normalizeReplicaRows, type ReplicaStatus } from '../../src/core/db/server.js';

const U1 = '3e11fa47-71ca-11e1-9e33-c80aa9429562';
const U2 = '8b2f0a9c-0000-4000-8000-000000000001';

/** A MariaDB 10.11 SHOW ALL SLAVES STATUS row (abridged to the columns that matter, plus noise). */
function mariaRow(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    Connection_name: '',
    Slave_SQL_State: 'Slave has read all relay log; waiting for more updates',
    Slave_IO_State: 'Waiting for master to send event',
    Master_Host: '127.0.0.1',
    Master_User: 'repl',
    Master_Port: 13306,
    Connect_Retry: 1,
    Master_Log_File: 'binlog.000002',
    Read_Master_Log_Pos: 1234,
    Slave_IO_Running: 'Yes',
    Slave_SQL_Running: 'Yes',
    Last_Errno: 0,
    Last_Error: '',
    Seconds_Behind_Master: 0,
    Last_IO_Errno: 0,
    Last_IO_Error: '',
    Last_SQL_Errno: 0,
    Last_SQL_Error: '',
    Master_Server_Id: 101,
    Using_Gtid: 'Slave_Pos',
    Gtid_IO_Pos: '1-101-42',
    Retried_transactions: 0,
    Gtid_Slave_Pos: '1-101-42',
    ...over,
  };
}

/** A MySQL 8 SHOW REPLICA STATUS row (abridged, plus noise). */
function mysqlRow(over: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    Replica_IO_State: 'Waiting for source to send event',
    Source_Host: '10.0.0.1',
    Source_User: 'repl',
    Source_Port: 3306,
    Connect_Retry: 60,
    Source_Log_File: 'binlog.000003',
    Replica_IO_Running: 'Yes',
    Replica_SQL_Running: 'Yes',
    Last_Errno: 0,
    Last_Error: '',
    Seconds_Behind_Source: 3,
    Last_IO_Errno: 0,
    Last_IO_Error: '',
    Last_SQL_Errno: 0,
    Last_SQL_Error: '',
    Source_Server_Id: 1,
    Source_UUID: U1,
    Retrieved_Gtid_Set: `${U1}:1-120`,
    Executed_Gtid_Set: `${U1}:1-118,\n${U2}:1-5`,
    Auto_Position: 1,
    Channel_Name: '',
    ...over,
  };
}

test('no rows: the node replicates from nobody', () => {
  assert.deepEqual(normalizeReplicaRows([]), []);
});

test('MariaDB SHOW ALL SLAVES STATUS row', () => {
  const expected: ReplicaStatus = {
    channel: '',
    sourceHost: '127.0.0.1',
    sourcePort: 13306,
    ioState: 'Yes',
    sqlState: 'Yes',
    lagSeconds: 0,
    usingGtid: 'Slave_Pos',
    retrievedGtid: '1-101-42',
    executedGtid: '1-101-42',
    lastIoError: '',
    lastSqlError: '',
  };
  assert.deepEqual(normalizeReplicaRows([mariaRow()]), [expected]);
});

test('MariaDB: a stopped replica has no lag (NULL), and keeps its errors', () => {
  const [r] = normalizeReplicaRows([
    mariaRow({
      Slave_IO_Running: 'Connecting',
      Slave_SQL_Running: 'No',
      Seconds_Behind_Master: null,
      Last_IO_Error: "error connecting to master 'repl@127.0.0.1:13306' - retry-time: 1",
      Last_SQL_Error: "Error 'Duplicate entry' on query",
      Gtid_IO_Pos: '0-1-5,1-101-42',
      Gtid_Slave_Pos: '1-101-40',
    }),
  ]);
  assert.equal(r!.ioState, 'Connecting');
  assert.equal(r!.sqlState, 'No');
  assert.equal(r!.lagSeconds, null);
  assert.equal(r!.lastIoError, "error connecting to master 'repl@127.0.0.1:13306' - retry-time: 1");
  assert.equal(r!.lastSqlError, "Error 'Duplicate entry' on query");
  assert.equal(r!.retrievedGtid, '0-1-5,1-101-42');
  assert.equal(r!.executedGtid, '1-101-40');
});

test('MariaDB multi-source: one entry per named connection, in row order', () => {
  const rows = normalizeReplicaRows([
    mariaRow({ Connection_name: 'from_bj', Master_Port: 3307, Seconds_Behind_Master: 12 }),
    mariaRow({ Connection_name: 'from_sh', Master_Host: '10.1.0.1', Master_Port: '3308', Seconds_Behind_Master: '4' }),
  ]);
  assert.deepEqual(rows.map((r) => [r.channel, r.sourceHost, r.sourcePort, r.lagSeconds]), [
    ['from_bj', '127.0.0.1', 3307, 12],
    ['from_sh', '10.1.0.1', 3308, 4],
  ]);
});

test('MySQL 8 SHOW REPLICA STATUS row; newlines inside GTID sets are removed', () => {
  const expected: ReplicaStatus = {
    channel: '',
    sourceHost: '10.0.0.1',
    sourcePort: 3306,
    ioState: 'Yes',
    sqlState: 'Yes',
    lagSeconds: 3,
    usingGtid: '1',
    retrievedGtid: `${U1}:1-120`,
    executedGtid: `${U1}:1-118,${U2}:1-5`,
    lastIoError: '',
    lastSqlError: '',
  };
  assert.deepEqual(normalizeReplicaRows([mysqlRow()]), [expected]);
});

test('MySQL: stopped replica, named channel, empty lag string', () => {
  const [r] = normalizeReplicaRows([
    mysqlRow({ Replica_IO_Running: 'No', Replica_SQL_Running: 'No', Seconds_Behind_Source: null, Channel_Name: 'bj', Last_IO_Error: 'boom' }),
  ]);
  assert.equal(r!.channel, 'bj');
  assert.equal(r!.ioState, 'No');
  assert.equal(r!.sqlState, 'No');
  assert.equal(r!.lagSeconds, null);
  assert.equal(r!.lastIoError, 'boom');
  assert.equal(normalizeReplicaRows([mysqlRow({ Seconds_Behind_Source: '' })])[0]!.lagSeconds, null);
});

test('MySQL 5.7-style SHOW SLAVE STATUS (Master_* and Slave_* names, GTID sets)', () => {
  const [r] = normalizeReplicaRows([
    {
      Master_Host: 'm1',
      Master_Port: 3306,
      Slave_IO_Running: 'Yes',
      Slave_SQL_Running: 'Yes',
      Seconds_Behind_Master: 7,
      Retrieved_Gtid_Set: `${U1}:1-9`,
      Executed_Gtid_Set: `${U1}:1-9`,
      Auto_Position: 0,
      Channel_Name: '',
      Last_IO_Error: '',
      Last_SQL_Error: '',
    },
  ]);
  assert.deepEqual([r!.sourceHost, r!.lagSeconds, r!.usingGtid, r!.retrievedGtid, r!.executedGtid], ['m1', 7, '0', `${U1}:1-9`, `${U1}:1-9`]);
});

test('missing columns give safe defaults', () => {
  assert.deepEqual(normalizeReplicaRows([{}]), [
    {
      channel: '',
      sourceHost: '',
      sourcePort: 0,
      ioState: 'No',
      sqlState: 'No',
      lagSeconds: null,
      usingGtid: '',
      retrievedGtid: '',
      executedGtid: '',
      lastIoError: '',
      lastSqlError: '',
    },
  ]);
});

test('flavorOf reads the version string', () => {
  assert.equal(flavorOf('10.11.6-MariaDB-0+deb12u1-log'), 'mariadb');
  assert.equal(flavorOf('5.5.5-10.11.6-MariaDB'), 'mariadb');
  assert.equal(flavorOf('11.4.2-mariadb'), 'mariadb');
  assert.equal(flavorOf('8.0.36'), 'mysql');
  assert.equal(flavorOf('8.4.0-commercial'), 'mysql');
  assert.equal(flavorOf('8.0.36-28'), 'mysql');
  assert.equal(flavorOf(''), 'mysql');
});
