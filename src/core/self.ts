// Where this installation's own files are, found from this module's place on disk: the same
// answer from dist/ as tsc writes it (dist/core/self.js) and from the bundled build the launcher
// runs (dist/bundle/<chunk>.js), whose depth differs.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The installation's root: the nearest folder above this module holding package.json and bin/ezctl. */
export function installRoot(): string {
  if (root !== undefined) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 8; up++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'bin', 'ezctl'))) return (root = dir);
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new Error(`cannot find ezctl's installation (package.json and bin/ezctl) above ${fileURLToPath(import.meta.url)}`);
}

/** bin/ezctl of this very installation (what a detached helper process runs). */
export function ezctlBin(): string {
  return join(installRoot(), 'bin', 'ezctl');
}
