// The `dbus:` section of the topology file (and of a `ezctl dbus --spec FILE` YAML): the moves of
// tables and databases between instances (src/core/dbus/ reads it). Validated here with the rest
// of the file, so `topo validate` reports a broken move as it does a broken node.
import { z } from 'zod';
import { parseConnectionString, redactConnectionString } from './dsn.js';

const show = (v: unknown): string => (v === undefined ? 'missing' : JSON.stringify(v));
const text = (what: string) =>
  z.string({ error: (i) => (i.input === undefined ? `missing (expected ${what})` : `${show(i.input)} is not ${what}`) }).min(1, { error: () => `empty (expected ${what})` });
const label = text('a label').regex(/^[A-Za-z0-9_-]+$/, { error: (i) => `${show(i.input)} is not a label (letters, digits, _ -)` });

const dsn = text('a connection string (mysql://user@host:port or h=host,P=port,u=user)').superRefine((v, ctx) => {
  try {
    parseConnectionString(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `${show(redactConnectionString(v))}: ${(e as Error).message}`, input: redactConnectionString(v) });
  }
});

export const dbusEndpointSchema = z
  .strictObject({
    label,
    cluster: text('a cluster name').optional(),
    zone: text('a zone name').optional(),
    dsn: dsn.optional(),
  })
  .superRefine((e, ctx) => {
    if (e.dsn !== undefined && (e.cluster !== undefined || e.zone !== undefined)) ctx.addIssue({ code: 'custom', path: ['dsn'], message: 'a server is cluster + zone (its master) or dsn, not both' });
    else if (e.dsn === undefined && e.zone === undefined) ctx.addIssue({ code: 'custom', path: ['zone'], message: 'missing (a server is cluster + zone, for that zone\'s master, or dsn: "h=host,P=port,u=user")' });
  });

// "label:db.t" -> value (a source table, named with its source's label)
const sourceTableKey = z.string().regex(/^[A-Za-z0-9_-]+:[^.\s]+\.[^.\s]+$/, { error: (i) => `${show(i.input)} is not label:db.table` });

export const mergeRuleSchema = z.discriminatedUnion(
  'kind',
  [
    z.strictObject({
      kind: z.literal('shard-column'),
      column: text('a column name'),
      values: z.record(sourceTableKey, z.union([z.string(), z.number()])).optional(),
    }),
    z.strictObject({
      kind: z.literal('offset'),
      column: text('a column name'),
      offsets: z.record(sourceTableKey, z.number().int({ error: (i) => `${show(i.input)} is not a whole number` })),
    }),
  ],
  { error: (i) => `${show((i.input as { kind?: unknown } | undefined)?.kind)} is not a merge kind (shard-column or offset)` },
);

export const dbusTableSchema = z.strictObject({
  /** [label:]db.table, db.*, a glob (orders_*) or a regular expression for the table (orders_[0-9]+) */
  from: text('[label:]db.table, db.* or a name pattern'),
  /** db.table (a rename, or the one table of a merge) or db.* (another database); default: the same names */
  to: text('db.table or db.*').optional(),
  where: text('an SQL condition').optional(),
  merge: mergeRuleSchema.optional(),
});

export const dbusMoveSchema = z
  .strictObject({
    sources: z.array(dbusEndpointSchema).min(1, { error: () => 'empty (at least one source)' }),
    target: dbusEndpointSchema,
    tables: z.array(dbusTableSchema).min(1, { error: () => 'empty (at least one table entry)' }),
    createTarget: z.boolean().default(true),
  })
  .superRefine((m, ctx) => {
    const seen = new Set<string>();
    (Array.isArray(m.sources) ? m.sources : []).forEach((s, i) => {
      if (!s || typeof s.label !== 'string') return;
      if (seen.has(s.label)) ctx.addIssue({ code: 'custom', path: ['sources', i, 'label'], message: `${show(s.label)} names two sources` });
      seen.add(s.label);
    });
    if (m.target && typeof m.target.label === 'string' && seen.has(m.target.label)) ctx.addIssue({ code: 'custom', path: ['target', 'label'], message: `${show(m.target.label)} is also a source's label` });
  }, { when: () => true });

export const dbusSectionSchema = z.strictObject({
  moves: z.record(label, dbusMoveSchema).default({}),
});

export type DbusMoveConfig = z.output<typeof dbusMoveSchema>;
export type DbusSectionConfig = z.output<typeof dbusSectionSchema>;
