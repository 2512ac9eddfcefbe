import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { defineRoute, type RouteTable } from '../../api/route.js';
import { FaultlineError, badRequest } from '../../errors.js';
import { toFaultlineError, type ErrorBody } from '../../api/app.js';
import { declaredBytes } from '../admission.js';
import type { Encoding, IngestPipeline } from '../pipeline.js';
import { encodeResponse, encodeStatus, responseObject, type Signal } from './codec.js';

const PROTOBUF = 'application/x-protobuf';
const JSON_TYPE = 'application/json';

function encodingOf(req: FastifyRequest): Encoding {
  const type = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
  if (type === PROTOBUF || type === 'application/protobuf') return 'protobuf';
  if (type === JSON_TYPE) return 'json';
  throw new FaultlineError(
    'unsupported_media_type',
    415,
    `Content-Type "${type || '(none)'}" is not supported; OTLP/HTTP takes ${PROTOBUF} or ${JSON_TYPE}`,
  );
}

/**
 * OTLP/HTTP receiver: POST /v1/traces, /v1/logs, /v1/metrics. Responses follow the spec: the
 * Export*ServiceResponse (with partial_success) on success, google.rpc.Status (protobuf) or a JSON error
 * object otherwise, in the request's encoding; 429/503 carry Retry-After.
 */
/** The JSON form of an Export…ServiceResponse: empty, or partialSuccess with the count rejected. */
const exportResponse = (rejectedField: string) =>
  z.object({
    partialSuccess: z.object({ [rejectedField]: z.number().describe('records rejected'), errorMessage: z.string() }).optional().describe('present when some records were rejected'),
  });
const REJECTED = { traces: 'rejectedSpans', logs: 'rejectedLogRecords', metrics: 'rejectedDataPoints' } as const;

export function otlpHttpRoutes(table: RouteTable, pipeline: IngestPipeline): void {
  for (const signal of ['traces', 'logs', 'metrics'] as const)
    defineRoute(
      table,
      {
        method: 'POST',
        url: `/v1/${signal}`,
        summary: `OTLP/HTTP ${signal} export`,
        description: 'Acknowledged once the records are durable; 429/503 with Retry-After, before the body is read, when the store falls behind or faultline is overloaded. gzip bodies are inflated.',
        tags: ['ingest'],
        scope: 'ingest',
        // Spans and metric points are shed before log records, which carry heartbeats and exits.
        admission: {
          enter: (req) => pipeline.enter(signal === 'logs' ? 'evidence' : 'bulk', declaredBytes(req.headers)),
          refuse: (err, req, reply) => answerError(signal, encodingOr(req, 'json'), err, reply, pipeline),
        },
        rawBody: { contentTypes: [PROTOBUF, JSON_TYPE], description: `an Export${signal[0].toUpperCase()}${signal.slice(1)}ServiceRequest` },
        responses: {
          200: {
            description: `Export${signal[0].toUpperCase()}${signal.slice(1)}ServiceResponse (partial_success when some records were rejected), in the request's encoding`,
            contentType: [PROTOBUF, JSON_TYPE],
            schema: exportResponse(REJECTED[signal]),
          },
        },
      },
      ({ req, reply }) => handle(signal, req, reply, pipeline),
    );
}

async function handle(signal: Signal, req: FastifyRequest, reply: FastifyReply, pipeline: IngestPipeline) {
  let encoding: Encoding = 'json';
  try {
    encoding = encodingOf(req);
    if (!Buffer.isBuffer(req.body)) throw badRequest('empty_body', 'the request has no body');
    const result = await pipeline.otlp(signal, req.body, encoding);
    return encoding === 'protobuf'
      ? reply.type(PROTOBUF).send(Buffer.from(encodeResponse(signal, result)))
      : reply.type(JSON_TYPE).send(responseObject(signal, result));
  } catch (err) {
    return answerError(signal, encoding, err, reply, pipeline);
  }
}

/** The request's encoding, or `fallback` when its Content-Type is not one OTLP/HTTP takes. */
function encodingOr(req: FastifyRequest, fallback: Encoding): Encoding {
  try {
    return encodingOf(req);
  } catch {
    return fallback;
  }
}

/** An error answered as OTLP/HTTP says: google.rpc.Status in the request's encoding, Retry-After on 429/503. */
function answerError(signal: Signal, encoding: Encoding, err: unknown, reply: FastifyReply, pipeline: IngestPipeline): FastifyReply {
  const e = toFaultlineError(err);
  if (e.code === 'internal') throw err;
  if (e.status < 500 && e.status !== 429) pipeline.metrics.badRequests.inc({ endpoint: `/v1/${signal}`, code: e.code });
  if (e.retryAfterS !== undefined) void reply.header('retry-after', String(e.retryAfterS));
  reply.code(e.status);
  if (encoding === 'protobuf') return reply.type(PROTOBUF).send(Buffer.from(encodeStatus(grpcCodeOf(e.status), e.message)));
  const body: ErrorBody & { code: number; message: string } = {
    // google.rpc.Status fields first (what OTLP/JSON clients read), faultline's shape alongside.
    code: grpcCodeOf(e.status),
    message: e.message,
    error: { code: e.code, message: e.message },
  };
  return reply.type(JSON_TYPE).send(body);
}

/** google.rpc.Code for an HTTP status (used by the OTLP/HTTP error body and by the gRPC receiver). */
export function grpcCodeOf(status: number): number {
  if (status === 400 || status === 415) return 3; // INVALID_ARGUMENT
  if (status === 413) return 8; // RESOURCE_EXHAUSTED
  if (status === 429 || status === 503) return 14; // UNAVAILABLE: retryable per the OTLP spec
  if (status === 401) return 16;
  if (status === 403) return 7;
  return 13; // INTERNAL
}
