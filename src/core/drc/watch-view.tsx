// The live view of `drc status --watch` on a terminal (ink).
import { useEffect, useState } from 'react';
import { render, Box, Text, useApp, useInput } from 'ink';
import type { Ctx } from '../context.js';
import { ExitCode } from '../exit.js';
import { drcStatus } from './manage.js';
import type { DaemonStatus } from './client.js';

const fmt = (v: number | null) => (v === null ? '-' : v < 10_000 ? `${Math.round(v)} ms` : `${(v / 1000).toFixed(1)} s`);
const COLS = [14, 10, 9, 9, 8, 9, 10, 8];

function Row({ cells, bold }: { cells: string[]; bold?: boolean }) {
  return (
    <Box>
      {cells.map((c, i) => (
        <Box key={i} width={COLS[i] ?? 30}>
          <Text bold={bold ?? false} wrap="truncate">{c}</Text>
        </Box>
      ))}
    </Box>
  );
}

function View({ ctx, cluster, interval }: { ctx: Ctx; cluster?: string; interval: number }) {
  const { exit } = useApp();
  const [s, setS] = useState<DaemonStatus | undefined>();
  const [err, setErr] = useState<string | undefined>();
  useInput((input, key) => {
    if (input === 'q' || key.escape || (key.ctrl && input === 'c')) exit();
  });
  useEffect(() => {
    let alive = true;
    const tick = async () => {
      try {
        const st = await drcStatus(ctx, cluster === undefined ? {} : { cluster });
        if (alive) {
          setS(st);
          setErr(undefined);
        }
      } catch (e) {
        if (alive) setErr((e as Error).message);
      }
    };
    void tick();
    const t = setInterval(() => void tick(), interval);
    return () => {
      alive = false;
      clearInterval(t);
    };
  }, []);
  return (
    <Box flexDirection="column">
      <Text>
        DRC {s?.cluster ?? cluster ?? ''}: {s ? (s.running ? <Text color="green">running (pid {s.pid})</Text> : <Text color="red">not running</Text>) : 'connecting...'}  <Text dimColor>q to quit</Text>
      </Text>
      <Row bold cells={['direction', 'state', 'lag', 'p99 1m', 'tx/s', 'rows/s', 'conflicts', 'illegal']} />
      {s?.directions.map((d) => (
        <Box key={`${d.from}${d.to}`} flexDirection="column">
          <Row cells={[`${d.from} → ${d.to}`, d.state, fmt(d.lagMs), fmt(d.p99LagMs), d.txPerSec.toFixed(0), d.rowsPerSec.toFixed(0), String(d.conflicts), String(d.illegalWrites)]} />
          {d.lastError ? <Text color="yellow" wrap="truncate">  last error{d.lastErrorAt ? ` at ${d.lastErrorAt}` : ''}: {d.lastError}</Text> : null}
        </Box>
      ))}
      {err ? <Text color="red">{err}</Text> : null}
    </Box>
  );
}

export async function watchDrcInk(ctx: Ctx, o: { cluster?: string; interval: number }): Promise<ExitCode> {
  const app = render(<View ctx={ctx} {...(o.cluster === undefined ? {} : { cluster: o.cluster })} interval={o.interval} />, { exitOnCtrlC: false });
  await app.waitUntilExit();
  return ExitCode.ok;
}
