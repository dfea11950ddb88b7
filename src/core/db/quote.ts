// The one identifier-quoting helper. Every schema, table, column and index name that reaches
// SQL text goes through quoteId; every value goes through a placeholder instead.
export function quoteId(name: string): string {
  if (typeof name !== 'string' || name.length === 0) throw new Error('empty SQL identifier');
  if (name.includes('\0')) throw new Error('SQL identifier contains a NUL byte');
  if (name.length > 64) throw new Error(`SQL identifier longer than 64 characters: ${name.slice(0, 20)}...`);
  return '`' + name.replace(/`/g, '``') + '`';
}

/** `db`.`table` */
export function quoteTable(schema: string, table: string): string {
  return `${quoteId(schema)}.${quoteId(table)}`;
}

export function quoteList(names: readonly string[]): string {
  return names.map(quoteId).join(', ');
}

/** For human-facing messages only (never for SQL): db.table */
export function displayTable(schema: string, table: string): string {
  return `${schema}.${table}`;
}

/** db.table as a command line names it (parseTableName reads it back): quoted only where a dot or backtick makes it ambiguous. */
export function tableArgument(schema: string, table: string): string {
  return /[.`]/.test(schema + table) ? quoteTable(schema, table) : `${schema}.${table}`;
}

/**
 * A table named on the command line: db.table, where either part may be in backticks (a doubled
 * backtick inside stands for one), as SQL writes it: `db`.`my.table`, db.`a``b`, db.my-table.
 * An unquoted part runs to the next dot, so a name holding a dot must be in backticks. Returns
 * undefined for anything else (the caller says what it expected).
 */
export function parseTableName(text: string): { schema: string; table: string } | undefined {
  const s = text.trim();
  const parts: string[] = [];
  let i = 0;
  for (;;) {
    let part = '';
    if (s[i] === '`') {
      for (i++; ; i++) {
        if (i >= s.length) return undefined;
        if (s[i] === '`') {
          if (s[i + 1] === '`') {
            part += '`';
            i++;
          } else {
            i++;
            break;
          }
        } else part += s[i];
      }
    } else {
      const end = s.indexOf('.', i);
      part = s.slice(i, end < 0 ? s.length : end);
      if (part.includes('`')) return undefined;
      i += part.length;
    }
    if (!part || part.length > 64) return undefined;
    parts.push(part);
    if (i >= s.length) break;
    if (s[i] !== '.') return undefined;
    i++;
  }
  if (parts.length !== 2) return undefined;
  return { schema: parts[0]!, table: parts[1]! };
}
