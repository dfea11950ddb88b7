// D-Bus (issue 15): move tables and databases between instances, merge shard tables, live sync,
// verify, cut over. Other capabilities and commands reach it only through here.
export { loadMove, type DbusMove, type DbusTable, type DbusTableSource, type DbusEndpointRef, type MergeRule, type DbusStatus, type DbusState } from './spec.js';
export { tableMappings, type DbusMapping, type MoveShapes } from './plan.js';
export { startStream, type StreamSpec, type StreamHandle } from './run.js';
export { dbusStatus, waitApplied } from './status.js';
export { onSourceDdl, type SourceDdl, type DdlDecision } from './ddl.js';
