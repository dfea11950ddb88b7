// osc's public entry: what another capability may use of the online schema change (migrate
// int2bigint runs its widenings through it, one table or a foreign-key family at a time).
export { runOsc, type OscOptions, type OscReport } from './engine.js';
export { runOscFamily, type FamilyReport } from './family.js';
