// Whether an error means the connection to a server is gone (not that a statement failed): the
// driver's own words for it vary, and every layer that visits many servers needs the same answer.

/** Driver and server codes that mean the connection itself is gone, not that a statement failed. */
const LOST_CODES = new Set(['PROTOCOL_CONNECTION_LOST', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ER_SERVER_SHUTDOWN', 'ER_CONNECTION_KILLED', 'ER_NORMAL_SHUTDOWN']);
/** 1053 server shutdown in progress, 1927 connection killed, 2006 gone away, 2013 lost during query */
const LOST_ERRNOS = new Set([1053, 1927, 2006, 2013]);

/** An error and the ones it wraps (`cause`), outermost first. */
export function* errorChain(e: unknown): Generator<Record<string, unknown>> {
  for (let x = e, n = 0; x && typeof x === 'object' && n < 8; x = (x as { cause?: unknown }).cause, n++) yield x as Record<string, unknown>;
}

/** True when the error (or one it wraps) says the connection to the server is gone. */
export function isLostConnection(e: unknown): boolean {
  for (const x of errorChain(e)) {
    if (typeof x.code === 'string' && LOST_CODES.has(x.code)) return true;
    if (typeof x.errno === 'number' && LOST_ERRNOS.has(x.errno)) return true;
    // mysql2 marks network and protocol failures fatal; an error the server sent for a statement is not
    if (x.fatal === true) return true;
    if (typeof x.message === 'string' && /in closed state|Connection lost|server has gone away/i.test(x.message)) return true;
  }
  return false;
}
