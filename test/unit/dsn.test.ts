import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeAddress, parseConnectionString, parseHostPort, redactConnectionString } from '../../src/core/config/dsn.js';

const PASSWORD_REFUSED = /a password in a connection string would show in ps and shell history/;

/** The error thrown by f; fails the test when nothing is thrown. */
function errorOf(f: () => unknown): Error {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof Error, 'throws an Error');
    return e;
  }
  assert.fail('expected an error');
}

test('mysql:// URL with user, host, port, database and table', () => {
  assert.deepEqual(parseConnectionString('mysql://app@db1.example.com:3307/orders/items'), {
    host: 'db1.example.com',
    port: 3307,
    user: 'app',
    database: 'orders',
    table: 'items',
  });
});

test('mysql:// URL parts are all optional except the host', () => {
  assert.deepEqual(parseConnectionString('mysql://db1'), { host: 'db1' });
  assert.deepEqual(parseConnectionString('mysql://db1:3306'), { host: 'db1', port: 3306 });
  assert.deepEqual(parseConnectionString('mysql://db1/orders'), { host: 'db1', database: 'orders' });
  assert.deepEqual(parseConnectionString('mysql://db1/orders/'), { host: 'db1', database: 'orders' });
  assert.deepEqual(parseConnectionString('mysql://root@db1'), { host: 'db1', user: 'root' });
});

test('mariadb:// is accepted and the scheme is case-insensitive', () => {
  assert.deepEqual(parseConnectionString('mariadb://u@h:3310/d'), { host: 'h', port: 3310, user: 'u', database: 'd' });
  assert.deepEqual(parseConnectionString('MySQL://h:1'), { host: 'h', port: 1 });
});

test('surrounding whitespace is ignored', () => {
  assert.deepEqual(parseConnectionString('  mysql://h:3306  '), { host: 'h', port: 3306 });
  assert.deepEqual(parseConnectionString('\th:3306\n'), { host: 'h', port: 3306 });
});

test('IPv6 hosts in brackets lose their brackets', () => {
  assert.deepEqual(parseConnectionString('mysql://u@[::1]:3306/db'), { host: '::1', port: 3306, user: 'u', database: 'db' });
  assert.deepEqual(parseConnectionString('mysql://[fe80::1]'), { host: 'fe80::1' });
});

test('percent-encoded user and database are decoded', () => {
  assert.deepEqual(parseConnectionString('mysql://app%40zone@h/my%20db'), { host: 'h', user: 'app@zone', database: 'my db' });
  // an "@" in a database name is written %40: a raw one after host:port reads like user:password@
  assert.deepEqual(parseConnectionString('mysql://h:3306/my%40db'), { host: 'h', port: 3306, database: 'my@db' });
});

test('?socket= gives the socket path', () => {
  assert.deepEqual(parseConnectionString('mysql://u@localhost/db?socket=/var/run/mysqld/mysqld.sock'), {
    host: 'localhost',
    user: 'u',
    database: 'db',
    socket: '/var/run/mysqld/mysqld.sock',
  });
  // an empty socket= is no socket
  assert.deepEqual(parseConnectionString('mysql://h?socket='), { host: 'h' });
});

test('a URL path deeper than /db/table is refused', () => {
  assert.equal(errorOf(() => parseConnectionString('mysql://h/a/b/c')).message, 'path /a/b/c has more than /db/table');
});

test('percona style h=,P=,u=,D=,t=,S=', () => {
  assert.deepEqual(parseConnectionString('h=host,P=3306,u=user,D=db,t=table,S=/sock'), {
    host: 'host',
    port: 3306,
    user: 'user',
    database: 'db',
    table: 'table',
    socket: '/sock',
  });
  assert.deepEqual(parseConnectionString('h=10.0.0.5'), { host: '10.0.0.5' });
  assert.deepEqual(parseConnectionString('u=x,h=db2,P=3310'), { host: 'db2', port: 3310, user: 'x' });
});

test('percona style with only a socket connects to localhost', () => {
  assert.deepEqual(parseConnectionString('S=/tmp/mysql.sock'), { host: 'localhost', socket: '/tmp/mysql.sock' });
});

test('percona style without host or socket is refused', () => {
  assert.equal(errorOf(() => parseConnectionString('u=root,P=3306')).message, 'no h=host (or S=socket) given');
});

test('percona style: unknown key, F= and malformed parts are refused', () => {
  assert.equal(errorOf(() => parseConnectionString('h=h,x=1')).message, 'unknown key x= (keys: h P u D t S)');
  assert.match(errorOf(() => parseConnectionString('h=h,F=/etc/my.cnf')).message, /--defaults-file/);
  assert.equal(
    errorOf(() => parseConnectionString('h=h,port=3306')).message,
    '"port=3306" is not a key=value pair like h=host (keys: h P u D t S)',
  );
});

test('bare host and host:port', () => {
  assert.deepEqual(parseConnectionString('db1'), { host: 'db1' });
  assert.deepEqual(parseConnectionString('db1:3307'), { host: 'db1', port: 3307 });
  assert.deepEqual(parseConnectionString('10.1.2.3:3306'), { host: '10.1.2.3', port: 3306 });
  assert.deepEqual(parseConnectionString('[::1]:3306'), { host: '::1', port: 3306 });
  assert.deepEqual(parseConnectionString('[::1]'), { host: '::1' });
  assert.deepEqual(parseHostPort('h:1'), { host: 'h', port: 1 });
});

test('bare forms that are not host:port are refused', () => {
  assert.match(errorOf(() => parseConnectionString('::1')).message, /is not host:port/);
  assert.match(errorOf(() => parseConnectionString('user@host')).message, /is not host:port/);
  assert.match(errorOf(() => parseConnectionString('a b')).message, /is not host:port/);
  assert.equal(errorOf(() => parseConnectionString('h:')).message, 'port "" is not a number');
});

test('a password in a URL is refused without repeating it', () => {
  for (const s of [
    'mysql://u:secret@h',
    'mysql://u:secret@h:3306/db',
    'mariadb://u:secret@[::1]:3306',
    // a password holding "/" must not turn into a port and a database name
    'mysql://u:sec/ret@h',
    'mysql://u:12/34@h',
    'mysql://u:se@cret@h',
    'mysql://u:secret@h:99999',
  ]) {
    const e = errorOf(() => parseConnectionString(s));
    assert.match(e.message, PASSWORD_REFUSED, s);
    assert.ok(!e.message.includes('secret') && !e.message.includes('sec/ret') && !e.message.includes('12/34') && !e.message.includes('cret'), `${s}: ${e.message}`);
  }
});

test('an empty password after the colon is no password', () => {
  assert.deepEqual(parseConnectionString('mysql://u:@h'), { host: 'h', user: 'u' });
});

test('p= in percona style is refused without repeating it', () => {
  for (const s of ['h=h,p=secret', 'p=secret,h=h', 'h=h,u=u,p=secret,P=3306']) {
    const e = errorOf(() => parseConnectionString(s));
    assert.match(e.message, PASSWORD_REFUSED, s);
    assert.ok(!e.message.includes('secret'), e.message);
  }
});

test('user:password@host without a scheme is refused as a password, never echoed', () => {
  for (const s of ['u:secret@h', 'root:secret@10.0.0.1:3306', 'u:se:cret@h', 'u:se@cret@h']) {
    const e = errorOf(() => parseConnectionString(s));
    assert.match(e.message, PASSWORD_REFUSED, s);
    assert.ok(!e.message.includes('secret') && !e.message.includes('cret'), e.message);
  }
});

test('bad ports are refused in every form', () => {
  assert.equal(errorOf(() => parseConnectionString('mysql://h:70000')).message, 'port 70000 is not a port (1-65535)');
  assert.equal(errorOf(() => parseConnectionString('mysql://h:abc/db')).message, 'port "abc" is not a number');
  assert.equal(errorOf(() => parseConnectionString('mysql://h:0')).message, 'port 0 is not a port (1-65535)');
  assert.equal(errorOf(() => parseConnectionString('mysql://[::1]:70000')).message, 'port 70000 is not a port (1-65535)');
  assert.equal(errorOf(() => parseConnectionString('h=h,P=70000')).message, 'port 70000 is not a port (1-65535)');
  assert.equal(errorOf(() => parseConnectionString('h=h,P=abc')).message, 'port "abc" is not a number');
  assert.equal(errorOf(() => parseConnectionString('h=h,P=-1')).message, 'port "-1" is not a number');
  assert.equal(errorOf(() => parseConnectionString('h:70000')).message, 'port 70000 is not a port (1-65535)');
  assert.equal(errorOf(() => parseConnectionString('h:abc')).message, 'port "abc" is not a number');
  assert.equal(errorOf(() => parseConnectionString('[::1]:70000')).message, 'port 70000 is not a port (1-65535)');
  assert.deepEqual(parseConnectionString('h:65535'), { host: 'h', port: 65535 });
});

test('empty input and wrong schemes are refused', () => {
  assert.equal(errorOf(() => parseConnectionString('')).message, 'empty connection string');
  assert.equal(errorOf(() => parseConnectionString('   ')).message, 'empty connection string');
  assert.equal(errorOf(() => parseConnectionString('postgres://u@h/db')).message, 'scheme postgres:// is not mysql:// or mariadb://');
  assert.equal(errorOf(() => parseConnectionString('http://h')).message, 'scheme http:// is not mysql:// or mariadb://');
  assert.match(errorOf(() => parseConnectionString('mysql://')).message, /not a valid mysql:\/\/ URL|names no host/);
});

test('redactConnectionString hides URL and percona passwords', () => {
  assert.equal(redactConnectionString('mysql://u:secret@h:3306/db'), 'mysql://u:***@h:3306/db');
  assert.equal(redactConnectionString('mysql://u:a/b@c@h'), 'mysql://u:***@h');
  assert.equal(redactConnectionString('h=h,u=u,p=secret,P=3306'), 'h=h,u=u,p=***');
  assert.equal(redactConnectionString('p=secret'), 'p=***');
  assert.equal(redactConnectionString('mysql://u@h:3306/db'), 'mysql://u@h:3306/db');
  assert.equal(redactConnectionString('h=h,P=3306'), 'h=h,P=3306');
  // without a scheme, too (no form ezctl takes, but a message may quote what was typed)
  assert.equal(redactConnectionString('u:secret@h:3306'), 'u:***@h:3306');
  assert.equal(redactConnectionString('u:se@cret@h'), 'u:***@h');
  assert.equal(redactConnectionString('h:3306'), 'h:3306');
  assert.equal(redactConnectionString('[::1]:3306'), '[::1]:3306');
  assert.equal(redactConnectionString('user@h'), 'user@h');
});

test('describeAddress', () => {
  assert.equal(describeAddress({ host: 'db1', port: 3307 }), 'db1:3307');
  assert.equal(describeAddress({ host: 'db1' }), 'db1:3306');
  assert.equal(describeAddress({ host: '::1', port: 3306 }), '[::1]:3306');
  assert.equal(describeAddress({ socket: '/tmp/m.sock' }), '/tmp/m.sock');
  assert.equal(describeAddress({ host: 'h', port: 1, socket: '/tmp/m.sock' }), 'h:1');
  assert.equal(describeAddress({}), 'localhost:3306');
});
