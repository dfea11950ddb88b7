// Distance and partitions between a sandbox's zones (`ezctl sandbox net`, and drills): the
// library over the sandbox's relay process (wan/). The relay keeps the state, so a partition
// outlives the process that made it; `heal` on a sandbox without relays does nothing.
import { resolve } from 'node:path';
import { badInput, runtimeError } from '../exit.js';
import { sendControl } from '../control/socket.js';
import { readState } from './up.js';
import { readRelayConfig, relayPid, relaySocket, writeRelayConfig } from './wan/index.js';

export interface NetLink { from: string; to: string; latencyMs: number; jitterMs: number; cut: boolean; connections: number }

function sandboxDir(dir: string, zones: Array<string | undefined> = []): string {
  const d = resolve(dir);
  const st = readState(d);
  if (!st) throw badInput(`no sandbox in ${d}`, { hint: 'give --dir of a sandbox made by `ezctl sandbox up`' });
  for (const z of zones) if (z !== undefined && !st.zones.includes(z)) throw badInput(`the sandbox in ${d} has no zone ${JSON.stringify(z)}`, { hint: `zones: ${st.zones.join(', ')}` });
  const given = zones.filter((z) => z !== undefined);
  if (given.length === 2 && given[0] === given[1]) throw badInput(`a link is between two zones (got ${given[0]} twice)`);
  return st.dir;
}

async function ask(dir: string, cmd: string, args: Record<string, unknown> = {}): Promise<NetLink[]> {
  if (relayPid(dir) === undefined) {
    throw runtimeError(`the WAN relay of the sandbox in ${dir} is not running`, { hint: `\`ezctl sandbox up --dir ${dir}\` starts it again (with the links as they were last set)` });
  }
  try {
    return (await sendControl(relaySocket(dir), { cmd, args })) as NetLink[];
  } catch (e) {
    throw runtimeError(`the WAN relay of ${dir} refused ${cmd}: ${(e as Error).message}`);
  }
}

function needRelay(dir: string, what: string): void {
  if (!readRelayConfig(dir)) throw badInput(`the sandbox in ${dir} has no WAN relay: nothing to ${what}`, { hint: '`ezctl sandbox down`, then `ezctl sandbox up --wan-latency 30ms` (0ms gives relays without delay)' });
}

/** Every ordered zone pair's link: latency, jitter, cut, open connections ([] when the sandbox has no relays). */
export async function netStatus(dir: string): Promise<NetLink[]> {
  const d = sandboxDir(dir);
  if (!readRelayConfig(d)) return [];
  return ask(d, 'status');
}

/** Cut both directions of the zone pair a,b at once. */
export async function partition(dir: string, a: string, b: string): Promise<void> {
  const d = sandboxDir(dir, [a, b]);
  needRelay(d, 'cut');
  await ask(d, 'partition', { a, b });
}

/** Heal zone pair a,b (both directions), or with no zones every link. A sandbox without relays: nothing to do. */
export async function heal(dir: string, a?: string, b?: string): Promise<void> {
  if ((a === undefined) !== (b === undefined)) throw badInput('heal takes two zones, or none (every link)');
  const d = sandboxDir(dir, [a, b]);
  const config = readRelayConfig(d);
  if (!config) return;
  if (relayPid(d) === undefined) {
    // the relay is down: heal its saved state, so a restart does not bring the cut back
    for (const [k, s] of Object.entries(config.links)) {
      const [from, to] = k.split('>');
      if (a === undefined || (from === a && to === b) || (from === b && to === a)) s.cut = false;
    }
    writeRelayConfig(d, config);
    return;
  }
  await ask(d, 'heal', a === undefined ? {} : { a, b });
}

/** Set the round trip (and jitter) of every link, or of one zone pair (both directions). */
export async function setLatency(dir: string, o: { latencyMs: number; jitterMs?: number; link?: [string, string] }): Promise<void> {
  const d = sandboxDir(dir, o.link ?? []);
  needRelay(d, 'delay');
  if (!(o.latencyMs >= 0) || !((o.jitterMs ?? 0) >= 0)) throw badInput('latency and jitter are 0 ms or more');
  const args: Record<string, unknown> = { latencyMs: o.latencyMs };
  if (o.jitterMs !== undefined) args.jitterMs = o.jitterMs;
  if (o.link) args.link = o.link;
  await ask(d, 'latency', args);
}
