// The throttle's pure parts: spec parsers (windows, load limits, durations), the shared flags,
// and the Throttler's logic driven by in-process signals (no servers needed for that logic).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command, CommanderError } from 'commander';
import { EzError } from '../../src/core/exit.js';
import {
  Throttler,
  describeChange,
  parseWindows,
  inWindow,
  windowSignal,
  parseLoadSpec,
  parseDuration,
  formatDuration,
  addThrottleOptions,
  throttleOptionsFrom,
  flagFileSignal,
  type ThrottleChange,
  type ThrottleSignal,
  type Verdict,
} from '../../src/core/throttle/index.js';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** f throws a bad-input EzError (exit 2) whose message matches. */
function badInputThrown(f: () => unknown, message: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof EzError, `expected EzError, got ${String(e)}`);
    assert.equal(e.exitCode, 2);
    assert.match(e.message, message);
    return true;
  });
}

/** A signal whose verdict the test sets; counts its checks. */
class Switch implements ThrottleSignal {
  verdict: Verdict = { throttle: false };
  error: Error | null = null;
  hang = false;
  calls = 0;
  constructor(readonly name = 'switch') {}
  async check(): Promise<Verdict> {
    this.calls++;
    if (this.hang) return new Promise<Verdict>(() => {});
    if (this.error) throw this.error;
    return this.verdict;
  }
  on(reason: string): void {
    this.verdict = { throttle: true, reason };
  }
  off(): void {
    this.verdict = { throttle: false };
  }
}

// ---------------------------------------------------------------------------------------------
// pause windows

test('parseWindows: windows in order, normalized, with a start after the end crossing midnight', () => {
  assert.deepEqual(parseWindows('10:30-13:30'), [{ startMin: 630, endMin: 810, text: '10:30-13:30' }]);
  assert.deepEqual(
    parseWindows(' 9:05 - 9:06 , 23:00-01:00,22:00-00:00'),
    [
      { startMin: 545, endMin: 546, text: '09:05-09:06' },
      { startMin: 1380, endMin: 60, text: '23:00-01:00' },
      { startMin: 1320, endMin: 0, text: '22:00-00:00' },
    ],
  );
  assert.deepEqual(parseWindows('00:00-23:59')[0], { startMin: 0, endMin: 1439, text: '00:00-23:59' });
});

test('parseWindows: refuses empty lists, bad shapes, impossible times and empty windows (exit 2)', () => {
  badInputThrown(() => parseWindows(''), /empty pause window list/);
  badInputThrown(() => parseWindows('  '), /empty pause window list/);
  badInputThrown(() => parseWindows('10:00-11:00,'), /"" in "10:00-11:00," is not a window hh:mm-hh:mm/);
  badInputThrown(() => parseWindows('10-11'), /"10-11" .* is not a window hh:mm-hh:mm/);
  badInputThrown(() => parseWindows('10:00'), /is not a window/);
  badInputThrown(() => parseWindows('10:0-11:00'), /is not a window/);
  badInputThrown(() => parseWindows('abc'), /is not a window/);
  badInputThrown(() => parseWindows('25:00-01:00'), /25:00 in "25:00-01:00" is not a time of day/);
  badInputThrown(() => parseWindows('10:00-24:00'), /24:00 .* is not a time of day/);
  badInputThrown(() => parseWindows('10:60-11:00'), /10:60 .* is not a time of day/);
  badInputThrown(() => parseWindows('10:30-10:30'), /starts when it ends: it is empty/);
});

test('inWindow: start included, end excluded, midnight crossing', () => {
  const [day, night] = parseWindows('10:30-13:30,23:00-01:00') as [ReturnType<typeof parseWindows>[0], ReturnType<typeof parseWindows>[0]];
  const at = (h: number, m: number) => h * 60 + m;
  assert.equal(inWindow(day, at(10, 29)), false);
  assert.equal(inWindow(day, at(10, 30)), true);
  assert.equal(inWindow(day, at(13, 29)), true);
  assert.equal(inWindow(day, at(13, 30)), false);
  assert.equal(inWindow(night, at(22, 59)), false);
  assert.equal(inWindow(night, at(23, 0)), true);
  assert.equal(inWindow(night, at(23, 59)), true);
  assert.equal(inWindow(night, at(0, 0)), true);
  assert.equal(inWindow(night, at(0, 59)), true);
  assert.equal(inWindow(night, at(1, 0)), false);
  assert.equal(inWindow(night, at(12, 0)), false);
});

test('windowSignal: throttles inside a window in local time, naming it', async () => {
  let now = new Date(2024, 0, 15, 12, 0, 0);
  const s = windowSignal('10:30-13:30,23:00-01:00', () => now);
  assert.deepEqual(await s.check(), { throttle: true, reason: 'pause window 10:30-13:30' });
  now = new Date(2024, 0, 15, 13, 29, 59);
  assert.equal((await s.check()).throttle, true);
  now = new Date(2024, 0, 15, 13, 30, 0);
  assert.deepEqual(await s.check(), { throttle: false });
  now = new Date(2024, 0, 16, 0, 30, 0);
  assert.deepEqual(await s.check(), { throttle: true, reason: 'pause window 23:00-01:00' });
  now = new Date(2024, 0, 16, 1, 0, 0);
  assert.equal((await s.check()).throttle, false);
  badInputThrown(() => windowSignal('13:30-13:30'), /empty/);
});

// ---------------------------------------------------------------------------------------------
// load limits, durations

test('parseLoadSpec: status=number pairs', () => {
  assert.deepEqual(parseLoadSpec('Threads_running=25'), { Threads_running: 25 });
  assert.deepEqual(parseLoadSpec(' Threads_running = 25 , Threads_connected=500 '), { Threads_running: 25, Threads_connected: 500 });
  assert.deepEqual(parseLoadSpec('Threads_running=0'), { Threads_running: 0 });
  assert.deepEqual(parseLoadSpec('Innodb_row_lock_current_waits=2.5'), { Innodb_row_lock_current_waits: 2.5 });
});

test('parseLoadSpec: refuses bad shapes, names and numbers (exit 2)', () => {
  badInputThrown(() => parseLoadSpec(''), /empty load limit/);
  badInputThrown(() => parseLoadSpec('Threads_running'), /"Threads_running" in "Threads_running" is not status=number/);
  badInputThrown(() => parseLoadSpec('Threads_running:25'), /is not status=number/);
  badInputThrown(() => parseLoadSpec('Threads_running=25,'), /"" in "Threads_running=25," is not status=number/);
  badInputThrown(() => parseLoadSpec('=25'), /"" is not a status variable name/);
  badInputThrown(() => parseLoadSpec('Threads-running=25'), /"Threads-running" is not a status variable name/);
  badInputThrown(() => parseLoadSpec("x';DROP=1"), /is not a status variable name/);
  badInputThrown(() => parseLoadSpec('Threads_running=abc'), /limit "abc" for Threads_running is not a number/);
  badInputThrown(() => parseLoadSpec('Threads_running=-1'), /limit "-1" .* is not a number/);
  badInputThrown(() => parseLoadSpec('Threads_running='), /limit "" .* is not a number/);
  badInputThrown(() => parseLoadSpec('Threads_running=1,threads_running=2'), /threads_running is limited twice/);
});

test('parseDuration and formatDuration', () => {
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('1.5s'), 1500);
  assert.equal(parseDuration('2'), 2000);
  assert.equal(parseDuration('2m'), 120_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  badInputThrown(() => parseDuration('fast'), /"fast" is not a duration/);
  badInputThrown(() => parseDuration('-1s'), /is not a duration/);
  assert.equal(formatDuration(850), '850ms');
  assert.equal(formatDuration(3210), '3.2s');
  assert.equal(formatDuration(3000), '3s');
  assert.equal(formatDuration(125_000), '2m5s');
  assert.equal(formatDuration(7_260_000), '2h1m');
});

// ---------------------------------------------------------------------------------------------
// shared flags

function throttleCommand(): Command {
  const cmd = new Command('job').exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });
  return addThrottleOptions(cmd).action(() => {});
}

test('addThrottleOptions: flags parse into ThrottleOptions; --max-lag covers replicas and DRC', () => {
  const cmd = throttleCommand();
  cmd.parse(['--max-lag', '1.5s', '--max-load', 'Threads_running=25', '--critical-load', 'Threads_running=200', '--throttle-flag-file', '/tmp/pause-me', '--pause-window', '23:00-01:00'], { from: 'user' });
  assert.deepEqual(throttleOptionsFrom(cmd.opts()), {
    maxLagMs: 1500,
    maxDrcLagMs: 1500,
    maxLoad: 'Threads_running=25',
    criticalLoad: 'Threads_running=200',
    throttleFlagFile: '/tmp/pause-me',
    pauseWindows: '23:00-01:00',
  });
  const none = throttleCommand();
  none.parse([], { from: 'user' });
  assert.deepEqual(throttleOptionsFrom(none.opts()), {});
});

test('addThrottleOptions: bad values are commander invalid-argument errors (exit 2) naming the problem', () => {
  for (const [args, message] of [
    [['--max-lag', 'soon'], /"soon" is not a duration/],
    [['--max-load', 'Threads_running'], /is not status=number/],
    [['--critical-load', 'Threads_running=x'], /is not a number/],
    [['--pause-window', '25:00-01:00'], /25:00 .* is not a time of day/],
  ] as const) {
    assert.throws(
      () => throttleCommand().parse([...args], { from: 'user' }),
      (e: unknown) => {
        assert.ok(e instanceof CommanderError, String(e));
        assert.equal(e.code, 'commander.invalidArgument');
        assert.match(e.message, message);
        return true;
      },
    );
  }
});

// ---------------------------------------------------------------------------------------------
// Throttler

test('gate resolves at once when nothing throttles, and trusts a verdict younger than the interval', async () => {
  const s = new Switch();
  const t = new Throttler([s], { intervalMs: 100 });
  const t0 = Date.now();
  await t.gate();
  // a gate that waited would have looped and checked again
  assert.equal(s.calls, 1, 'the first gate checks once (no verdict yet) and goes on');
  assert.ok(Date.now() - t0 < 500, 'no waiting when clear');
  await t.gate();
  await t.gate();
  assert.equal(s.calls, 1, 'a fresh verdict is reused');
  await sleep(120);
  await t.gate();
  assert.equal(s.calls, 2, 'an old verdict is checked again, by the gate itself');
  assert.deepEqual(t.status(), { throttled: false, reason: null, since: null, checkedAt: t.status().checkedAt, throttledMs: 0, critical: false, paused: false, notes: [] });
  assert.ok(t.status().checkedAt! >= t0);
});

test('gate checks afresh: a throttle that began after the last verdict stops the next gate', async () => {
  const s = new Switch();
  const t = new Throttler([s], { intervalMs: 30 });
  await t.gate();
  s.on('replica lag bj-replica1 3s > 1s');
  await sleep(40);
  let passed = false;
  const g = t.gate().then(() => (passed = true));
  await sleep(60);
  assert.equal(passed, false, 'waits while throttled');
  assert.equal(t.status().reason, 'replica lag bj-replica1 3s > 1s');
  s.off();
  await g;
});

test('gate waits while throttled and resolves on release (background polling)', async () => {
  const s = new Switch();
  s.on('Threads_running=40 > 25 at bj-master');
  const t = new Throttler([s], { intervalMs: 20 });
  t.start();
  const t0 = Date.now();
  setTimeout(() => s.off(), 150);
  await t.gate();
  const waited = Date.now() - t0;
  assert.ok(waited >= 140, `waited ${waited} ms`);
  assert.ok(waited < 2000, `released promptly (${waited} ms)`);
  const st = t.status();
  assert.equal(st.throttled, false);
  assert.equal(st.since, null);
  assert.ok(st.throttledMs >= 100 && st.throttledMs < 2000, `throttledMs ${st.throttledMs}`);
  await t.stop();
});

test('a critical signal makes waiting and later gates reject with a refusal (exit 4), and it sticks', async () => {
  const s = new Switch('critical-load');
  const t = new Throttler([s], { intervalMs: 20 });
  t.start();
  s.on('flag file /tmp/x exists');
  const waiting = t.gate();
  await sleep(50);
  s.verdict = { throttle: true, critical: true, reason: 'critical load Threads_running=300 > 200 at bj-master' };
  await assert.rejects(waiting, (e: unknown) => {
    assert.ok(e instanceof EzError);
    assert.equal(e.exitCode, 4);
    assert.equal(e.message, 'stopped: critical load Threads_running=300 > 200 at bj-master');
    assert.match(e.hint ?? '', /--critical-load/);
    return true;
  });
  s.off();
  await sleep(50);
  await assert.rejects(t.gate(), /stopped: critical load/);
  const st = t.status();
  assert.equal(st.critical, true);
  assert.equal(st.throttled, true);
  await t.stop();
});

test('critical only counts with throttle: a non-throttling verdict is a note, not a stop', async () => {
  const s = new Switch();
  s.verdict = { throttle: false, critical: true, reason: 'DRC lag unknown (no heartbeat from bj at sh)' };
  const t = new Throttler([s], { intervalMs: 50 });
  await t.gate();
  assert.deepEqual(t.status().notes, ['DRC lag unknown (no heartbeat from bj at sh)']);
  assert.equal(t.status().throttled, false);
});

test('manual pause holds gates until resume, which wakes them at once', async () => {
  const s = new Switch();
  const t = new Throttler([s], { intervalMs: 10_000 });
  await t.gate();
  t.pause();
  assert.equal(t.status().reason, 'paused by operator');
  assert.equal(t.status().paused, true);
  let passed = false;
  const g = t.gate().then(() => (passed = true));
  await sleep(50);
  assert.equal(passed, false);
  const t0 = Date.now();
  t.resume();
  await g;
  assert.ok(Date.now() - t0 < 1000, 'resume does not wait for the next poll (10 s away)');
  assert.equal(t.status().paused, false);
  t.pause('cut-over rehearsal');
  s.on('pause window 10:30-13:30');
  await t.refresh();
  assert.equal(t.status().reason, 'cut-over rehearsal; pause window 10:30-13:30');
  t.resume();
  assert.equal(t.status().reason, 'pause window 10:30-13:30', 'resume leaves the signals in charge');
});

test('status: reason joins every throttling signal; since and throttledMs add up over stretches', async () => {
  const a = new Switch('a');
  const b = new Switch('b');
  const t = new Throttler([a, b], { intervalMs: 10 });
  a.on('replica lag bj-replica1 3s > 1s');
  b.on('flag file /tmp/x exists');
  const t0 = Date.now();
  await t.refresh();
  let st = t.status();
  assert.equal(st.throttled, true);
  assert.equal(st.reason, 'replica lag bj-replica1 3s > 1s; flag file /tmp/x exists');
  assert.ok(st.since! >= t0 && st.since! <= Date.now());
  await sleep(60);
  a.off();
  b.off();
  await t.refresh();
  st = t.status();
  const first = st.throttledMs;
  assert.ok(first >= 55 && first < 2000, `first stretch ${first}`);
  assert.equal(st.since, null);
  await sleep(30);
  assert.equal(t.status().throttledMs, first, 'no time counted while clear');
  b.on('flag file /tmp/x exists');
  await t.refresh();
  await sleep(40);
  const during = t.status().throttledMs;
  assert.ok(during >= first + 35, `the current stretch counts too (${during})`);
});

test('onChange fires once per transition, not once per poll, with the stretch length on release', async () => {
  const s = new Switch();
  const t = new Throttler([s], { intervalMs: 10 });
  const changes: ThrottleChange[] = [];
  const unsubscribe = t.onChange((c) => changes.push(c));
  t.start();
  await sleep(40);
  s.on('replica lag bj-replica1 2s > 1s');
  await sleep(60);
  s.on('replica lag bj-replica1 3s > 1s');
  await sleep(60);
  s.off();
  await sleep(60);
  assert.equal(changes.length, 2, JSON.stringify(changes));
  assert.equal(changes[0]!.throttled, true);
  assert.equal(changes[0]!.reason, 'replica lag bj-replica1 2s > 1s');
  assert.equal(describeChange(changes[0]!), 'throttled: replica lag bj-replica1 2s > 1s');
  assert.equal(changes[1]!.throttled, false);
  assert.ok(changes[1]!.durationMs! >= 50, `stretch ${changes[1]!.durationMs}`);
  assert.match(describeChange(changes[1]!), /^throttle released after \d+ms$/);
  assert.equal(describeChange({ throttled: false, reason: null, critical: false, at: 0, durationMs: 3100 }), 'throttle released after 3.1s');
  unsubscribe();
  t.pause();
  t.resume();
  assert.equal(changes.length, 2, 'unsubscribed');
  await t.stop();
});

test('a signal that throws throttles, with the error as the reason, and recovers', async () => {
  const s = new Switch('replica-lag');
  s.error = new Error('cannot connect to bj-replica1: connection refused');
  const t = new Throttler([s], { intervalMs: 20 });
  let passed = false;
  const g = t.gate().then(() => (passed = true));
  await sleep(60);
  assert.equal(passed, false, 'an unreadable signal is no green light');
  assert.equal(t.status().reason, 'replica-lag: cannot connect to bj-replica1: connection refused');
  s.error = null;
  await g;
  assert.equal(t.status().throttled, false);
});

test('a signal that hangs throttles after the check timeout and is not asked again while pending', async () => {
  const s = new Switch('drc-lag');
  s.hang = true;
  const t = new Throttler([s], { intervalMs: 10, checkTimeoutMs: 40 });
  await t.refresh();
  assert.equal(t.status().reason, 'drc-lag: no answer within 40ms');
  await t.refresh();
  await t.refresh();
  assert.equal(s.calls, 1, 'one check in flight per signal');
});

test('gate rejects with the abort reason when aborted while throttled', async () => {
  const s = new Switch();
  s.on('flag file /tmp/x exists');
  const t = new Throttler([s], { intervalMs: 20 });
  const ac = new AbortController();
  const g = t.gate(ac.signal);
  setTimeout(() => ac.abort(new Error('interrupted')), 50);
  await assert.rejects(g, /interrupted/);
  await assert.rejects(t.gate(ac.signal), /interrupted/, 'an aborted signal rejects at once');
});

test('flagFileSignal: throttles while the file exists', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ezctl-flag-'));
  const path = join(dir, 'pause');
  try {
    const s = flagFileSignal(path);
    assert.deepEqual(await s.check(), { throttle: false });
    writeFileSync(path, '');
    assert.deepEqual(await s.check(), { throttle: true, reason: `flag file ${path} exists` });
    rmSync(path);
    assert.deepEqual(await s.check(), { throttle: false });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
