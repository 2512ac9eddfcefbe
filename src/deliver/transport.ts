import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../paths.js';

const VERSION: string = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')).version;
export const USER_AGENT = `faultline/${VERSION} (webhooks)`;

/** Bytes of a response body kept with the attempt, for a person reading why it failed. */
export const EXCERPT_BYTES = 1024;

export interface Sent {
  /** HTTP status, 0 when no response came back. */
  status: number;
  latencyMs: number;
  excerpt: string;
  retryAfter: string | null;
  location: string | null;
  /** Set when no response came back: the class and a message without the URL's path or query. */
  failure?: { kind: 'timeout' | 'network'; message: string };
  /** The attempt was cut short by shutdown: not an outcome, the delivery stays pending. */
  aborted?: boolean;
}

export interface Request {
  url: string;
  body: string;
  headers: Record<string, string>;
  timeoutMs: number;
  /** Aborted at shutdown. */
  stop: AbortSignal;
}

/** How a webhook travels, by URL scheme: a new transport is a new entry, not a new branch. */
export type Transport = (req: Request) => Promise<Sent>;

export const TRANSPORTS: Record<string, Transport> = { 'http:': httpPost, 'https:': httpPost };

/**
 * One POST with a fresh timeout covering connect, headers and the body excerpt; redirects are returned,
 * never followed.
 */
async function httpPost(req: Request): Promise<Sent> {
  const timeout = AbortSignal.timeout(req.timeoutMs);
  const signal = AbortSignal.any([timeout, req.stop]);
  const started = performance.now();
  try {
    const res = await fetch(req.url, { method: 'POST', body: req.body, headers: req.headers, redirect: 'manual', signal });
    const excerpt = await readExcerpt(res);
    return {
      status: res.status,
      latencyMs: performance.now() - started,
      excerpt,
      retryAfter: res.headers.get('retry-after'),
      location: res.headers.get('location'),
    };
  } catch (err) {
    const latencyMs = performance.now() - started;
    const base = { status: 0, latencyMs, excerpt: '', retryAfter: null, location: null };
    if (req.stop.aborted) return { ...base, aborted: true };
    if (timeout.aborted) return { ...base, failure: { kind: 'timeout', message: `no response within ${req.timeoutMs} ms` } };
    return { ...base, failure: { kind: 'network', message: networkMessage(err) } };
  }
}

async function readExcerpt(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    while (size < EXCERPT_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.length;
    }
  } catch {
    // The status already decided the outcome; a body cut short (timeout, reset) only shortens the excerpt.
  } finally {
    reader.cancel().catch(() => undefined);
  }
  return new TextDecoder().decode(Buffer.concat(chunks).subarray(0, EXCERPT_BYTES));
}

/** undici reports "fetch failed" with the real reason in `cause` (ECONNREFUSED, a reset, DNS, TLS ...). */
function networkMessage(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } })?.cause;
  const code = cause?.code ?? (err as NodeJS.ErrnoException)?.code;
  const message = cause?.message ?? (err as Error)?.message ?? String(err);
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
