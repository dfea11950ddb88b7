// SIGINT/SIGTERM: run registered cleanups (newest first), then exit 130. Long jobs register a
// cleanup that stops them at a safe point; short commands just exit.
import { ExitCode } from './exit.js';

type Cleanup = () => Promise<void> | void;
const cleanups: Cleanup[] = [];
let installed = false;
let interrupted = false;

export function onInterrupt(fn: Cleanup): () => void {
  install();
  cleanups.push(fn);
  return () => {
    const i = cleanups.indexOf(fn);
    if (i >= 0) cleanups.splice(i, 1);
  };
}

export function wasInterrupted(): boolean {
  return interrupted;
}

export function install(): void {
  if (installed) return;
  installed = true;
  const handler = async (sig: NodeJS.Signals) => {
    if (interrupted) process.exit(ExitCode.interrupted); // second signal: leave now
    interrupted = true;
    process.stderr.write(`\nezctl: ${sig} received, stopping\n`);
    for (const fn of [...cleanups].reverse()) {
      try {
        await fn();
      } catch (e) {
        process.stderr.write(`ezctl: cleanup failed: ${(e as Error).message}\n`);
      }
    }
    process.exit(ExitCode.interrupted);
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}
