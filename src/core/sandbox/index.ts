// The sandbox's entry for other capabilities (drills run faults against a sandbox: its servers'
// processes, its state file, the reference workload). `ezctl sandbox` itself imports its files.
export { sandboxWorkload, type WorkloadOptions, type WorkloadReport, type ZoneWorkloadReport } from './workload.js';
export { sandboxUp, sandboxStatus, readState, writeState, nodeRunning, readOnlyNow, STATE_FILE, type SandboxState, type SandboxNode, type SandboxReport } from './up.js';
export { findServerKit, spawnServer, stopServer, waitReady, isOurServer, type ServerKit } from './servers.js';
export { DEMO_DATABASE, DEMO_TABLES } from './demo-schema.js';
export { netStatus, partition, heal, setLatency, type NetLink } from './net.js';
