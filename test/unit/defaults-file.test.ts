import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ezErrorOf } from '../helpers/errors.js';
import { parseDefaultsFile, readDefaultsFile } from '../../src/core/config/defaults-file.js';


test('[client] user, password, host, port, socket', () => {
  const cnf = '[client]\nuser=ops\npassword=s3cret\nhost=db1.example.com\nport=3307\nsocket=/run/mysqld/mysqld.sock\n';
  assert.deepEqual(parseDefaultsFile(cnf), {
    user: 'ops',
    password: 's3cret',
    host: 'db1.example.com',
    port: 3307,
    socket: '/run/mysqld/mysqld.sock',
  });
});

test('spaces around keys and values, CRLF line ends, case and _ in names', () => {
  const cnf = '[Client]\r\n  USER = ops  \r\npass_word=x\r\nPort= 3306\r\n';
  // pass_word is not password: only `-`/`_` spelling of the same option name is folded
  assert.deepEqual(parseDefaultsFile(cnf), { user: 'ops', port: 3306 });
});

test('quoted values keep spaces and # inside the quotes', () => {
  assert.deepEqual(parseDefaultsFile('[client]\npassword="a b # c"\n'), { password: 'a b # c' });
  assert.deepEqual(parseDefaultsFile("[client]\npassword='  two  spaces  '\n"), { password: '  two  spaces  ' });
  assert.deepEqual(parseDefaultsFile('[client]\npassword = "it\'s"\n'), { password: "it's" });
});

test('a quoted value followed by a comment', () => {
  assert.deepEqual(parseDefaultsFile('[client]\npassword="a b # c"   # the app password\n'), { password: 'a b # c' });
  assert.deepEqual(parseDefaultsFile("[client]\npassword='x#y'#note\n"), { password: 'x#y' });
});

test('unquoted values end at a #, as the mysql client reads them', () => {
  assert.deepEqual(parseDefaultsFile('[client]\nuser=ops   # operator account\n'), { user: 'ops' });
  assert.deepEqual(parseDefaultsFile('[client]\npassword=abc#def\n'), { password: 'abc' });
  assert.deepEqual(parseDefaultsFile('[client]\npassword=with inner spaces  \n'), { password: 'with inner spaces' });
});

test('escapes are decoded; unknown escapes keep their backslash', () => {
  assert.deepEqual(parseDefaultsFile('[client]\npassword="a\\"b"\n'), { password: 'a"b' });
  assert.deepEqual(parseDefaultsFile('[client]\npassword="x\\\\y"\n'), { password: 'x\\y' });
  assert.deepEqual(parseDefaultsFile('[client]\npassword=a\\sb\n'), { password: 'a b' });
  assert.deepEqual(parseDefaultsFile('[client]\npassword="C:\\qdir"\n'), { password: 'C:\\qdir' });
  assert.deepEqual(parseDefaultsFile('[client]\npassword=tab\\there\n'), { password: 'tab\there' });
  // as in the client library, a backslash does not protect a # outside quotes (only quotes do),
  // and a trailing backslash is kept
  assert.deepEqual(parseDefaultsFile('[client]\npassword=a\\#b\n'), { password: 'a\\' });
  assert.deepEqual(parseDefaultsFile('[client]\npassword="a\\#b"\n'), { password: 'a\\#b' });
});

test('a single quote character is a value, not a quoted empty string', () => {
  assert.deepEqual(parseDefaultsFile('[client]\npassword="\n'), { password: '"' });
  assert.deepEqual(parseDefaultsFile('[client]\npassword=""\n'), { password: '' });
});

test('comments, blank lines and !include lines are skipped', () => {
  const cnf = '# a comment\n; another\n\n!includedir /etc/mysql/conf.d/\n[client]\n# user=nobody\nuser=ops\n';
  assert.deepEqual(parseDefaultsFile(cnf), { user: 'ops' });
});

test('options of other sections are ignored', () => {
  const cnf = '[mysqld]\nuser=mysql\nport=3310\n[client]\nuser=ops\n[mysqldump]\nuser=dumper\nport=1\n';
  assert.deepEqual(parseDefaultsFile(cnf), { user: 'ops' });
  assert.deepEqual(parseDefaultsFile('user=outside\nport=1\n'), {});
});

test('client-like sections are all read, later lines winning', () => {
  assert.deepEqual(parseDefaultsFile('[mysql]\nuser=a\n[mariadb]\nhost=h\n[client-mariadb]\nport=3333\n'), { user: 'a', host: 'h', port: 3333 });
});

test('[ezctl] overrides [client] when it comes after it', () => {
  const cnf = '[client]\nuser=root\npassword=rootpw\nport=3306\n[ezctl]\nuser=ezctl\npassword="ez pw"\n';
  assert.deepEqual(parseDefaultsFile(cnf), { user: 'ezctl', password: 'ez pw', port: 3306 });
});

test('a section header may carry a trailing comment', () => {
  assert.deepEqual(parseDefaultsFile('[mysqld]\nuser=mysql\n[client] # for tools\nuser=ops\n'), { user: 'ops' });
});

test('options without a value are ignored (a bare password means "ask")', () => {
  assert.deepEqual(parseDefaultsFile('[client]\nuser=ops\npassword\nskip-ssl\n'), { user: 'ops' });
});

test('unknown client options are ignored', () => {
  assert.deepEqual(parseDefaultsFile('[client]\ndefault-character-set=utf8mb4\nssl-ca=/ca.pem\nuser=u\n'), { user: 'u' });
});

test('a bad port names the file and line', () => {
  for (const [value, shown] of [['abc', '"abc"'], ['70000', '"70000"'], ['0', '"0"'], ['', '""'], ['33 06', '"33 06"']] as const) {
    const e = ezErrorOf(() => parseDefaultsFile(`# header\n[client]\nuser=u\nport=${value}\n`, '/home/ops/.my.cnf'));
    assert.equal(e.exitCode, 2);
    assert.equal(e.message, `/home/ops/.my.cnf:4: port ${shown} is not a port (1-65535)`);
  }
  assert.equal(ezErrorOf(() => parseDefaultsFile('[client]\nport=x\n')).message, '(defaults file):2: port "x" is not a port (1-65535)');
});

test('readDefaultsFile reads a file, and names an unreadable one', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ezctl-unit-'));
  try {
    const path = join(dir, 'client.cnf');
    writeFileSync(path, '[client]\nuser=ezctl\npassword="Zx9_-q"\n');
    assert.deepEqual(readDefaultsFile(path), { user: 'ezctl', password: 'Zx9_-q' });
    writeFileSync(path, '[client]\nport=nope\n');
    assert.equal(ezErrorOf(() => readDefaultsFile(path)).message, `${path}:2: port "nope" is not a port (1-65535)`);
    const missing = ezErrorOf(() => readDefaultsFile(join(dir, 'none.cnf')));
    assert.equal(missing.exitCode, 2);
    assert.equal(missing.message, `cannot read defaults file ${join(dir, 'none.cnf')}: ENOENT`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a world-writable defaults file is ignored with a warning naming it and the fix, as the mysql client does', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ezctl-unit-'));
  try {
    const path = join(dir, 'open.cnf');
    writeFileSync(path, '[client]\nuser=intruder\npassword=planted\n');
    chmodSync(path, 0o666);
    const warnings: string[] = [];
    assert.deepEqual(readDefaultsFile(path, { warn: (m) => warnings.push(m) }), {});
    assert.deepEqual(warnings, [`World-writable config file '${path}' is ignored: any user on this host can change it; fix: chmod o-w ${path}`]);
    // read once per node: named once per run
    assert.deepEqual(readDefaultsFile(path, { warn: (m) => warnings.push(m) }), {});
    assert.equal(warnings.length, 1);
    // fixed: read again
    chmodSync(path, 0o600);
    assert.deepEqual(readDefaultsFile(path, { warn: (m) => warnings.push(m) }), { user: 'intruder', password: 'planted' });
    // like the client: group-writable (a file shared through a group) is read, without a word
    const shared = join(dir, 'shared.cnf');
    writeFileSync(shared, '[client]\nuser=ops\n');
    chmodSync(shared, 0o660);
    assert.deepEqual(readDefaultsFile(shared, { warn: (m) => warnings.push(m) }), { user: 'ops' });
    assert.equal(warnings.length, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
