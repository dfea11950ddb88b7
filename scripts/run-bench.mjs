#!/usr/bin/env node
// npm run bench [-- name...]: runs bench/<name>.ts (all when none named). Benchmarks print
// figures side by side with their peers; they are never part of `npm test`.
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';

const all = readdirSync('bench').filter((f) => f.endsWith('.ts') && !f.startsWith('_')).map((f) => f.slice(0, -3)).sort();
const names = process.argv.slice(2).length ? process.argv.slice(2) : all;
let failed = 0;
for (const n of names) {
  if (!all.includes(n)) {
    console.error(`no benchmark ${n} (have: ${all.join(', ')})`);
    process.exit(2);
  }
  console.log(`\n=== bench/${n}.ts ===`);
  const r = spawnSync(process.execPath, ['--import', 'tsx', `bench/${n}.ts`], { stdio: 'inherit' });
  if (r.status !== 0) failed++;
}
process.exit(failed ? 1 : 0);
