import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeDbError } from '../../src/core/db/connect.js';

// mysql2 errors as it builds them: errno and sqlMessage from the server, code from MySQL 8's table
const serverError = (errno: number, code: string | undefined, sqlState: string, sqlMessage: string) =>
  Object.assign(new Error(sqlMessage), { errno, code, sqlState, sqlMessage });

test('a server error reads as the clients print it: number, SQLSTATE, the server\'s own message, no MySQL name', () => {
  // MariaDB 10.11's 4161 is "Unknown data type"; mysql2 calls it MySQL's ER_INSTALL_COMPONENT_SET_UNUSED_VALUE
  assert.equal(describeDbError(serverError(4161, 'ER_INSTALL_COMPONENT_SET_UNUSED_VALUE', 'HY000', "Unknown data type: 'INTT'")), "ERROR 4161 (HY000): Unknown data type: 'INTT'");
  assert.equal(
    describeDbError(serverError(1064, 'ER_PARSE_ERROR', '42000', "You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use near 'NULLL' at line 1")),
    "ERROR 1064 (42000): You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use near 'NULLL' at line 1",
  );
  // a number mysql2 has no name for at all
  assert.equal(describeDbError(serverError(1927, undefined, '70100', 'Connection was killed')), 'ERROR 1927 (70100): Connection was killed');
});

test('client and network errors keep their code', () => {
  assert.equal(describeDbError(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED', errno: -111 })), 'connect ECONNREFUSED 127.0.0.1:1');
  assert.equal(describeDbError(Object.assign(new Error('Connection lost: The server closed the connection.'), { code: 'PROTOCOL_CONNECTION_LOST', fatal: true })), 'Connection lost: The server closed the connection. (PROTOCOL_CONNECTION_LOST)');
  assert.equal(describeDbError('plain'), 'plain');
});
