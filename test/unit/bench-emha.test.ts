// The pure parts of the EMHA benchmark (bench/emha.ts): the write-unavailable window taken from the
// application's acknowledgements, and the copy of MHA::NodeUtil the bench puts first on PERL5LIB
// (MHA 0.58's version parser dies on MariaDB's version string under Perl 5.36).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { windowOf, type Ack } from '../../bench/_emha-writer.js';
import { fixedNodeUtil } from '../../bench/_emha-mha.js';

const a = (id: number, t: number, server: number): Ack => ({ id, t, server });

test('the window runs from the last ack on the old master to the first on the new one', () => {
  const w = windowOf([a(1, 10, 101), a(2, 12, 101), a(3, 14, 101), a(4, 60, 102), a(5, 62, 102)], 101, 102)!;
  assert.equal(w.windowMs, 46);
  assert.equal(w.overlap, 0);
  assert.deepEqual([w.acksOld, w.acksNew], [3, 2]);
});

test('an ack on the old master after the first on the new one is counted as overlap (two writable masters)', () => {
  const w = windowOf([a(1, 10, 101), a(2, 20, 102), a(3, 25, 101), a(4, 30, 102)], 101, 102)!;
  assert.equal(w.overlap, 1);
  assert.equal(w.windowMs, 20 - 25);
});

test('no window without an ack on each side', () => {
  assert.equal(windowOf([a(1, 10, 101)], 101, 102), undefined);
  assert.equal(windowOf([a(1, 10, 102)], 101, 102), undefined);
});

const mha = spawnSync('perl', ['-MMHA::NodeUtil', '-e', '1']).status === 0;

test('the fixed MHA::NodeUtil parses MariaDB version strings where the packaged one dies', { skip: mha ? false : 'MHA 0.58 not installed (scripts/ensure-test-peers.sh)' }, () => {
  const v = '10.11.19-MariaDB-0+deb12u1-log';
  const code = `print MHA::NodeUtil::parse_mysql_version('${v}'), ' ', MHA::NodeUtil::parse_mysql_major_version('${v}'), ' ', MHA::NodeUtil::mysql_version_ge('${v}', '5.6.0'), ' ', MHA::NodeUtil::parse_mysql_version('5.7')`;
  const packaged = spawnSync('perl', ['-MMHA::NodeUtil', '-e', code], { encoding: 'utf8' });
  assert.notEqual(packaged.status, 0);
  assert.match(packaged.stderr, /Redundant argument in sprintf/);
  const fixed = fixedNodeUtil();
  assert.equal(fixed.fixed, true);
  const dir = mkdtempSync(join(tmpdir(), 'ezctl-nodeutil-'));
  try {
    mkdirSync(join(dir, 'MHA'));
    writeFileSync(join(dir, 'MHA', 'NodeUtil.pm'), fixed.text);
    const r = spawnSync('perl', [`-I${dir}`, '-MMHA::NodeUtil', '-e', code], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    // a version with fewer numbers than the format has fields counts the missing ones as 0
    assert.equal(r.stdout, '010011019 010011 1 005007000');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
