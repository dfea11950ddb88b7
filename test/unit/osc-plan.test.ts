// The pure parts of an online schema change's plan: which indexes the copy can go without.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTriggerSql, deferrableIndexes, ghostTriggerName, triggerRefusals, type TriggerDef } from '../../src/core/osc/plan.js';

const table = (...lines: string[]) => ['CREATE TABLE `t` (', ...lines.map((l, i) => `  ${l}${i < lines.length - 1 ? ',' : ''}`), ') ENGINE=InnoDB DEFAULT CHARSET=utf8mb4'].join('\n');

test('plain secondary indexes are deferred with their whole definition; primary and unique keys stay', () => {
  const ddl = table(
    '`id` int(11) NOT NULL',
    '`k` int(11) NOT NULL',
    '`c` char(10) NOT NULL',
    'PRIMARY KEY (`id`)',
    'UNIQUE KEY `u_c` (`c`)',
    'KEY `k_1` (`k`)',
    "KEY `odd``name` (`c`(4),`k`) COMMENT 'prefix'",
  );
  assert.deepEqual(deferrableIndexes(ddl), [
    { name: 'k_1', definition: 'KEY `k_1` (`k`)' },
    { name: 'odd`name', definition: "KEY `odd``name` (`c`(4),`k`) COMMENT 'prefix'" },
  ]);
});

test('nothing is deferred beside a full-text or spatial index or a foreign key, or when there is no plain index', () => {
  assert.deepEqual(deferrableIndexes(table('`id` int NOT NULL', '`d` text', 'PRIMARY KEY (`id`)', 'KEY `k` (`id`)', 'FULLTEXT KEY `ft` (`d`)')), []);
  assert.deepEqual(deferrableIndexes(table('`id` int NOT NULL', '`g` point NOT NULL', 'PRIMARY KEY (`id`)', 'KEY `k` (`id`)', 'SPATIAL KEY `sp` (`g`)')), []);
  assert.deepEqual(deferrableIndexes(table('`id` int NOT NULL', '`p` int', 'PRIMARY KEY (`id`)', 'KEY `fk_p` (`p`)', 'CONSTRAINT `fk_p` FOREIGN KEY (`p`) REFERENCES `parent` (`id`)')), []);
  assert.deepEqual(deferrableIndexes(table('`id` int NOT NULL', 'PRIMARY KEY (`id`)')), []);
});

test('triggers: their names on the new table take turns with the suffix; CREATE TRIGGER keeps the definer; a column the ALTER takes away is a refusal', () => {
  assert.equal(ghostTriggerName('t_ai'), 't_ai_ezosc');
  assert.equal(ghostTriggerName('t_ai_ezosc'), 't_ai');
  const tr: TriggerDef = { name: 'we`ird', timing: 'AFTER', event: 'INSERT', body: 'INSERT INTO log (id) VALUES (NEW.`id`)', definer: 'app@%', sqlMode: '', order: 1 };
  assert.equal(createTriggerSql('db', 't_ezgho', tr, ghostTriggerName(tr.name)), 'CREATE DEFINER = `app`@`%` TRIGGER `db`.`we``ird_ezosc` AFTER INSERT ON `db`.`t_ezgho` FOR EACH ROW INSERT INTO log (id) VALUES (NEW.`id`)');
  assert.throws(() => createTriggerSql('db', 't', { ...tr, event: 'INSERT; DROP' }, 'x'));
  assert.deepEqual(triggerRefusals([tr], ['v'], []), []);
  assert.match(triggerRefusals([tr], ['id'], [])[0]!, /uses column id, which the ALTER drops/);
  assert.match(triggerRefusals([{ ...tr, body: 'SET NEW.id = OLD . id + 1' }], [], ['id'])[0]!, /renames/);
  assert.deepEqual(triggerRefusals([{ ...tr, body: 'SET NEW.idx = 1' }], ['id'], []), []);
  assert.match(triggerRefusals([tr], [], [], new Set(['we`ird_ezosc']))[0]!, /is taken/);
  assert.match(triggerRefusals([{ ...tr, name: 'x'.repeat(60) }], [], [])[0]!, /longer than 64/);
});
