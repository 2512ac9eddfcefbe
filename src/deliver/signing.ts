import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com): HMAC-SHA256 over
 * `msg_id.timestamp.body` with the secret's bytes (base64 after the `whsec_` prefix), sent as
 * `webhook-signature: v1,<base64>` — one entry per active secret, separated by spaces, so a receiver
 * can rotate its secret without a window in which valid webhooks fail.
 */

const PREFIX = 'whsec_';
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** The secret's key bytes, or undefined when it is not `whsec_` + base64 of 24-64 bytes. */
export function secretKey(secret: string): Buffer | undefined {
  if (!secret.startsWith(PREFIX)) return undefined;
  const b64 = secret.slice(PREFIX.length);
  if (!BASE64.test(b64) || b64.length % 4 !== 0) return undefined;
  const key = Buffer.from(b64, 'base64');
  return key.length >= 24 && key.length <= 64 ? key : undefined;
}

export const isWebhookSecret = (s: string): boolean => secretKey(s) !== undefined;

/** One `v1,<base64>` entry per key, space-separated: the `webhook-signature` header value. */
export function sign(keys: Buffer[], msgId: string, timestampS: number, body: string): string {
  const content = `${msgId}.${timestampS}.${body}`;
  return keys.map((k) => `v1,${createHmac('sha256', k).update(content).digest('base64')}`).join(' ');
}

export interface Verification {
  ok: boolean;
  reason?: string;
}

/**
 * What a receiver does (used by the tests and useful as a reference): the signature header must hold a
 * `v1` entry made with one of the receiver's secrets, and the timestamp be within `toleranceS` of now.
 */
export function verify(
  secrets: string[],
  headers: { id?: string; timestamp?: string; signature?: string },
  body: string,
  nowS = Math.floor(Date.now() / 1000),
  toleranceS = 300,
): Verification {
  if (!headers.id || !headers.timestamp || !headers.signature) return { ok: false, reason: 'missing webhook-id, webhook-timestamp or webhook-signature' };
  const ts = Number(headers.timestamp);
  if (!/^\d+$/.test(headers.timestamp) || Math.abs(nowS - ts) > toleranceS) return { ok: false, reason: 'timestamp outside the tolerance' };
  const given = headers.signature
    .split(' ')
    .filter((e) => e.startsWith('v1,'))
    .map((e) => Buffer.from(e.slice(3), 'base64'));
  for (const secret of secrets) {
    const key = secretKey(secret);
    if (!key) continue;
    const expected = Buffer.from(sign([key], headers.id, ts, body).slice(3), 'base64');
    if (given.some((g) => g.length === expected.length && timingSafeEqual(g, expected))) return { ok: true };
  }
  return { ok: false, reason: 'no signature matches' };
}
