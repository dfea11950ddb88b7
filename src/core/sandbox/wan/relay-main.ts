// The relay process of a sandbox (`sandbox up --wan-latency`): started detached by the sandbox,
// its pid in <dir>/wan/relay.pid, stopped by `sandbox down`, controlled over <dir>/wan/relay.sock
// (mode 0600: status, partition, heal, latency). Every change of a link is written back to
// relay.json, so a restarted relay (`sandbox up` again) keeps the cuts and latencies it had.
// Usage: node relay-main.js <dir>/wan
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { serveControl } from '../../control/socket.js';
import { ExitCode } from '../../exit.js';
import { Relay, type RelayConfig } from './relay.js';

const dir = process.argv[2];
if (!dir) {
  process.stderr.write('usage: relay-main.js <dir>/wan\n');
  process.exit(ExitCode.badInput);
}
const configPath = join(dir, 'relay.json');
const config = JSON.parse(readFileSync(configPath, 'utf8')) as RelayConfig;
const save = (c: RelayConfig) => {
  writeFileSync(configPath + '.tmp', JSON.stringify(c, null, 2) + '\n', { mode: 0o600 });
  renameSync(configPath + '.tmp', configPath);
};
const relay = new Relay(config, save);
const str = (v: unknown, what: string): string => {
  if (typeof v !== 'string' || !v) throw new Error(`${what} must be a zone name`);
  return v;
};
const num = (v: unknown, what: string): number => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new Error(`${what} must be a number of ms, 0 or more`);
  return v;
};

try {
  await relay.start();
  const server = await serveControl(join(dir, 'relay.sock'), (req) => {
    const a = req.args ?? {};
    switch (req.cmd) {
      case 'ping':
        return 'pong';
      case 'status':
        return relay.status();
      case 'partition':
        relay.partition(str(a.a, 'a'), str(a.b, 'b'));
        return relay.status();
      case 'heal':
        relay.heal(a.a === undefined ? undefined : str(a.a, 'a'), a.b === undefined ? undefined : str(a.b, 'b'));
        return relay.status();
      case 'latency': {
        const o: { latencyMs: number; jitterMs?: number; link?: [string, string] } = { latencyMs: num(a.latencyMs, 'latencyMs') };
        if (a.jitterMs !== undefined) o.jitterMs = num(a.jitterMs, 'jitterMs');
        if (a.link !== undefined) {
          if (!Array.isArray(a.link) || a.link.length !== 2) throw new Error('link must be a pair of zones');
          o.link = [str(a.link[0], 'link[0]'), str(a.link[1], 'link[1]')];
        }
        relay.setLatency(o);
        return relay.status();
      }
      default:
        throw new Error(`unknown command ${JSON.stringify(req.cmd)} (status, partition, heal, latency)`);
    }
  });
  // the pid file last: whoever waits for it can use the ports and the socket at once
  writeFileSync(join(dir, 'relay.pid'), `${process.pid}\n`, { mode: 0o600 });
  process.stderr.write(`relay ${process.pid}: ${config.listeners.length} listeners\n`);
  const stop = () => {
    server.close();
    void relay.stop().finally(() => process.exit(ExitCode.ok));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} catch (e) {
  process.stderr.write(`relay: ${(e as Error).message}\n`);
  process.exit(ExitCode.runtime);
}
