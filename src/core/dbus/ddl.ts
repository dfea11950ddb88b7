// What the stream does when a source logs DDL on a table of the move. C1 ships the default (stop
// that source's stream, naming the table and the statement); C2 makes a merge hold the source
// until every shard has the same change, then applies it once.
import type { TableRef } from '../apply/mapping.js';
import type { DbusMove } from './spec.js';

export interface SourceDdl {
  /** the default schema the statement ran in */
  schema: string;
  /** the tables of the move it names (source tables) */
  tables: TableRef[];
  /** its GTID on the source */
  gtid: string;
  /**
   * For 'hold': the runner parks this source's stream before the statement (its checkpoint stays
   * before it) until the hook calls resume() (the statement was applied to the target once: the
   * stream goes on past it) or stop(why) (the stream stops with that message).
   */
  resume(): void;
  stop(why: string): void;
}

export type DdlDecision = 'stop' | 'hold';

/** The default: stop. (C2 replaces the body for merges.) */
export function onSourceDdl(move: DbusMove, source: string, query: string, ev?: SourceDdl): DdlDecision {
  void move;
  void source;
  void query;
  void ev;
  return 'stop';
}
