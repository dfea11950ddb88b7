// Text tables through cli-table3; plain (no colour, no box-drawing escapes) when not on a TTY.
import Table from 'cli-table3';
import { colorAllowed } from './log.js';

export function table(head: string[], rows: string[][], opts: { stream?: NodeJS.WriteStream } = {}): string {
  const color = colorAllowed(true, opts.stream ?? process.stdout);
  const t = new Table({
    head,
    style: { head: color ? ['cyan'] : [], border: color ? ['grey'] : [], compact: true },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
    wordWrap: false,
  });
  for (const r of rows) t.push(r);
  return t.toString();
}
