import type { FastifyInstance, FastifyReply, FastifyRequest, HTTPMethods } from 'fastify';
import { z } from 'zod';
import { FaultlineError, badRequest } from '../errors.js';
import type { Auth, Caller, Requirement } from './auth.js';
import type { OpenApiRegistry } from './openapi.js';

type Method = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD';

/** A documented response of a route (the error responses are added for every route). */
export interface ResponseSpec {
  description: string;
  /** The JSON body's schema (documented for each JSON content type). */
  schema?: z.ZodType;
  /** Defaults to application/json; several when the request chooses (format=, Content-Type). */
  contentType?: string | string[];
}

/** What a route is: its address, its documentation, who may call it, and the schemas of its input. */
export interface RouteSpec<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  method: Method | Method[];
  /** fastify syntax: `/api/v1/faults/:id`. */
  url: string;
  summary: string;
  description?: string;
  tags: string[];
  scope: Requirement;
  params?: P;
  query?: Q;
  /** A JSON body, validated. */
  body?: B;
  /** A body the handler reads raw (telemetry, a job's log): documented by its content types only. */
  rawBody?: { contentTypes: string[]; description: string };
  responses?: Record<number, ResponseSpec>;
  /** Error code for invalid path parameters (default `bad_parameters`), kept stable for clients. */
  paramsErrorCode?: string;
  /** Admission control (ingest routes), after the scope check and before the body is read. */
  admission?: {
    /** Throws a FaultlineError (429/503 with Retry-After) to refuse; returns what to call once the request is answered or its connection closes. */
    enter: (req: FastifyRequest) => () => void;
    /** Answers a refusal in the receiver's own format (OTLP's); without it, in the API's error shape. */
    refuse?: (err: unknown, req: FastifyRequest, reply: FastifyReply) => FastifyReply;
  };
}

export interface RouteInput<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType> {
  params: z.infer<P>;
  query: z.infer<Q>;
  body: z.infer<B>;
  /** Who called (undefined on open routes). */
  caller: Caller | undefined;
  req: FastifyRequest;
  reply: FastifyReply;
}

/** The fastify instance routes are added to, the shared OpenAPI registry, auth, and which listener this is. */
export interface RouteTable {
  app: FastifyInstance;
  registry: OpenApiRegistry;
  auth: Auth;
  /** `http` (API, ping, dashboard) or `otlp_http`: the OpenAPI document says which port serves a path. */
  listener: 'http' | 'otlp_http';
}

const Empty = z.object({}).strict();

/**
 * Adds a route: the scope is checked before the body is read (401/403), then params, query and body are
 * validated by their zod schemas (400 naming each bad field), then the handler runs with the parsed values.
 * The same schemas document the route in the OpenAPI registry.
 */
export function defineRoute<P extends z.ZodType = typeof Empty, Q extends z.ZodType = typeof Empty, B extends z.ZodType = typeof Empty>(
  table: RouteTable,
  spec: RouteSpec<P, Q, B>,
  handler: (input: RouteInput<P, Q, B>) => unknown,
): void {
  const { auth } = table;
  table.registry.add(spec, table.listener);
  const callers = new WeakMap<FastifyRequest, Caller | undefined>();
  table.app.route({
    method: spec.method as HTTPMethods | HTTPMethods[],
    url: spec.url,
    onRequest: async (req, reply) => {
      const caller = auth.require(req, spec.scope);
      if (caller?.via === 'cookie' && req.method !== 'GET' && req.method !== 'HEAD') sameOrigin(req);
      callers.set(req, caller);
      if (!spec.admission) return;
      let release: () => void;
      try {
        release = spec.admission.enter(req);
      } catch (err) {
        if (spec.admission.refuse) return spec.admission.refuse(err, req, reply);
        throw err;
      }
      reply.raw.once('close', release);
    },
    handler: async (req, reply) => {
      const params = parse(spec.params ?? Empty, req.params, 'path parameters', spec.paramsErrorCode);
      const query = parse(spec.query ?? Empty, req.query, 'query');
      const body = spec.body ? parse(spec.body, jsonBody(req.body), 'body') : spec.rawBody ? req.body : undefined;
      return handler({ params, query, body, caller: callers.get(req), req, reply } as RouteInput<P, Q, B>);
    },
  });
}

/**
 * A change made with the browser's session cookie must come from faultline's own pages: another site's
 * form cannot borrow the cookie (SameSite=Strict keeps it from most; this refuses what is left).
 */
function sameOrigin(req: FastifyRequest): void {
  const origin = req.headers.origin;
  if (origin === undefined) return;
  let host = '';
  try {
    host = new URL(origin).host;
  } catch {
    // An unparseable Origin is not ours.
  }
  if (host !== req.headers.host) throw new FaultlineError('cross_origin', 403, `a change from another origin (${origin}) with the session cookie is refused`);
}

/** Parses input with a zod schema; a failure is a 400 naming each bad field. */
export function parse<T extends z.ZodType>(schema: T, input: unknown, what: string, code = 'bad_parameters'): z.infer<T> {
  const r = schema.safeParse(input ?? {});
  if (r.success) return r.data;
  const detail = r.error.issues
    .map((i) => (i.code === 'unrecognized_keys' ? `unknown parameter(s) ${i.keys.join(', ')}` : `${i.path.join('.') || what}: ${i.message}`))
    .join('; ');
  throw badRequest(code, `invalid ${what}: ${detail}`);
}

/** Request bodies arrive raw (see createApp); JSON ones are parsed here. */
export function jsonBody(body: unknown): unknown {
  if (!Buffer.isBuffer(body) || body.length === 0) return {};
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new FaultlineError('bad_json', 400, `the body is not JSON: ${(err as Error).message}`);
  }
}
