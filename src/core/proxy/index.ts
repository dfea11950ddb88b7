// Routing targets: what a switch moves the application's routes with (routing.ts), and HAProxy's
// implementation over its runtime API (haproxy.ts, haproxy-config.ts).
export type { RouteNode, RouteHealth, RoutingTarget, MoveWriteOptions } from './routing.js';
export { HaproxyTarget, adminRequest, findHaproxy, haproxyVersion, isOurHaproxy, startHaproxy, writeConfig, type HaproxyTargetOptions } from './haproxy.js';
export { parseModel, renderConfig, type ProxyModel } from './haproxy-config.js';
export { routingTarget, targetOf, zoneProxy, type ZoneProxy } from './zone.js';
