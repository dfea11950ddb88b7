// The drill capability's entry: `ezctl drill NAME`, `drill list`, `drill cleanup`.
export { runDrill, drillNames, type DrillOptions, type DrillReport, type Invariant } from './run.js';
export { drillCleanup, type CleanupReport } from './cleanup.js';
export { DRILLS } from './drills.js';
export { renderDrill, renderCleanup, renderDrillList } from './render.js';
