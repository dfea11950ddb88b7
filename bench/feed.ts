// The change feed (`ezctl drc feed`) with a webhook sink, on a one-zone sandbox (master only).
//  1. commit-to-ack latency at the DRC bench's rates: a writer stamps each row with the time it
//     sends the (autocommit) INSERT, in ms (column committed_ms); the bench's http server is the
//     webhook and records each event's arrival; arrival - committed_ms is the latency (the
//     server answers 200 at once, so arrival is the acknowledgement).
//  2. throughput: a backlog of BENCH_BACKLOG single-row transactions written first, then a feed
//     started from before it: events/s until the sink has them all, against the limit, the
//     shared binlog reader (src/core/binlog/stream.ts) reading the same range alone, no sink,
//     and mariadb-binlog decoding the same binlog files. Maxwell is not installed here, and no
//     figure of it on comparable hardware is known to us: none is printed.
//  3. the feed's RSS sampled during the backlog (bounded memory) and the webhook's batch count.
// Run with `npm run bench -- feed` (under `flock /work/bench.lock` on a shared machine).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { startSandbox, eventually, type TestSandbox } from '../test/helpers/sandbox.js';
import { EZCTL } from '../test/helpers/cli.js';
import type { Db } from '../src/core/db/connect.js';
import { BinlogStream } from '../src/core/binlog/stream.js';
import { SourcePosition } from '../src/core/binlog/position.js';
import { row, timeCommand } from './_util.js';

const RATES = (process.env.BENCH_RATES ?? '100,400,1000').split(',').map(Number);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const BACKLOG = Number(process.env.BENCH_BACKLOG ?? 200000);
const WRITERS = 8;
const TARGET_P99_MS = 200;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const load = () => loadavg().map((x) => x.toFixed(2)).join(' ');

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

function percentile(xs: number[], p: number): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
}

/** The webhook: records each row event's arrival (by id) and counts the batches. */
interface Hook { server: Server; url: string; arrived: Map<number, number>; stamps: Map<number, number>; batches: number; events: number; lastAt: number }

async function startHook(): Promise<Hook> {
  const h: Hook = { server: undefined as unknown as Server, url: '', arrived: new Map(), stamps: new Map(), batches: 0, events: 0, lastAt: 0 };
  h.server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      const now = Date.now();
      res.end('ok');
      h.batches++;
      h.lastAt = now;
      for (const e of JSON.parse(body).events as any[]) {
        h.events++;
        if (e.type === 'commit') continue;
        const id = Number(e.data.id);
        if (!h.arrived.has(id)) {
          h.arrived.set(id, now);
          h.stamps.set(id, Number(e.data.committed_ms));
        }
      }
    });
  });
  await new Promise<void>((r) => h.server.listen(0, '127.0.0.1', () => r()));
  h.url = `http://127.0.0.1:${(h.server.address() as { port: number }).port}/hook`;
  return h;
}

interface Feed { child: ChildProcess; stderr: string[]; startedAt: number; exited: Promise<number | null> }

async function startFeed(sb: TestSandbox, hook: Hook, name: string, extra: string[] = []): Promise<Feed> {
  const child = spawn(process.execPath, [EZCTL, '--config', sb.config, 'drc', 'feed', '--zone', 'bj', '--name', name, '--tables', 'ezbench.feed', '--sink', hook.url, ...extra], { env: { ...process.env, NO_COLOR: '1', CI: 'true' }, stdio: ['ignore', 'ignore', 'pipe'] });
  const f: Feed = { child, stderr: [], startedAt: 0, exited: new Promise((r) => child.on('exit', (c) => r(c))) };
  child.stderr!.setEncoding('utf8').on('data', (d: string) => f.stderr.push(d));
  await eventually(async () => f.stderr.join('').includes('control socket') || (child.exitCode !== null ? Promise.reject(new Error(f.stderr.join(''))) : false), 60_000, `feed ${name} to start`);
  f.startedAt = Date.now();
  return f;
}

/** Stop a feed through its control socket; SIGTERM by pid if that fails. */
async function stopFeed(sb: TestSandbox, f: Feed, name: string): Promise<void> {
  if (f.child.exitCode !== null || f.child.signalCode !== null) return;
  const r = await sb.run(['drc', 'feed', 'stop', '--name', name]);
  if (r.code !== 0) f.child.kill('SIGTERM');
  const t = setTimeout(() => f.child.kill('SIGTERM'), 15_000);
  await f.exited;
  clearTimeout(t);
}

/** `count` single-row autocommit transactions from WRITERS connections, paced at `rate` tx/s (0 = as fast as they go). */
async function write(sb: TestSandbox, firstId: number, count: number, rate: number): Promise<number> {
  const conns: Db[] = await Promise.all(Array.from({ length: WRITERS }, () => sb.db('bj-master')));
  let next = 0;
  const t0 = Date.now();
  await Promise.all(conns.map(async (c) => {
    for (;;) {
      const i = next++;
      if (i >= count) break;
      if (rate > 0) {
        const due = t0 + (i * 1000) / rate;
        const wait = due - Date.now();
        if (wait > 0) await sleep(wait);
      }
      await c.exec('INSERT INTO ezbench.feed (id, committed_ms, v) VALUES (?, ?, ?)', [firstId + i, Date.now(), `row ${i}`]);
    }
  }));
  const ms = Date.now() - t0;
  await Promise.all(conns.map((c) => c.close()));
  return ms;
}

async function main(): Promise<void> {
  const t00 = Date.now();
  console.log(`drc feed with a webhook sink, 1 zone (master only): ${RATES.join('/')} tx/s for ${SECONDS} s each, then a backlog of ${BACKLOG} single-row transactions`);
  console.log(`load average at start: ${load()}`);
  const sb = await startSandbox({ zones: ['bj'], replicas: 0 });
  const hook = await startHook();
  const feeds: Array<[Feed, string]> = [];
  const results: Record<string, unknown> = {};
  const verdicts: string[] = [];
  try {
    const master = await sb.db('bj-master');
    await master.exec('CREATE DATABASE ezbench');
    await master.exec('CREATE TABLE ezbench.feed (id BIGINT PRIMARY KEY, committed_ms BIGINT NOT NULL, v VARCHAR(64))');

    // ---- 1. commit-to-ack latency at fixed rates
    const lat = await startFeed(sb, hook, 'bench-lat');
    feeds.push([lat, 'bench-lat']);
    await eventually(async () => (await sb.run(['--json', 'drc', 'feed', 'status', '--name', 'bench-lat'])).json().state === 'running', 30_000, 'the feed to run');
    const w = [22, 9, 9, 9, 9, 10, 11];
    const lines = [row(['rate', 'p50 ms', 'p99 ms', 'max ms', 'rows', 'achieved', 'events/s'], w)];
    let id = 1;
    for (const rate of RATES) {
      const n = rate * SECONDS;
      const first = id;
      const batches0 = hook.batches;
      const ev0 = hook.events;
      const ms = await write(sb, first, n, rate);
      id += n;
      await eventually(async () => hook.arrived.has(first + n - 1) && [...Array(n).keys()].every((k) => hook.arrived.has(first + k)), 120_000, `all ${n} rows at ${rate}/s`);
      const lags: number[] = [];
      for (let k = 0; k < n; k++) lags.push(hook.arrived.get(first + k)! - hook.stamps.get(first + k)!);
      const firstAt = Math.min(...lags.map((_, k) => hook.arrived.get(first + k)!));
      const evs = (hook.events - ev0) / ((hook.lastAt - firstAt) / 1000);
      const p50 = percentile(lags, 0.5);
      const p99 = percentile(lags, 0.99);
      const max = Math.max(...lags);
      lines.push(row([`${rate} tx/s`, p50, p99, max, String(n), `${(n / (ms / 1000)).toFixed(0)}/s`, evs.toFixed(0)], w));
      results[`rate${rate}`] = { p50, p99, max, rows: n, achievedTxS: n / (ms / 1000), eventsS: evs, batches: hook.batches - batches0 };
      verdicts.push(`feed commit-to-ack p99 at ${rate} tx/s: ${p99.toFixed(0)} ms (target <= ${TARGET_P99_MS} ms) ${p99 <= TARGET_P99_MS ? 'MET' : 'MISSED'}`);
    }
    console.log(`\ncommit-to-ack: from the writer's stamp (sent with the INSERT) to the webhook receiving the row (${WRITERS} writer connections; events/s counts rows and commit markers)`);
    console.log(lines.join('\n'));
    console.log(`webhook batches during the rates: ${hook.batches}`);
    await stopFeed(sb, lat, 'bench-lat');

    // ---- 2. throughput over a backlog
    await master.exec('FLUSH BINARY LOGS');
    const pos0 = String(await master.value('SELECT @@gtid_binlog_pos'));
    const firstLog = (await master.query<{ Log_name: string }>('SHOW BINARY LOGS')).at(-1)!.Log_name;
    // written fast: the backlog is what is read, not how it was written
    await master.exec('SET GLOBAL innodb_flush_log_at_trx_commit = 2');
    await master.exec('SET GLOBAL sync_binlog = 0');
    let writeMs: number;
    try {
      writeMs = await write(sb, id, BACKLOG, 0);
    } finally {
      await master.exec('SET GLOBAL innodb_flush_log_at_trx_commit = 1');
      await master.exec('SET GLOBAL sync_binlog = 1');
    }
    const backlogFirst = id;
    id += BACKLOG;
    const pos1 = String(await master.value('SELECT @@gtid_binlog_pos'));
    await master.exec('FLUSH BINARY LOGS');
    const logs = (await master.query<{ Log_name: string; File_size: number }>('SHOW BINARY LOGS'));
    const range = logs.slice(logs.findIndex((l) => l.Log_name === firstLog), -1);
    const logDir = String(await master.value('SELECT @@log_bin_basename')).replace(/\/[^/]*$/, '');
    const bytes = range.reduce((a, l) => a + Number(l.File_size), 0);
    console.log(`\nbacklog: ${BACKLOG} single-row transactions written in ${(writeMs / 1000).toFixed(1)} s by ${WRITERS} clients, ${range.length} binlog file(s), ${(bytes / 1048576).toFixed(0)} MB, ${pos0} .. ${pos1}`);

    // the limit: the shared binlog reader alone over the same range, in this process, no sink
    const node = sb.node('bj-master');
    const end = new SourcePosition('mariadb', pos1);
    let rowsRead = 0;
    let readStart = 0;
    const readMs = await new Promise<number>((resolve, reject) => {
      let done = false;
      const s = new BinlogStream({
        endpoint: { label: 'bj-master', host: node.host, port: node.port, user: 'ezctl', password: sb.adminPassword, passwordSource: 'bench' },
        flavor: 'mariadb',
        from: pos0,
        serverId: 1_999_000_001,
        decodeTable: (d, t) => d === 'ezbench' && t === 'feed',
        onTx: (tx) => {
          rowsRead += tx.changes.length;
          if (!done && rowsRead >= BACKLOG && end.covers(tx.gtid)) {
            done = true;
            const ms = Date.now() - readStart;
            void s.stop().then(() => resolve(ms));
          }
        },
        onError: reject,
      });
      readStart = Date.now();
      s.start().catch(reject);
    });

    // mariadb-binlog decoding the same files (rows decoded to pseudo-SQL, to /dev/null)
    let decodeMs: number | undefined;
    const tool = ['mariadb-binlog', 'mysqlbinlog'].find((t) => spawnSync(t, ['--version'], { stdio: 'ignore' }).status === 0);
    if (tool) decodeMs = timeCommand(tool, ['--base64-output=decode-rows', '--verbose', ...range.map((l) => join(logDir, l.Log_name))]);

    // the feed from before the backlog
    const batches0 = hook.batches;
    const ev0 = hook.events;
    const rss: number[] = [];
    const tput = await startFeed(sb, hook, 'bench-tput', ['--from-gtid', pos0]);
    feeds.push([tput, 'bench-tput']);
    const rssTimer = setInterval(() => rss.push(rssMb(tput.child.pid!)), 200);
    const lastId = backlogFirst + BACKLOG - 1;
    try {
      await eventually(async () => hook.arrived.has(lastId), 900_000, 'the backlog at the webhook');
    } finally {
      clearInterval(rssTimer);
    }
    let missing = 0;
    for (let k = backlogFirst; k <= lastId; k++) if (!hook.arrived.has(k)) missing++;
    const feedMs = hook.lastAt - tput.startedAt;
    const feedEvents = hook.events - ev0;
    const batches = hook.batches - batches0;
    await stopFeed(sb, tput, 'bench-tput');
    const rssMax = Math.max(...rss.filter((x) => !Number.isNaN(x)));

    const w2 = [50, 9, 10, 11];
    console.log(`\nthroughput over the backlog (${BACKLOG} rows; the feed also sends a commit marker per transaction):`);
    console.log(row(['reader', 'seconds', 'rows/s', 'events/s'], w2));
    console.log(row(['binlog/ reader alone, no sink (the limit)', readMs / 1000, BACKLOG / (readMs / 1000), '-'], w2));
    console.log(row(['drc feed -> webhook (from start-up)', feedMs / 1000, BACKLOG / (feedMs / 1000), feedEvents / (feedMs / 1000)], w2));
    if (decodeMs !== undefined) console.log(row([`${tool} --verbose (decode rows, 1 process)`, decodeMs / 1000, BACKLOG / (decodeMs / 1000), '-'], w2));
    else console.log('mariadb-binlog / mysqlbinlog not installed: not measured');
    console.log('Maxwell: not installed here, and no published events/s of it for comparable hardware: the binlog read rate is the limit compared against');
    console.log(`webhook batches for the backlog: ${batches} (${(feedEvents / batches).toFixed(0)} events each); rows missing: ${missing}`);
    console.log(`feed RSS during the backlog: max ${rssMax.toFixed(0)} MB (${rss.length} samples every 200 ms)`);
    results.throughput = { backlog: BACKLOG, readerRowsS: BACKLOG / (readMs / 1000), feedRowsS: BACKLOG / (feedMs / 1000), feedEventsS: feedEvents / (feedMs / 1000), decodeRowsS: decodeMs ? BACKLOG / (decodeMs / 1000) : null, batches, missing, rssMaxMb: rssMax };
    verdicts.push(`feed over the backlog: ${(BACKLOG / (feedMs / 1000)).toFixed(0)} rows/s = ${((readMs / feedMs) * 100).toFixed(0)} % of the binlog reader alone (the limit); ${missing === 0 ? 'every row delivered' : `${missing} rows MISSING`}`);
    await master.close();

    console.log('');
    for (const v of verdicts) console.log(v);
    if (process.env.BENCH_OUT) writeFileSync(process.env.BENCH_OUT, JSON.stringify(results, null, 2));
  } finally {
    for (const [f, name] of feeds) await stopFeed(sb, f, name).catch(() => f.child.kill('SIGTERM'));
    await new Promise<void>((r) => hook.server.close(() => r()));
    await sb.down();
    console.log(`load average at end: ${load()} (${((Date.now() - t00) / 1000).toFixed(0)} s)`);
  }
}

await main();
