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
