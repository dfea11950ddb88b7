// The build as tsc writes it (dist/cli.js, ~200 modules), for the benchmarks to put beside the
// bundled build bin/ezctl runs (dist/bundle/, scripts/bundle.mjs): what module loading costs at
// start-up and what bundling saves.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../test/helpers/cli.js';

export interface Unbundled {
  /** run with node, like bin/ezctl */
  launcher: string;
  /** the modules it loads from */
  files: number;
}

function countJs(dir: string): number {
  let n = 0;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) n += name === 'bundle' ? 0 : countJs(p);
    else if (name.endsWith('.js')) n++;
  }
  return n;
}

export function unbundledEzctl(): Unbundled {
  return { launcher: join(ROOT, 'dist', 'cli.js'), files: countJs(join(ROOT, 'dist')) };
}
