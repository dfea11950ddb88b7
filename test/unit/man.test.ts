import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { generateMan } from '../../src/tools/gen-man.js';

test('man/ezctl.1 is in step with the command definitions (regenerate with `npm run man`)', () => {
  const committed = readFileSync(new URL('../../man/ezctl.1', import.meta.url), 'utf8');
  assert.equal(committed, generateMan());
});

test('the man page documents every exit code and every command', () => {
  const man = generateMan();
  for (const code of ['0', '1', '2', '3', '4', '130']) assert.match(man, new RegExp(`^\\.B ${code}$`, 'm'));
  for (const c of ['sandbox up', 'sandbox down', 'sandbox status', 'sandbox load', 'sandbox workload', 'topo show', 'topo check']) {
    assert.match(man, new RegExp(`^\\.SS ezctl ${c}`, 'm'));
  }
});
