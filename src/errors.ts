/**
 * Every error faultline answers a client with. The code is stable (clients and tests match on it), the
 * status is the HTTP status, and the message is for people: it says what was wrong and what to do.
 */
export class FaultlineError extends Error {
  override name = 'FaultlineError';
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    /** Seconds a client should wait before retrying (429/503). */
    readonly retryAfterS?: number,
  ) {
    super(message);
  }
}

export const badRequest = (code: string, message: string) => new FaultlineError(code, 400, message);
export const notFound = (code: string, message: string) => new FaultlineError(code, 404, message);

/** Whether a store failure is worth retrying (the store may come back) or permanent (the data is refused). */
export function isRetryableStoreError(err: unknown): boolean {
  const e = err as { code?: string; type?: string; message?: string };
  // ClickHouse answers bad data with parse/type errors: retrying the same rows can never succeed.
  const permanent = ['CANNOT_PARSE', 'TYPE_MISMATCH', 'INCORRECT_DATA', 'UNKNOWN_TABLE', 'NO_SUCH_COLUMN', 'SYNTAX_ERROR'];
  if (e?.type && permanent.some((p) => e.type!.includes(p))) return false;
  return true;
}

/** A ClickHouse error (from a server or the embedded engine): the store answered, and refused. */
export function isClickHouseError(err: unknown): boolean {
  const e = err as { code?: unknown; type?: unknown };
  return typeof e?.code === 'string' && /^\d+$/.test(e.code) && typeof e.type === 'string';
}

/** Socket-level failures of a connection to a ClickHouse server. */
const UNREACHABLE_ERRNOS = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
/** ClickHouse errors of a store too busy, too full or going away, whatever was asked of it. */
const OVERLOADED_TYPES = /TIMEOUT|NETWORK|SOCKET|TOO_MANY_SIMULTANEOUS|MEMORY_LIMIT|NOT_ENOUGH_SPACE|ABORTED|ALL_CONNECTION_TRIES_FAILED/;

/**
 * Whether a read failed because the store did not answer (down, unreachable, timed out, overloaded) rather
 * than because of what was asked: a client may retry the same request later and succeed.
 */
export function isStoreUnavailable(err: unknown): boolean {
  const e = err as { code?: unknown; type?: unknown; message?: unknown };
  if (typeof e?.code === 'string' && UNREACHABLE_ERRNOS.has(e.code)) return true;
  // @clickhouse/client's own request timeout (store.request_timeout_ms), and a server that hung up.
  if (typeof e?.message === 'string' && /^(Timeout error\.|socket hang up)/.test(e.message)) return true;
  return isClickHouseError(err) && OVERLOADED_TYPES.test(String(e.type));
}
