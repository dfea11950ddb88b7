// Exit codes by name: src/core/exit.ts is the one table of codes, so a command's return and a
// process.exit name one of ExitCode's members, never a bare number (read on the source).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ROOT } from '../helpers/cli.js';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return sources(p);
    return /\.tsx?$/.test(name) ? [p] : [];
  });
}

const CODE = String.raw`(?:0|1|2|3|4|130)`;
/** a command's return of a code (`return 3;`, `return x ? 4 : 0;`), process.exit(3), process.exitCode = 3 */
const BARE = [
  new RegExp(String.raw`\breturn\s+${CODE}\s*;`),
  new RegExp(String.raw`\breturn\b[^;\n]*[?:]\s*${CODE}\s*[;:]`),
  new RegExp(String.raw`process\.exit\(\s*${CODE}\s*\)`),
  new RegExp(String.raw`process\.exitCode\s*=\s*${CODE}\b`),
];

function bareCodes(): string[] {
  const out: string[] = [];
  const files = [...sources(join(ROOT, 'src', 'commands')), join(ROOT, 'src', 'cli.ts'), ...sources(join(ROOT, 'src', 'core')).filter((f) => !f.endsWith('exit.ts'))];
  for (const f of files) {
    const inCommands = f.includes(`${join('src', 'commands')}`) || f.endsWith('cli.ts');
    readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
      // in src/core a `return 0` is mostly arithmetic: there only process.exit is read
      const rules = inCommands ? BARE : BARE.slice(2);
      if (rules.some((r) => r.test(line))) out.push(`${relative(ROOT, f)}:${i + 1}: ${line.trim()}`);
    });
  }
  return out;
}

test('no command returns, and nothing exits with, a bare exit-code number (ExitCode.* from src/core/exit.ts)', () => {
  assert.deepEqual(bareCodes(), []);
});

test('the check sees a bare code', () => {
  assert.ok(BARE[0]!.test('      return 0;'));
  assert.ok(BARE[1]!.test('      return r.interrupted ? 130 : r.zones.some((z) => z.errors > 0) ? 3 : 0;'));
  assert.ok(BARE[1]!.test('      return s.healthy ? 0 : 3;'));
  assert.ok(BARE[2]!.test('    process.exit(130);'));
  assert.ok(!BARE[1]!.test("      return s.healthy ? ExitCode.ok : ExitCode.runtime;"));
  assert.ok(!BARE[0]!.test('  return 10;'));
});
