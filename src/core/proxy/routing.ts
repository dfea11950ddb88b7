// What a switch (emha now, gz later) needs from whatever routes the application to a zone's
// master: read where writes go, move them, set the read pool, keep a fenced node out of every
// route, and say whether the router itself is healthy. HAProxy over its runtime API is the one
// implementation here (haproxy.ts); a user with ProxySQL, Consul or their own DAL routes through
// the switch's hooks instead (steps/hooks.ts).

/** A server a route can point at: a node of the zone, by its topology name. */
export interface RouteNode {
  name: string;
  host: string;
  port: number;
}

export interface MoveWriteOptions {
  /**
   * Close the sessions the proxy holds to the previous write node (default true). A switch has
   * blocked writes on the old master before it moves the route, so what is left there can only
   * fail or wait; a pool that keeps its connections open for hours would never come to the new
   * master on its own. Closing them makes every client reconnect through the proxy, to the new
   * master, at once: what MHA's online change script does by killing the old master's
   * application threads. Pass false when the caller kills them on the server side itself.
   */
  killExisting?: boolean;
}

export interface RouteHealth {
  /** the router answers (its process runs and its admin interface replies) */
  up: boolean;
  /** why it is not up, or what is wrong with its routes (two write nodes, a fenced node in a route) */
  problems: string[];
  /** where new write connections go now, as the running router says; null when nowhere */
  write: RouteNode | null;
  /** the read pool the running router uses now (without the write node as fallback) */
  read: RouteNode[];
  /** nodes kept out of every route */
  fenced: string[];
  /** the router's version, when it says */
  version: string | null;
}

export interface RoutingTarget {
  /** a label for messages: "proxy demo/bj (127.0.0.1:31001)" */
  readonly label: string;
  /** where new write connections of the zone go now; null when the write route is closed */
  currentWrite(): Promise<RouteNode | null>;
  /**
   * New write connections go to `to` from now on; the previous write node gets none (it is
   * taken out before `to` is put in: never two write nodes, a connection arriving in between is
   * refused and retried by the client). Idempotent. Refused for a fenced node.
   */
  moveWrite(to: RouteNode, opts?: MoveWriteOptions): Promise<void>;
  /** Reads go to these nodes (the write node serves reads only when none of them can). */
  setReadPool(nodes: RouteNode[]): Promise<void>;
  /** The node never receives traffic again (out of the write route and the read pool, its sessions closed) until unfenced. */
  fence(node: string): Promise<void>;
  /** The node may be routed to again (it is not put back in any route by this). */
  unfence(node: string): Promise<void>;
  health(): Promise<RouteHealth>;
}
