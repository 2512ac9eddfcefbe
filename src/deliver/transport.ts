import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
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
  body: string;
  headers: Record<string, string>;
  timeoutMs: number;
  /** Aborted at shutdown. */
  stop: AbortSignal;
}

/** Sends requests to one endpoint; close() lets go of its idle connections (at shutdown). */
export interface Transport {
  send(req: Request): Promise<Sent>;
  close(): void;
}

/** How a webhook travels, by URL scheme: a new transport is a new entry, not a new branch. */
export const TRANSPORTS: Record<string, (url: URL, maxSockets: number) => Transport> = {
  'http:': (url, maxSockets) => nodeTransport(http, url, maxSockets),
  'https:': (url, maxSockets) => nodeTransport(https, url, maxSockets),
};

/**
 * POSTs over node:http(s) with a keep-alive agent of the endpoint's own (its sockets are never shared with
 * another endpoint). One timer per attempt covers connect, headers and body. Redirects are answers like
 * any other: node:http never follows them.
 */
function nodeTransport(mod: typeof http | typeof https, url: URL, maxSockets: number): Transport {
  const agent = new mod.Agent({ keepAlive: true, maxSockets, scheduling: 'lifo' });
  const send = (req: Request) =>
    new Promise<Sent>((resolve) => {
      const started = performance.now();
      let status = 0;
      let headers: http.IncomingHttpHeaders = {};
      const chunks: Buffer[] = [];
      let size = 0;
      let settled = false;
      const finish = (extra: Partial<Sent> = {}) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        req.stop.removeEventListener('abort', onStop);
        const one = (h: string | string[] | undefined) => (Array.isArray(h) ? h[0] : h) ?? null;
        resolve({
          status,
          latencyMs: performance.now() - started,
          excerpt: new TextDecoder().decode(Buffer.concat(chunks).subarray(0, EXCERPT_BYTES)),
          retryAfter: one(headers['retry-after']),
          location: one(headers.location),
          ...extra,
        });
      };
      const request = mod.request(url, { method: 'POST', agent, headers: { ...req.headers, 'content-length': String(Buffer.byteLength(req.body)) } }, (res) => {
        status = res.statusCode ?? 0;
        headers = res.headers;
        res.on('data', (c: Buffer) => {
          if (size < EXCERPT_BYTES) chunks.push(c);
          size += c.length;
        });
        res.on('end', () => finish());
        // The status already decided the outcome; a body cut short only shortens the excerpt.
        res.on('error', () => finish());
        res.on('aborted', () => finish());
      });
      const timer = setTimeout(() => {
        request.destroy();
        finish(status ? {} : { status: 0, failure: { kind: 'timeout', message: `no response within ${req.timeoutMs} ms` } });
      }, req.timeoutMs);
      const onStop = () => {
        request.destroy();
        finish({ aborted: true });
      };
      if (req.stop.aborted) return onStop();
      req.stop.addEventListener('abort', onStop, { once: true });
      request.on('error', (err: NodeJS.ErrnoException) => finish({ status: 0, failure: { kind: 'network', message: networkMessage(err) } }));
      request.end(req.body);
    });
  return { send, close: () => agent.destroy() };
}

/** The socket-level reason (ECONNREFUSED, a reset, DNS, TLS ...), never the URL's path or query. */
function networkMessage(err: NodeJS.ErrnoException): string {
  const code = err.code;
  const message = err.message.replace(/https?:\/\/\S+/g, (u) => {
    try {
      return new URL(u).origin;
    } catch {
      return '<url>';
    }
  });
  return code && !message.includes(code) ? `${code}: ${message}` : message;
}
