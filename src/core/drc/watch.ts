// drc status --watch: a live ink view on a terminal; plain timestamped lines otherwise.
import type { Ctx } from '../context.js';
import { ExitCode } from '../exit.js';
import { isInteractive } from '../ui/log.js';
import { drcStatus } from './manage.js';
import { drcStatusLines } from './render.js';

export async function watchDrc(ctx: Ctx, o: { cluster?: string; interval: number }): Promise<ExitCode> {
  if (isInteractive(process.stdout) && !ctx.opts.json) {
    const { watchDrcInk } = await import('./watch-view.js');
    return watchDrcInk(ctx, o);
  }
  let stop = false;
  process.once('SIGINT', () => (stop = true));
  while (!stop) {
    const s = await drcStatus(ctx, o);
    if (ctx.opts.json) process.stdout.write(JSON.stringify({ at: new Date().toISOString(), ...s }) + '\n');
    else process.stdout.write(`${new Date().toISOString()} ${s.running ? '' : '(not running) '}${drcStatusLines(s).split('\n').join(`\n${new Date().toISOString()} `)}\n`);
    await new Promise((r) => setTimeout(r, o.interval));
  }
  return ExitCode.interrupted;
}
