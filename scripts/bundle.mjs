#!/usr/bin/env node
// The build bin/ezctl runs: dist/ (as tsc writes it) through esbuild into dist/bundle/. Node
// loading ~200 separate modules cost ~50 ms of every command's start (measured by bench/check and
// bench/startup); a few files with the lazily imported commands as their own chunks load faster.
// Entries and chunks share one folder: a module that finds a file beside itself (the WAN relay's
// relay-main.js) finds it there too. dist/cli.js stays runnable as it is (bin/ezctl falls back to it).
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'dist', 'bundle');
rmSync(out, { recursive: true, force: true });
await build({
  entryPoints: { cli: join(root, 'dist', 'cli.js'), 'relay-main': join(root, 'dist', 'core', 'sandbox', 'wan', 'relay-main.js') },
  entryNames: '[name]',
  chunkNames: 'chunk-[hash]',
  bundle: true,
  splitting: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outdir: out,
  sourcemap: 'linked',
  logLevel: 'warning',
  // CommonJS packages inside an ESM bundle call require() for node's own modules
  banner: { js: "import { createRequire as __ezctlRequire } from 'node:module'; const require = __ezctlRequire(import.meta.url);" },
  // ink loads it only when DEV is set; it is not installed
  external: ['react-devtools-core'],
});
