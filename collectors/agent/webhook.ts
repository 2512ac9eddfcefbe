/**
 * Verifying a Standard Webhooks request (https://www.standardwebhooks.com), written from the specification
 * on the receiving side and independent of faultline's signer, so a bug in one is not hidden by the other.
 * The signed content is `<webhook-id>.<webhook-timestamp>.<raw body>`; `webhook-signature` holds one or more
 * space-separated `v1,<base64 HMAC-SHA256>` entries (one per secret the sender holds during a rotation).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/** The key bytes of a `whsec_<base64>` secret (24–64 bytes, as faultline accepts), or undefined. */
export function webhookKey(secret: string): Buffer | undefined {
  const m = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(secret);
  if (!m || m[1].length % 4 !== 0) return undefined;
  const key = Buffer.from(m[1], 'base64');
  return key.length >= 24 && key.length <= 64 ? key : undefined;
}

export interface WebhookHeaders {
  id?: string;
  timestamp?: string;
  signature?: string;
}

export type Verdict = { ok: true; id: string } | { ok: false; code: 'missing_headers' | 'stale_timestamp' | 'bad_signature'; message: string };

/**
 * Accepts the request when a `v1` entry matches the body under one of `keys` and the timestamp is within
 * `toleranceMs` of `nowMs` either way. The timestamp is checked too because the signature covers it: an
 * old request captured and sent again fails here, and one sent again within the tolerance is a replay the
 * caller catches by its `webhook-id`.
 */
export function verifyWebhook(keys: Buffer[], headers: WebhookHeaders, body: Buffer, nowMs: number, toleranceMs: number): Verdict {
  const { id, timestamp, signature } = headers;
  if (!id || !timestamp || !signature) return { ok: false, code: 'missing_headers', message: 'webhook-id, webhook-timestamp and webhook-signature headers are required' };
  if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, code: 'stale_timestamp', message: `webhook-timestamp "${timestamp.slice(0, 40)}" is not whole seconds since 1970` };
  const skewMs = Math.abs(nowMs - Number(timestamp) * 1000);
  if (skewMs > toleranceMs)
    return { ok: false, code: 'stale_timestamp', message: `webhook-timestamp is ${Math.round(skewMs / 1000)} s from this host's clock (tolerance ${Math.round(toleranceMs / 1000)} s)` };
  const given = signature
    .split(' ')
    .filter((entry) => entry.startsWith('v1,'))
    .map((entry) => Buffer.from(entry.slice(3), 'base64'));
  const content = Buffer.concat([Buffer.from(`${id}.${timestamp}.`), body]);
  for (const key of keys) {
    const expected = createHmac('sha256', key).update(content).digest();
    if (given.some((g) => g.length === expected.length && timingSafeEqual(g, expected))) return { ok: true, id };
  }
  return { ok: false, code: 'bad_signature', message: 'no v1 signature matches the body with this agent\'s secrets' };
}
