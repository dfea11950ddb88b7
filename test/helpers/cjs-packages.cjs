// Preloaded with `node -r`: prints on stderr, at exit, the npm packages loaded through require
// (mysql2, yaml and zongji are CommonJS), as "CJS packages: a b c".
const Module = require('node:module');
const seen = new Set();
const load = Module._load;
Module._load = function (request, parent, isMain) {
  const out = load.apply(this, arguments);
  try {
    const m = /node_modules\/((@[^/]+\/)?[^/]+)/.exec(Module._resolveFilename(request, parent));
    if (m) seen.add(m[1]);
  } catch {
    /* a built-in */
  }
  return out;
};
process.on('exit', () => process.stderr.write(`CJS packages: ${[...seen].sort().join(' ')}\n`));
