// The architecture in DESIGN.md, checked on the source: a shared layer (db/, binlog/, chunk/,
// config/, control/, throttle/, ui/, ...) imports no capability folder, and a capability (drc/,
// dcp/, osc/, ...) reaches another only through that one's index.ts or client.ts. The known-debt
// list (imports that broke these rules) was paid off by the "Layers" issue; it stays, empty, as the
// place to name a crossing one must keep for a while: it may only shrink, and a listed import that
// is gone fails the test too (take it off).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { ROOT } from '../helpers/cli.js';

const CORE = join(ROOT, 'src', 'core');
const CAPABILITIES = new Set(['drc', 'dcp', 'osc', 'migrate', 'emha', 'gz', 'dbus', 'drill', 'sandbox', 'topo']);
const PUBLIC_ENTRIES = new Set(['index.ts', 'client.ts']);

const KNOWN_DEBT = new Set<string>([]);

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return /\.tsx?$/.test(name) ? [p] : [];
  });
}

/** Relative imports of a file (static, re-exports and dynamic), as paths of .ts sources under `core`. */
function importsOf(file: string, core = CORE): string[] {
  const text = readFileSync(file, 'utf8');
  const specs = [...text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)['"](\.[^'"]+)['"]/g)].map((m) => m[1]!);
  return specs.map((s) => relative(core, resolve(dirname(file), s)).replace(/\.js$/, '.ts').replace(/\.jsx$/, '.tsx'));
}

/** The first folder under src/core ('' for a file at its top). */
const folderOf = (rel: string) => (rel.includes('/') ? rel.split('/')[0]! : '');

function violations(core = CORE): string[] {
  const out: string[] = [];
  for (const file of sources(core)) {
    const from = relative(core, file);
    const fromFolder = folderOf(from);
    for (const to of importsOf(file, core)) {
      if (to.startsWith('..')) continue; // outside src/core (none today)
      const toFolder = folderOf(to);
      if (!CAPABILITIES.has(toFolder) || toFolder === fromFolder) continue;
      const shared = !CAPABILITIES.has(fromFolder);
      const throughEntry = PUBLIC_ENTRIES.has(to.slice(toFolder.length + 1));
      if (shared || !throughEntry) out.push(`${from} -> ${to}`);
    }
  }
  return [...new Set(out)].sort();
}

test('no shared layer imports a capability, no capability reaches into another past its index.ts/client.ts (beyond the known debt)', () => {
  const found = violations();
  const fresh = found.filter((v) => !KNOWN_DEBT.has(v));
  assert.deepEqual(fresh, [], `new imports across the layers (move the shared part into a shared layer, or import the capability's index.ts/client.ts):\n${fresh.join('\n')}`);
  const paid = [...KNOWN_DEBT].filter((v) => !found.includes(v));
  assert.deepEqual(paid, [], `no longer imported, take these off KNOWN_DEBT in test/unit/layers.test.ts:\n${paid.join('\n')}`);
});

test('the layer check sees imports: a shared layer importing a capability, a capability past another\'s entry', () => {
  // the check reads real files; this pins that it finds the breaks in a tree made to have them,
  // so it cannot pass by seeing nothing
  const core = mkdtempSync(join(tmpdir(), 'ezctl-layers-'));
  try {
    const put = (rel: string, text: string) => {
      mkdirSync(dirname(join(core, rel)), { recursive: true });
      writeFileSync(join(core, rel), text);
    };
    put('throttle/signals.ts', "import { x } from '../drc/daemon.js';\nimport { y } from '../db/quote.js';\n");
    put('osc/zone.ts', "import { a } from '../dcp/checksum.js';\nimport { b } from '../drc/client.js';\nconst c = await import('../dcp/index.js');\n");
    put('dcp/repair.ts', "export { d } from './structure.js';\n");
    assert.deepEqual(violations(core), ['osc/zone.ts -> dcp/checksum.ts', 'throttle/signals.ts -> drc/daemon.ts']);
  } finally {
    rmSync(core, { recursive: true, force: true });
  }
  assert.ok(importsOf(join(CORE, 'osc', 'engine.ts')).includes('db/quote.ts'));
});
