/**
 * When to try a failed delivery again: exponential backoff with full jitter (a uniformly random delay up
 * to initial·2^(n-1), capped at `max`), never earlier than the receiver's `Retry-After`, and never after
 * the delivery's deadline (created + max_age). Pure: time and randomness are passed in.
 */

export interface BackoffPolicy {
  initialMs: number;
  maxMs: number;
}

export type NextAttempt = { at: number } | { giveUp: 'max_age' | 'retry_after_past_max_age' };

export function nextAttempt(p: {
  /** Attempts made so far (≥ 1). */
  attempts: number;
  now: number;
  deadline: number;
  retryAfterMs?: number;
  policy: BackoffPolicy;
  random: () => number;
}): NextAttempt {
  if (p.now >= p.deadline) return { giveUp: 'max_age' };
  const ceiling = Math.min(p.policy.maxMs, p.policy.initialMs * 2 ** Math.min(p.attempts - 1, 40));
  const jittered = Math.floor(p.random() * ceiling);
  if (p.retryAfterMs !== undefined && p.now + p.retryAfterMs > p.deadline) return { giveUp: 'retry_after_past_max_age' };
  const delay = Math.max(jittered, p.retryAfterMs ?? 0);
  // The last attempt is made at the deadline rather than skipped.
  return { at: Math.min(p.now + delay, p.deadline) };
}

/** `Retry-After` as delay-seconds or an HTTP date, in ms from now (0 for a past date); undefined when absent or unreadable. */
export function parseRetryAfter(value: string | null | undefined, now: number): number | undefined {
  if (value === null || value === undefined) return undefined;
  const v = value.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
