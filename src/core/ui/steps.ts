// A list of steps for a command that takes a while. On an interactive stderr (a TTY, not CI)
// listr2 draws them live on stderr; otherwise each finished step is one timestamped log line,
// so cron and CI logs stay plain and a piped --json stdout never gets drawing mixed in.
import type { Ctx } from '../context.js';
import { isInteractive } from './log.js';

export interface Step {
  title: string;
  /** may return a short detail shown after the title when done */
  run: () => Promise<string | void>;
}

export async function runSteps(ctx: Ctx, steps: Step[]): Promise<void> {
  if (isInteractive(ctx.log.stream) && !ctx.opts.quiet) {
    const { Listr, ListrLogger, ProcessOutput, DefaultRenderer } = await import('listr2');
    // listr2 picks its renderer by stdout; ours draws on stderr, so it must not fall back to
    // the stdout renderer when only stdout is piped (`ezctl --json ... | jq` on a terminal).
    class StderrRenderer extends DefaultRenderer {
      static override nonTTY = true;
    }
    const logger = new ListrLogger({ processOutput: new ProcessOutput(ctx.log.stream, ctx.log.stream) });
    const list = new Listr(
      steps.map((s) => ({
        title: s.title,
        task: async (_: unknown, task: { title: string }) => {
          const detail = await s.run();
          if (detail) task.title = `${s.title}: ${detail}`;
        },
      })),
      {
        concurrent: false,
        exitOnError: true,
        registerSignalListeners: false,
        renderer: StderrRenderer,
        rendererOptions: { logger },
        fallbackRenderer: 'simple',
        fallbackRendererOptions: { logger },
      },
    );
    await list.run();
    return;
  }
  for (const s of steps) {
    const t0 = Date.now();
    const detail = await s.run();
    ctx.log.info(`${s.title}${detail ? `: ${detail}` : ''} (${Date.now() - t0} ms)`);
  }
}
