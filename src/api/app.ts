import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Socket } from 'node:net';
import { gunzip } from 'node:zlib';
import { promisify } from 'node:util';
import { FaultlineError, isClickHouseError, isStoreUnavailable } from '../errors.js';
import { ConfigSchema, type Config } from '../config/index.js';
import type { Logger } from '../log/index.js';
import type { IngestMetrics } from '../metrics/index.js';

const gunzipAsync = promisify(gunzip);

export interface AppOptions {
  maxBodyBytes: number;
  maxDecompressedBytes: number;
  log: Logger;
  metrics: IngestMetrics;
  timeouts?: ClientTimeouts;
  /**
   * Whether the store is prepared (reachable, migrations applied). The API listens before it is: until
   * then any failed read of the store answers 503 store_not_ready, not 500. Always prepared when absent.
   */
  storeReady?: () => boolean;
}

/** How long a client may take (config `server.*_timeout_ms`); slow clients (slowloris) are cut off. */
export interface ClientTimeouts {
  headersMs: number;
  requestMs: number;
  idleMs: number;
  keepAliveMs: number;
}

/** The timeouts of the `server` config section. */
export function clientTimeouts(server: Config['server']): ClientTimeouts {
  return { headersMs: server.headers_timeout_ms, requestMs: server.request_timeout_ms, idleMs: server.idle_timeout_ms, keepAliveMs: server.keep_alive_timeout_ms };
}


/** The JSON shape of every error faultline answers with. */
export interface ErrorBody {
  error: { code: string; message: string };
}

/**
 * A fastify instance with faultline's conventions: every body read raw (receivers decide how to parse),
 * gzip request bodies inflated with a cap (gzip bombs answer 413), and one error shape for every failure.
 */
export function createApp(opts: AppOptions): FastifyInstance {
  const t = opts.timeouts ?? clientTimeouts(ConfigSchema.parse({}).server);
  const app = Fastify({
    logger: false,
    bodyLimit: opts.maxBodyBytes,
    // Trace ids and slugs are case-sensitive; keep URLs as sent.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    // fastify's defaults let a client trickle a request forever (no request or idle timeout).
    connectionTimeout: t.idleMs,
    requestTimeout: t.requestMs,
    keepAliveTimeout: t.keepAliveMs,
    // Node checks the header and request deadlines on this tick (30 s by default: a slow client got 30 s more).
    http: { headersTimeout: t.headersMs, connectionsCheckingInterval: Math.min(1000, t.headersMs) },
    // A URL fastify cannot decode (%FF, …) gets the same error shape as everything else.
    frameworkErrors: (err, req, reply) => sendError(req, reply, new FaultlineError('bad_url', 400, err.message), opts),
    clientErrorHandler: (err, socket) => answerClientError(err as NodeJS.ErrnoException, socket, opts),
  });
  const routes: { method: string; url: string }[] = [];
  registeredRoutes.set(app, routes);
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) routes.push({ method: String(method), url: r.url });
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (req, body, done) => {
    inflate(req, body as Buffer, opts.maxDecompressedBytes).then(
      (b) => done(null, b),
      (err: Error) => done(err),
    );
  });
  app.setErrorHandler((err, req, reply) => sendError(req, reply, toFaultlineError(err, opts.storeReady?.() ?? true), opts));
  app.setNotFoundHandler((req, reply) =>
    sendError(req, reply, new FaultlineError('not_found', 404, `no route for ${req.method} ${req.url.split('?')[0]}`), opts),
  );
  return app;
}

const registeredRoutes = new WeakMap<FastifyInstance, { method: string; url: string }[]>();

/** Every route added to an app made by `createApp` (whether or not through the route layer). */
export function routesOf(app: FastifyInstance): readonly { method: string; url: string }[] {
  return registeredRoutes.get(app) ?? [];
}

async function inflate(req: FastifyRequest, body: Buffer, max: number): Promise<Buffer> {
  const encoding = String(req.headers['content-encoding'] ?? 'identity').toLowerCase();
  if (encoding === 'identity' || encoding === '') return body;
  if (encoding !== 'gzip')
    throw new FaultlineError('unsupported_encoding', 415, `Content-Encoding "${encoding}" is not supported; send gzip or identity`);
  try {
    return await gunzipAsync(body, { maxOutputLength: max });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE' || err instanceof RangeError)
      throw new FaultlineError('body_too_large', 413, `the gzip body inflates past the ${max}-byte limit (server.max_decompressed_bytes)`);
    throw new FaultlineError('bad_gzip', 400, `the body is not valid gzip: ${(err as Error).message}`);
  }
}

/**
 * Maps fastify's own errors (body limit, media type, ...) to coded errors, and a store that does not answer
 * (or, before `storeReady`, any failure of the store) to 503 with Retry-After; unknown errors become 500.
 */
export function toFaultlineError(err: unknown, storeReady = true): FaultlineError {
  if (err instanceof FaultlineError) return err;
  if (!storeReady && (isClickHouseError(err) || isStoreUnavailable(err)))
    return withCause(new FaultlineError('store_not_ready', 503, 'faultline is still preparing its store (connecting, applying migrations); retry in a moment (GET /readyz says why)', 1), err);
  if (isStoreUnavailable(err))
    return withCause(new FaultlineError('store_unavailable', 503, 'the store did not answer in time or is unreachable; retry in a moment (GET /readyz says why)', 5), err);
  const e = err as { code?: string; statusCode?: number; message?: string };
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new FaultlineError('body_too_large', 413, `the body is larger than the limit (server.max_body_bytes): ${e.message}`);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new FaultlineError('unsupported_media_type', 415, e.message ?? 'unsupported media type');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new FaultlineError('bad_request', 400, e.message ?? 'bad request');
  }
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500) return new FaultlineError('bad_request', e.statusCode, e.message ?? 'bad request');
  return withCause(new FaultlineError('internal', 500, 'internal error; see the faultline log'), err);
}

function withCause(e: FaultlineError, cause: unknown): FaultlineError {
  e.cause = cause;
  return e;
}

function sendError(req: FastifyRequest, reply: FastifyReply, err: FaultlineError, opts: AppOptions): FastifyReply {
  if (err.status >= 500 && err.code === 'internal')
    opts.log.error('request failed', { method: req.method, url: req.url, error: err.cause ?? err, stack: opts.log.level === 'debug' ? (err.cause as Error)?.stack : undefined });
  // Before the store is prepared its start-up retries are logged already; an outage later is worth a line per request.
  if (err.code === 'store_unavailable') opts.log.warn('request failed: store unavailable', { method: req.method, url: req.url, error: err.cause });
  if (err.status >= 400 && err.status < 500 && err.status !== 429 && err.status !== 404)
    opts.metrics.badRequests.inc({ endpoint: routeLabel(req), code: err.code });
  if (err.retryAfterS !== undefined) void reply.header('retry-after', String(err.retryAfterS));
  if (err.status === 401) void reply.header('www-authenticate', 'Bearer realm="faultline"');
  const body: ErrorBody = { error: { code: err.code, message: err.message } };
  return reply.code(err.status).type('application/json').send(body);
}

/**
 * Errors before a request exists (Node's parser, timeouts): answered on the socket in faultline's shape,
 * then the connection is closed.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Socket, opts: AppOptions): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  const [status, code, message] =
    err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? [408, 'request_timeout', 'the request did not arrive in time (server.headers_timeout_ms / server.request_timeout_ms)']
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? [431, 'headers_too_large', 'the request headers are larger than the limit (16 KiB)']
        : [400, 'bad_request', `malformed HTTP request (${err.code ?? err.message})`];
  opts.metrics.badRequests.inc({ endpoint: 'unmatched', code });
  const body = JSON.stringify({ error: { code, message } });
  if (socket.writable)
    socket.write(`HTTP/1.1 ${status} ${status === 408 ? 'Request Timeout' : status === 431 ? 'Request Header Fields Too Large' : 'Bad Request'}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
  socket.destroy();
}

/** A small fixed label set for metrics: the route pattern, never the raw URL. */
export function routeLabel(req: FastifyRequest): string {
  return req.routeOptions?.url ?? 'unmatched';
}
