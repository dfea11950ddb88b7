// A node:test reporter that keeps, in the file $EZCTL_TEST_TIMES_FILE, each finished test file's wall
// time (its process from start to end, sandbox setup included), slowest first: scripts/run-tests.mjs
// prints it when the run ends, to show what to look at when the suite nears its 15-minute budget.
// With a process per file, node reports the file itself as a test named by its path. The table is
// rewritten at each file's end, not once at the end: --test-force-exit ends the run before a
// reporter's last words are written.
import { writeFileSync } from 'node:fs';

export default async function* fileTimes(source) {
  const out = process.env.EZCTL_TEST_TIMES_FILE;
  const files = [];
  for await (const ev of source) {
    if (!out || ev.type !== 'test:complete' || !ev.data.file || ev.data.name !== ev.data.file) continue;
    files.push([ev.data.file.replace(/^.*?\btest\//, 'test/'), (ev.data.details?.duration_ms ?? 0) / 1000, !ev.data.details?.passed]);
    files.sort((a, b) => b[1] - a[1]);
    const total = files.reduce((s, f) => s + f[1], 0);
    const lines = files.filter((f) => f[1] >= 1).map(([file, s, failed]) => `${s.toFixed(1).padStart(7)}  ${file}${failed ? '  (failed)' : ''}`);
    writeFileSync(out, `seconds per test file, slowest first (${total.toFixed(0)} s in all, ${files.length} files):\n${lines.join('\n')}\n`);
  }
}
