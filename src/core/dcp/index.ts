// dcp's public entry: what other capabilities use of the consistency check (migrate drc-ts
// compares the migrated tables; the migrations select tables as the checks do). Everything else
// in dcp/ is its own.
export { checkFull } from './check-full.js';
export { describeRowDiff } from './render.js';
export { tableFilter } from './structure.js';
// the zone switches (gz switch, gz move): verify two zones over a binlog window or whole tables
export { verifyRows, openVerifier, binlogPositions, lastVerifiedPositions, type Verifier, type VerifyOptions, type VerifyReport, type VerifyDifference } from './verify.js';
// dbus verify: one table on two servers that name it differently (a move's source and target)
export { compareTablePair, pairHash, type ComparePairOptions, type PairSide, type TableSide } from './pair.js';
export type { TableReport, RowDiff } from './check-full.js';
