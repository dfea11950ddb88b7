// DRC constants other capabilities need without loading the daemon (and its binlog reader).

/** DRC writes what it applies under the source zone's GTID domain + this offset. */
export const DEFAULT_DRC_DOMAIN_OFFSET = 1000;
