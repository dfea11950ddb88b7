// drc/client.ts is the DRC capability's light entry: what it loads at run time (its static
// imports, followed through every file they import) never reaches the daemon, its pipeline and
// applier, or the binlog reader (and through it zongji). Type-only imports are erased, so they
// do not count.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ROOT } from '../helpers/cli.js';

const CORE = join(ROOT, 'src', 'core');

/** Files a source loads when it is imported: static value imports and re-exports (not `import type`, not dynamic import()). */
function runtimeImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^(?:import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"](\.[^'"]+)['"]/gm)) {
    if (m[1]) continue;
    out.push(resolve(dirname(file), m[2]!).replace(/\.js$/, '.ts').replace(/\.jsx$/, '.tsx'));
  }
  return out;
}

function loadedBy(entry: string): string[] {
  const seen = new Set<string>([entry]);
  const todo = [entry];
  while (todo.length) for (const f of runtimeImports(todo.pop()!)) if (!seen.has(f)) seen.add(f), todo.push(f);
  return [...seen].map((f) => relative(CORE, f)).sort();
}

test('the DRC client loads neither the daemon nor the binlog reader', () => {
  const loaded = loadedBy(join(CORE, 'drc', 'client.ts'));
  const heavy = loaded.filter((f) => f.startsWith('binlog/') || ['drc/daemon.ts', 'drc/pipeline.ts', 'drc/apply.ts'].includes(f));
  assert.deepEqual(heavy, [], `drc/client.ts loads ${heavy.join(', ')}`);
});

test('the import walk sees what the daemon loads', () => {
  // so the test above cannot pass by seeing nothing
  const loaded = loadedBy(join(CORE, 'drc', 'daemon.ts'));
  assert.ok(loaded.includes('drc/pipeline.ts') && loaded.includes('binlog/stream.ts'), loaded.join(' '));
});
