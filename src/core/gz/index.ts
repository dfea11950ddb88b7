// The gz capability's entry: the zone switches of a cluster (`gz switch`: a global cluster's write
// zone; `gz move`: a sharding cluster's shard ranges) and what they share.
export * from './common.js';
export * from './switch.js';
export * from './move.js';
export { renderGzSwitch } from './render.js';
export { renderGzMove } from './render-move.js';
