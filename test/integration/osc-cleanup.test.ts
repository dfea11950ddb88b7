// `ezctl osc cleanup` and `osc --drop-old-table` against a real two-zone sandbox (a replica each)
// with DRC running: the helper tables changes leave (an old table kept after a cut-over, a ghost
// of a job that is gone, a cut-over sentry, a plan's unlogged probe) are listed in every zone
// without changing anything, and dropped with --execute, on the replicas too; a running job's
// ghost, a ghost whose job has saved state in that zone, and an old table whose own table is
// missing are left alone. A change refused for a kept old table names `osc cleanup --execute`,
// and proceeds after it.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { EZCTL, show } from '../helpers/cli.js';
import { startSandbox, eventually, type TestSandbox } from '../helpers/sandbox.js';
import { drcStart, drcStop, drcWaitAll, sqlOn } from '../helpers/drc.js';

let sb: TestSandbox;
let pid: number | undefined;
let cluster = '';
const ZONES = ['bj', 'sh'];
const MASTERS = ['bj-master', 'sh-master'];
const flagDir = mkdtempSync(join(tmpdir(), 'ezctl-osc-cleanup-'));
const TS = 'drc_ts TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)';

async function tables(node: string): Promise<string[]> {
  const db = await sb.db(node);
  try {
    return (await db.query<{ t: string }>("SELECT TABLE_NAME AS t FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app' ORDER BY 1")).map((r) => r.t);
  } finally {
    await db.close();
  }
}

const helpers = async (node: string) => (await tables(node)).filter((t) => /_ez|^_ezctl/.test(t));

before(async () => {
  sb = await startSandbox({ zones: ZONES, replicas: 1 });
  cluster = /clusters:\s*\n\s+([A-Za-z0-9_-]+):/.exec(readFileSync(sb.config, 'utf8'))![1]!;
  for (const node of MASTERS) {
    await sqlOn(sb, node,
      'CREATE DATABASE app',
      ...['live', 'kept', 'orphan', 'stateful'].map((t) => `CREATE TABLE app.${t} (id INT NOT NULL PRIMARY KEY, v INT NOT NULL, ${TS})`),
    );
  }
  pid = await drcStart(sb);
  await sqlOn(sb, 'bj-master', 'USE app', ...['live', 'kept', 'orphan', 'stateful'].map((t) => `INSERT INTO app.${t} (id, v) SELECT seq, seq FROM seq_1_to_3000`));
  await drcWaitAll(sb, ZONES, '60s');
});

after(async () => {
  if (sb) await drcStop(sb, pid);
  await sb?.down();
  rmSync(flagDir, { recursive: true, force: true });
});

test('osc cleanup lists in every zone and changes nothing; --execute drops what no job owns, on the replicas too, and leaves a running job\'s tables alone', async () => {
  // an old table kept by a finished change, in both zones; a second change of the table is refused, naming the fix
  const first = await sb.run(['osc', '--table', 'app.kept', '--alter', 'ADD COLUMN note INT NULL', '--instant', 'never', '--execute']);
  assert.equal(first.code, 0, show(first));
  assert.match(first.stdout, /the original is kept as <table>_ezdel \(`ezctl osc cleanup` drops it\)/);
  const second = ['osc', '--table', 'app.kept', '--alter', 'ADD COLUMN note2 INT NULL', '--instant', 'never', '--execute'];
  const refused = await sb.run(second);
  assert.equal(refused.code, 4, show(refused));
  assert.match(refused.stderr, /app\.kept_ezdel exists: the original kept by an earlier change of kept; `ezctl osc cleanup --execute` drops it/);
  // left by jobs that are gone: a ghost (logged, so the replicas have it too), and in bj a plan's probe (unlogged)
  for (const node of MASTERS) {
    await sqlOn(sb, node,
      'CREATE TABLE app.orphan_ezgho LIKE app.orphan', 'INSERT INTO app.orphan_ezgho (id, v) SELECT id, v FROM app.orphan',
      'CREATE TABLE app.stateful_ezgho LIKE app.stateful',
      'CREATE TABLE app.gone_ezdel (id INT NOT NULL PRIMARY KEY)',
      'CREATE TABLE app.orphan_ezcut (id INT NOT NULL PRIMARY KEY)',
    );
  }
  const dead = spawn('true');
  const deadPid = await new Promise<number>((r) => dead.on('exit', () => r(dead.pid!)));
  await sqlOn(sb, 'bj-master', 'SET SESSION sql_log_bin = 0', `CREATE TABLE app._ezctl_osc_probe_${deadPid} (id INT NOT NULL PRIMARY KEY)`);
  // stateful's change has saved state in bj only (a job elsewhere, or one that died there)
  await sqlOn(sb, 'bj-master',
    'CREATE DATABASE IF NOT EXISTS _ezctl',
    "CREATE TABLE IF NOT EXISTS _ezctl.osc_state (job VARCHAR(191) NOT NULL, zone VARCHAR(64) NOT NULL, alter_text TEXT NOT NULL, last_key TEXT NULL, applied_pos TEXT NOT NULL, rows_copied BIGINT UNSIGNED NOT NULL DEFAULT 0, phase VARCHAR(16) NOT NULL, updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3), PRIMARY KEY (job, zone)) ENGINE=InnoDB",
    `INSERT INTO _ezctl.osc_state (job, zone, alter_text, applied_pos, phase) VALUES ('${cluster}:app.stateful', 'bj', 'ADD COLUMN x INT', '', 'copying')`,
  );
  // a running change, held in its copy by a flag file
  const flag = join(flagDir, 'hold');
  writeFileSync(flag, '');
  const job = spawn(process.execPath, [EZCTL, '--config', sb.config, '--json', 'osc', '--table', 'app.live', '--alter', 'ADD COLUMN note INT NULL', '--instant', 'never', '--execute', '--drop-old-table', '--throttle-flag-file', flag], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  job.stdout.on('data', (d) => (out += d));
  job.stderr.on('data', (d) => (err += d));
  const exited = new Promise<number | null>((r) => job.on('exit', (c) => r(c)));
  try {
    for (const node of MASTERS) await eventually(async () => (await tables(node)).includes('live_ezgho'), 30_000, `${node}: the running job's ghost`);
    const before = Object.fromEntries(await Promise.all(MASTERS.map(async (n) => [n, await helpers(n)] as const)));

    const plan = await sb.run(['--json', 'osc', 'cleanup']);
    assert.equal(plan.code, 0, show(plan));
    const listed = plan.json().tables as Array<{ zone: string; table: string; kind: string; action: string; why: string; dropped?: boolean }>;
    const verdict = (zone: string, table: string) => listed.find((t) => t.zone === zone && t.table === table);
    for (const z of ZONES) {
      assert.equal(verdict(z, 'kept_ezdel')?.action, 'drop', JSON.stringify(listed));
      assert.equal(verdict(z, 'kept_ezdel')?.kind, 'old');
      assert.equal(verdict(z, 'orphan_ezgho')?.action, 'drop');
      assert.equal(verdict(z, 'orphan_ezcut')?.action, 'drop');
      assert.equal(verdict(z, 'live_ezgho')?.action, 'keep');
      assert.match(verdict(z, 'live_ezgho')!.why, /running/);
      assert.equal(verdict(z, 'gone_ezdel')?.action, 'keep');
      assert.match(verdict(z, 'gone_ezdel')!.why, /app\.gone itself is missing/);
    }
    assert.equal(verdict('bj', 'stateful_ezgho')?.action, 'keep');
    assert.match(verdict('bj', 'stateful_ezgho')!.why, /saved state in bj/);
    assert.equal(verdict('sh', 'stateful_ezgho')?.action, 'drop', 'no saved state in sh');
    assert.equal(verdict('bj', `_ezctl_osc_probe_${deadPid}`)?.action, 'drop');
    assert.ok(listed.every((t) => !t.dropped), 'the plan drops nothing');
    for (const n of MASTERS) assert.deepEqual(await helpers(n), before[n], `${n}: nothing changed by the plan`);
    const text = await sb.run(['osc', 'cleanup']);
    assert.equal(text.code, 0, show(text));
    assert.match(text.stdout, /run again with --execute to drop 8 tables/);

    const exec = await sb.run(['--json', 'osc', 'cleanup', '--execute']);
    assert.equal(exec.code, 0, show(exec));
    const dropped = (exec.json().tables as typeof listed).filter((t) => t.dropped).map((t) => `${t.zone}:${t.table}`).sort();
    assert.deepEqual(dropped, [
      `bj:_ezctl_osc_probe_${deadPid}`, 'bj:kept_ezdel', 'bj:orphan_ezcut', 'bj:orphan_ezgho',
      'sh:kept_ezdel', 'sh:orphan_ezcut', 'sh:orphan_ezgho', 'sh:stateful_ezgho',
    ]);
    assert.deepEqual(await helpers('bj-master'), ['gone_ezdel', 'live_ezgho', 'stateful_ezgho']);
    assert.deepEqual(await helpers('sh-master'), ['gone_ezdel', 'live_ezgho']);
    // the replicas followed their masters' drops (DRC carried nothing between the zones: each zone dropped its own)
    await eventually(async () => (await helpers('bj-replica1')).join() === 'gone_ezdel,live_ezgho,stateful_ezgho', 30_000, 'bj-replica1 follows');
    await eventually(async () => (await helpers('sh-replica1')).join() === 'gone_ezdel,live_ezgho', 30_000, 'sh-replica1 follows');
  } finally {
    rmSync(flag, { force: true });
  }
  // the running job was not disturbed: it completes, and --drop-old-table leaves nothing of it
  const code = await exited;
  assert.equal(code, 0, `${out}\n${err}`);
  assert.equal(JSON.parse(out).oldTableDropped, true);
  for (const node of [...MASTERS, 'bj-replica1', 'sh-replica1']) {
    await eventually(async () => !(await tables(node)).some((t) => t.startsWith('live_ez')), 30_000, `${node}: no helper table of live left`);
  }
  // and the refused change proceeds now
  const again = await sb.run(second);
  assert.equal(again.code, 0, show(again));
  await drcWaitAll(sb, ZONES, '60s');
  const check = await sb.run(['check', 'full', '--tables', 'app.live,app.kept']);
  assert.equal(check.code, 0, show(check));
  await sqlOn(sb, 'bj-master', 'DELETE FROM _ezctl.osc_state WHERE job LIKE \'%app.stateful\'');
});
