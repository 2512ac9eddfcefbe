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
