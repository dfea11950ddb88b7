// D-Bus (issue 15): move tables and databases between instances, merge shard tables, live sync,
// verify, cut over. Other capabilities and commands reach it only through here.
export { loadMove, loadMoveServers, describeRef, type DbusMove, type DbusTable, type DbusTableSource, type DbusEndpointRef, type MergeRule, type DbusStatus, type DbusState } from './spec.js';
export { tableMappings, reverseMapping, reverseMappings, planMove, openMove, type DbusMapping, type MoveShapes, type DbusPlan } from './plan.js';
export { startStream, startMove, ddlTables, type StreamSpec, type StreamHandle, type StartOptions, type StartReport } from './run.js';
export { dbusStatus, waitApplied, dbusControl, binlogStart, retentionWarning } from './status.js';
export { onSourceDdl, type SourceDdl, type DdlDecision } from './ddl.js';
export { dbusJob, dbusJobPlaces, streamName, DBUS_CLUSTER } from './job.js';
export { dbusVerify, verifyPairs, verifyExitCode, type DbusVerifyOptions, type DbusVerifyReport, type DbusDifference, type DbusVerifyTable } from './verify.js';
