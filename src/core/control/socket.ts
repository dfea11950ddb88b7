// The control socket of a running job: one JSON request per line, one JSON answer per line,
// over a unix socket only its owner can open (mode 0600). `status`, `pause`, `resume`, `stop`
// and each job's own commands travel through it.
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { chmodSync, existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';
import { tmpdir } from 'node:os';
import { runtimeError } from '../exit.js';

export interface ControlRequest { cmd: string; args?: Record<string, unknown> }
export type ControlHandler = (req: ControlRequest) => Promise<unknown> | unknown;

// sun_path holds 108 bytes; a longer path goes to a short one derived from it.
const MAX_SOCKET_PATH = 100;

export function socketPath(wanted: string): string {
  if (Buffer.byteLength(wanted) <= MAX_SOCKET_PATH) return wanted;
  const h = createHash('sha1').update(wanted).digest('hex').slice(0, 16);
  return join(tmpdir(), `ezctl-${process.getuid?.() ?? 'u'}-${h}.sock`);
}

export async function serveControl(path: string, handler: ControlHandler): Promise<Server> {
  const p = socketPath(path);
  mkdirSync(dirname(p), { recursive: true, mode: 0o700 });
  if (existsSync(p)) {
    if (await controlAlive(p)) throw runtimeError(`a job already answers on ${p}`, { hint: 'stop it first, or check `status`' });
    rmSync(p, { force: true }); // left behind by a job that died
  }
  const server = createServer((sock: Socket) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => {});
    sock.on('data', async (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let reply: unknown;
        try {
          const req = JSON.parse(line) as ControlRequest;
          reply = { ok: true, result: await handler(req) };
        } catch (e) {
          reply = { ok: false, error: (e as Error).message };
        }
        sock.write(JSON.stringify(reply, (_k, v) => (typeof v === 'bigint' ? v.toString() : v)) + '\n');
      }
    });
  });
  // The socket file is created by listen(): a tight umask makes it 0600 from its first instant.
  const old = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(p, () => resolve());
    });
  } finally {
    process.umask(old);
  }
  chmodSync(p, 0o600);
  server.on('close', () => rmSync(p, { force: true }));
  return server;
}

export async function controlAlive(path: string): Promise<boolean> {
  try {
    await sendControl(path, { cmd: 'ping' }, 2000);
    return true;
  } catch {
    return false;
  }
}

/** The code of an error the job itself answered (as opposed to a socket or connect failure). */
export const JOB_REFUSED = 'EZJOBREFUSED';
/** The code of a request the job accepted but did not answer within its bound (alive, busy or hung). */
export const NO_ANSWER = 'EZNOANSWER';

/** Send one request; resolves with the job's result, rejects with its error (code JOB_REFUSED) or a connect failure. */
export function sendControl(path: string, req: ControlRequest, timeoutMs = 10_000): Promise<unknown> {
  const p = socketPath(path);
  return new Promise((resolve, reject) => {
    if (!existsSync(p)) return reject(Object.assign(new Error(`no control socket at ${p}`), { code: 'ENOENT' }));
    if ((statSync(p).mode & 0o077) !== 0) return reject(new Error(`control socket ${p} is open to other users; refusing to use it`));
    const sock = createConnection(p);
    let buf = '';
    const timer = setTimeout(() => {
      sock.destroy();
      reject(Object.assign(new Error(`no answer on ${p} within ${timeoutMs / 1000} s`), { code: NO_ANSWER }));
    }, timeoutMs);
    sock.setEncoding('utf8');
    sock.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    sock.on('connect', () => sock.write(JSON.stringify(req) + '\n'));
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) return;
      clearTimeout(timer);
      sock.end();
      const reply = JSON.parse(buf.slice(0, nl)) as { ok: boolean; result?: unknown; error?: string };
      if (reply.ok) resolve(reply.result);
      else reject(Object.assign(new Error(reply.error ?? 'failed'), { code: JOB_REFUSED }));
    });
  });
}
