import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { decimal, duration, durationOption, examples, integer, nameList, parseDurationMs } from '../../src/commands/common.js';

/** f throws commander's InvalidArgumentError (exit 2 through commander) with this message. */
function refuses(f: () => unknown, message: string): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(e)}`);
    assert.equal(e.message, message);
    return true;
  });
}

test('integer: whole numbers within range', () => {
  const p = integer(0, 100);
  assert.equal(p('0'), 0);
  assert.equal(p('100'), 100);
  assert.equal(p('42'), 42);
  assert.equal(p(' 7 '), 7);
  assert.equal(p('007'), 7);
  assert.equal(integer(-5, 5)('-5'), -5);
  assert.equal(integer(1)('9007199254740991'), Number.MAX_SAFE_INTEGER);
});

test('integer: refuses fractions, exponents, words and empty text', () => {
  const p = integer(0, 100);
  refuses(() => p('1.5'), '"1.5" is not a whole number');
  refuses(() => p('1.0'), '"1.0" is not a whole number');
  refuses(() => p('1e2'), '"1e2" is not a whole number');
  refuses(() => p('0x10'), '"0x10" is not a whole number');
  refuses(() => p('ten'), '"ten" is not a whole number');
  refuses(() => p(''), '"" is not a whole number');
  refuses(() => p('+5'), '"+5" is not a whole number');
  refuses(() => p('5 6'), '"5 6" is not a whole number');
});

test('integer: refuses values out of range, naming the range', () => {
  refuses(() => integer(0, 100)('101'), '101 is out of range (0-100)');
  refuses(() => integer(0, 100)('-1'), '-1 is out of range (0-100)');
  refuses(() => integer(1024, 65000)('80'), '80 is out of range (1024-65000)');
  refuses(() => integer(1)('9007199254740992'), `9007199254740992 is out of range (1-${Number.MAX_SAFE_INTEGER})`);
});

test('decimal: plain decimal numbers within range', () => {
  const p = decimal(0, 1);
  assert.equal(p('0'), 0);
  assert.equal(p('1'), 1);
  assert.equal(p('0.25'), 0.25);
  assert.equal(p('.5'), 0.5);
  assert.equal(p(' 0.1 '), 0.1);
  assert.equal(decimal(0.1, 86400)('10'), 10);
  assert.equal(decimal(0.1, 86400)('5.'), 5);
  assert.equal(decimal(-1, 1)('-0.5'), -0.5);
  assert.equal(decimal(0, 1000)('1e2'), 100);
});

test('decimal: refuses words, empty text, hex/binary and infinity', () => {
  const p = decimal(-1e9, 1e9);
  refuses(() => p(''), '"" is not a number');
  refuses(() => p('  '), '"  " is not a number');
  refuses(() => p('abc'), '"abc" is not a number');
  refuses(() => p('0x10'), '"0x10" is not a number');
  refuses(() => p('0b1'), '"0b1" is not a number');
  refuses(() => p('Infinity'), '"Infinity" is not a number');
  refuses(() => p('1,5'), '"1,5" is not a number');
  refuses(() => p('NaN'), '"NaN" is not a number');
  refuses(() => p('1.2.3'), '"1.2.3" is not a number');
});

test('decimal: refuses values out of range', () => {
  refuses(() => decimal(0, 1)('1.5'), '1.5 is out of range (0-1)');
  refuses(() => decimal(0, 1)('-0.1'), '-0.1 is out of range (0-1)');
  refuses(() => decimal(0.1, 86400)('0.05'), '0.05 is out of range (0.1-86400)');
});

test('nameList: comma-separated plain names', () => {
  assert.deepEqual(nameList('bj,sh'), ['bj', 'sh']);
  assert.deepEqual(nameList(' bj , sh ,gz'), ['bj', 'sh', 'gz']);
  assert.deepEqual(nameList('zone_1,zone-2,Z3'), ['zone_1', 'zone-2', 'Z3']);
  assert.deepEqual(nameList('solo'), ['solo']);
  // empty items between commas are dropped
  assert.deepEqual(nameList('bj,,sh,'), ['bj', 'sh']);
});

test('nameList: refuses duplicates, bad characters and empty lists', () => {
  refuses(() => nameList('bj,sh,bj'), '"bj,sh,bj" names something twice');
  refuses(() => nameList('bj, bj'), '"bj, bj" names something twice');
  refuses(() => nameList('b j'), '"b j" is not a plain name (letters, digits, _ -)');
  refuses(() => nameList('bj,s.h'), '"s.h" is not a plain name (letters, digits, _ -)');
  refuses(() => nameList('bj,../x'), '"../x" is not a plain name (letters, digits, _ -)');
  refuses(() => nameList('bj;rm'), '"bj;rm" is not a plain name (letters, digits, _ -)');
  refuses(() => nameList(''), 'empty list');
  refuses(() => nameList(' , ,'), 'empty list');
});

test('parseDurationMs: units and plain seconds', () => {
  assert.equal(parseDurationMs('500ms'), 500);
  assert.equal(parseDurationMs('2s'), 2000);
  assert.equal(parseDurationMs('1.5m'), 90_000);
  assert.equal(parseDurationMs('1h'), 3_600_000);
  assert.equal(parseDurationMs('10'), 10_000);
  assert.equal(parseDurationMs('0.25'), 250);
  assert.equal(parseDurationMs('0'), 0);
  assert.equal(parseDurationMs(' 2 s '), 2000);
  assert.equal(parseDurationMs('1.5ms'), 2);
});

test('parseDurationMs: refuses what is not a duration', () => {
  for (const v of ['', 'x', '-1s', '1d', '2S', '.5s', '1.5.2s', 's', '10 seconds', '1h30m']) {
    refuses(() => parseDurationMs(v), `${JSON.stringify(v)} is not a duration (like 500ms, 10s, 2m, 1h; a bare number is seconds)`);
  }
});

test('duration: a bare number keeps the option\'s old unit; the value comes in the unit asked for', () => {
  // an option that took seconds (--connect-timeout, --cut-over-lock-timeout) and still hands seconds on
  const s = duration({ bare: 's', as: 's' });
  assert.equal(s('5'), 5);
  assert.equal(s('500ms'), 0.5);
  assert.equal(s('2m'), 120);
  // an option that took milliseconds keeps reading a bare number as milliseconds
  const ms = duration({ bare: 'ms' });
  assert.equal(ms('250'), 250);
  assert.equal(ms('2s'), 2000);
  assert.equal(ms('1.5m'), 90_000);
  refuses(() => ms('soon'), '"soon" is not a duration (like 500ms, 10s, 2m, 1h; a bare number is milliseconds)');
});

test('duration: bounds and whole seconds, named in the refusal', () => {
  const p = duration({ bare: 's', as: 's', min: '1s', max: '1m', whole: true });
  assert.equal(p('3'), 3);
  assert.equal(p('2000ms'), 2);
  assert.equal(p('1m'), 60);
  refuses(() => p('0'), '"0" is out of range (1s-1m)');
  refuses(() => p('2m'), '"2m" is out of range (1s-1m)');
  refuses(() => p('1500ms'), '"1500ms" is not a whole number of seconds (the server counts this wait in seconds)');
  refuses(() => duration({ min: '100ms' })('50ms'), '"50ms" is out of range (at least 100ms)');
  refuses(() => duration({ max: '1h' })('2h'), '"2h" is out of range (at most 1h)');
});

test('durationOption: --help shows the default as a duration, the command gets it parsed', () => {
  let help = '';
  const program = new Command()
    .exitOverride()
    .configureOutput({ writeOut: (s) => (help += s), writeErr: () => {} })
    .addOption(durationOption('--connect-timeout <duration>', 'give up connecting after this long', { bare: 's', as: 's', default: '5s' }));
  program.parse([], { from: 'user' });
  assert.deepEqual(program.opts(), { connectTimeout: 5 });
  program.parse(['--connect-timeout', '750ms'], { from: 'user' });
  assert.deepEqual(program.opts(), { connectTimeout: 0.75 });
  assert.throws(() => program.parse(['--help'], { from: 'user' }), CommanderError);
  assert.match(help, /--connect-timeout <duration>\s+give up connecting after this long \(default: 5s\)/);
});

test('parsers plug into commander: a bad value becomes a CommanderError (cli.ts maps it to exit 2)', () => {
  const errors: string[] = [];
  const program = new Command()
    .exitOverride()
    .configureOutput({ writeErr: (s) => errors.push(s), writeOut: () => {} })
    .option('--replicas <n>', 'replicas', integer(0, 5), 1)
    .option('--zones <list>', 'zones', nameList, ['bj', 'sh'])
    .option('--ratio <r>', 'ratio', decimal(0, 1), 0)
    .option('--every <d>', 'interval', parseDurationMs);
  program.parse(['--replicas', '2', '--zones', 'a,b,c', '--ratio', '0.5', '--every', '5m'], { from: 'user' });
  assert.deepEqual(program.opts(), { replicas: 2, zones: ['a', 'b', 'c'], ratio: 0.5, every: 300_000 });

  const bad = new Command()
    .exitOverride()
    .configureOutput({ writeErr: (s) => errors.push(s), writeOut: () => {} })
    .option('--replicas <n>', 'replicas', integer(0, 5), 1);
  assert.throws(() => bad.parse(['--replicas', '9'], { from: 'user' }), (e: unknown) => {
    assert.ok(e instanceof CommanderError);
    assert.equal(e.code, 'commander.invalidArgument');
    return true;
  });
  assert.match(errors.join(''), /option '--replicas <n>' argument '9' is invalid\. 9 is out of range \(0-5\)/);
});

test('examples formats a help section', () => {
  assert.equal(examples('ezctl topo', 'ezctl topo --json'), '\nExamples:\n  $ ezctl topo\n  $ ezctl topo --json\n');
});
