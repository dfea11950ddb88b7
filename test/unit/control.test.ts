// Typed control commands (src/core/control/commands.ts): the check of a request against a job
// kind's declaration, the dispatch to the handler object, and a typed round trip over a real
// unix socket (no server needed), including the error for a socket nobody answers on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { accepted, checkRequest, command, dispatch, jobKind, sendJob, serveJob, type Handlers } from '../../src/core/control/commands.js';
import { EzError, ExitCode } from '../../src/core/exit.js';
import { oscJob } from '../../src/core/osc/engine.js';
import { drcJob } from '../../src/core/drc/client.js';
import { checkJob } from '../../src/core/dcp/control.js';

const kind = jobKind('test job', {
  status: command<{ n: number }>()('how far'),
  set: command<{ n: number }>()('change a setting', { key: { type: 'string', oneOf: ['chunk-time', 'threads'] }, value: { type: 'string' } }),
  pause: command<{ paused: boolean }>()('pause', { direction: { type: 'string', optional: true } }),
  grow: command<{ n: number }>()('add', { by: { type: 'number', integer: true } }),
});

const handlers = (): Handlers<typeof kind.commands> & { calls: string[] } => {
  const calls: string[] = [];
  let n = 0;
  return {
    calls,
    status: () => ({ n }),
    set: ({ key, value }) => {
      calls.push(`set ${key}=${value}`);
      return { n };
    },
    pause: ({ direction }) => {
      calls.push(`pause ${direction ?? 'all'}`);
      return { paused: true };
    },
    grow: async ({ by }) => {
      n += by;
      return { n };
    },
  };
};

test('a request is checked against the declaration: command, required and optional arguments, types, words', () => {
  assert.deepEqual(checkRequest(kind, { cmd: 'status' }), {});
  assert.deepEqual(checkRequest(kind, { cmd: 'pause', args: {} }), {});
  assert.deepEqual(checkRequest(kind, { cmd: 'pause', args: { direction: 'bj->sh' } }), { direction: 'bj->sh' });
  assert.deepEqual(checkRequest(kind, { cmd: 'set', args: { key: 'threads', value: '4' } }), { key: 'threads', value: '4' });
  const all = 'it accepts: status, set key=<chunk-time|threads> value=<string>, pause [direction=<string>], grow by=<number>';
  const bad: Array<[unknown, string]> = [
    [{ cmd: 'explode' }, 'test job: unknown command "explode"'],
    [{ cmd: 'toString' }, 'test job: unknown command "toString"'],
    [{}, 'test job: unknown command undefined'],
    [{ cmd: 'set', args: { key: 'chunk-time' } }, 'test job: set needs value'],
    [{ cmd: 'set', args: { key: 'speed', value: '1' } }, 'test job: set: key "speed" is not one of chunk-time, threads'],
    [{ cmd: 'set', args: { key: 'threads', value: 4 } }, 'test job: set: value 4 is not a string'],
    [{ cmd: 'status', args: { verbose: true } }, 'test job: status takes no argument "verbose"'],
    [{ cmd: 'grow', args: { by: 1.5 } }, 'test job: grow: by 1.5 is not a whole number'],
    [{ cmd: 'grow', args: { by: '2' } }, 'test job: grow: by "2" is not a whole number'],
    [{ cmd: 'pause', args: ['x'] }, 'test job: pause: its arguments are not an object'],
  ];
  for (const [req, msg] of bad) {
    assert.throws(() => checkRequest(kind, req as never), (e: Error) => e.message === `${msg}; ${all}`, JSON.stringify(req));
  }
});

test('dispatch calls the one method of the command with its checked arguments; ping answers without a method', async () => {
  const h = handlers();
  assert.equal(await dispatch(kind, h, { cmd: 'ping' }), 'pong');
  assert.deepEqual(await dispatch(kind, h, { cmd: 'grow', args: { by: 3 } }), { n: 3 });
  assert.deepEqual(await dispatch(kind, h, { cmd: 'status' }), { n: 3 });
  await dispatch(kind, h, { cmd: 'pause' });
  await dispatch(kind, h, { cmd: 'set', args: { key: 'chunk-time', value: '1s' } });
  assert.deepEqual(h.calls, ['pause all', 'set chunk-time=1s']);
  await assert.rejects(dispatch(kind, h, { cmd: 'set', args: { key: 'nope', value: '1' } }), /key "nope" is not one of chunk-time, threads/);
  assert.deepEqual(h.calls, ['pause all', 'set chunk-time=1s'], 'a bad request reaches no handler');
});

test('a typed round trip over the socket (mode 0600); a bad argument is bad input before anything is sent; a dead socket names the job and the fix', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ezctl-control-'));
  const path = join(dir, 'job.sock');
  const h = handlers();
  const server = await serveJob(path, kind, h);
  try {
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const to = { kind, path, job: 'test job of cluster demo', fix: 'start one with `ezctl test`' };
    const grown: { n: number } = await sendJob(to, 'grow', { by: 2 });
    assert.deepEqual(grown, { n: 2 });
    assert.deepEqual(await sendJob(to, 'status'), { n: 2 });
    assert.deepEqual(await sendJob(to, 'pause', { direction: 'sh->bj' }), { paused: true });
    await assert.rejects(sendJob(to, 'set', { key: 'bad' as 'threads', value: '1' }), (e: unknown) => e instanceof EzError && e.exitCode === ExitCode.badInput && /set: key "bad" is not one of/.test(e.message));
    assert.deepEqual(h.calls, ['pause sh->bj']);
    // the handler's own refusal comes back as the job's message
    const failing = await serveJob(join(dir, 'f.sock'), kind, { ...handlers(), status: () => { throw new Error('not now'); } });
    try {
      await assert.rejects(sendJob({ ...to, path: join(dir, 'f.sock') }, 'status'), /^Error: not now$/);
    } finally {
      failing.close();
    }
  } finally {
    await new Promise((r) => server.close(r));
  }
  await assert.rejects(
    sendJob({ kind, path, job: 'test job of cluster demo', fix: 'start one with `ezctl test`' }, 'status'),
    (e: unknown) => e instanceof EzError && e.exitCode === ExitCode.runtime && /^no test job of cluster demo answers on this host \(no control socket at /.test(e.message) && e.hint === 'start one with `ezctl test`',
  );
  rmSync(dir, { recursive: true, force: true });
});

test('the declared kinds: what osc, DRC and check full answer', () => {
  assert.equal(accepted(oscJob), 'status, pause, resume, cut-over, set key=<chunk-time> value=<string>, abort');
  assert.equal(accepted(drcJob), 'status, pause [direction=<string>], resume [direction=<string>], stop, repoint zone=<string>, checkpoint direction=<string> position=<string> source=<string>');
  assert.equal(accepted(checkJob), 'status, pause, resume, stop');
});
