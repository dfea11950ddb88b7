// A bundled build of ezctl for the benchmarks: dist/ through esbuild into a few files (the lazily
// loaded commands stay separate chunks), to measure what module loading costs at start-up. The
// shipped build is dist/ as tsc writes it; this exists only to put a number on the difference.
import { build } from 'esbuild';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../test/helpers/cli.js';

export interface Bundle {
  /** the launcher to run with node, like bin/ezctl */
  launcher: string;
  files: number;
  remove(): void;
}

export async function bundleEzctl(): Promise<Bundle> {
  const dir = mkdtempSync(join(tmpdir(), 'ezctl-bundle-'));
  const r = await build({
    entryPoints: [join(ROOT, 'dist', 'cli.js')],
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outdir: dir,
    metafile: true,
    logLevel: 'error',
    // CommonJS packages inside an ESM bundle call require() for node's own modules
    banner: { js: "import { createRequire as __ezctlRequire } from 'node:module'; const require = __ezctlRequire(import.meta.url);" },
    // ink loads it only when DEV is set; it is not installed
    external: ['react-devtools-core'],
  });
  const launcher = join(dir, 'ezctl.mjs');
  writeFileSync(launcher, "import './cli.js';\n");
  return { launcher, files: Object.keys(r.metafile.outputs).length, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
