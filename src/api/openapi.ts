import { z } from 'zod';
import { describe as describeScope, type Requirement } from './auth.js';
import type { ResponseSpec, RouteSpec } from './route.js';

type JsonSchema = Record<string, unknown>;

/** One documented operation, as the registry keeps it. */
export interface Operation {
  method: string;
  /** OpenAPI syntax: `/api/v1/faults/{id}`. */
  path: string;
  listener: 'http' | 'otlp_http';
  summary: string;
  description?: string;
  tags: string[];
  scope: Requirement;
  parameters: Parameter[];
  requestBody?: { contentTypes: string[]; description?: string; schema?: JsonSchema };
  responses: Record<number, ResponseSpec>;
}

export interface Parameter {
  name: string;
  in: 'path' | 'query';
  required: boolean;
  description?: string;
  schema: JsonSchema;
}

/** Every route defined through `defineRoute`, in the order they were added. */
export class OpenApiRegistry {
  readonly operations: Operation[] = [];

  add(spec: RouteSpec<z.ZodType, z.ZodType, z.ZodType>, listener: Operation['listener']): void {
    const methods = (Array.isArray(spec.method) ? spec.method : [spec.method]).filter((m) => m !== 'HEAD');
    const path = spec.url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const parameters = [...parametersOf(spec.params, 'path'), ...parametersOf(spec.query, 'query')];
    const requestBody = spec.body
      ? { contentTypes: ['application/json'], schema: jsonSchema(spec.body) }
      : spec.rawBody && { contentTypes: spec.rawBody.contentTypes, description: spec.rawBody.description };
    for (const method of methods)
      this.operations.push({
        method: method.toLowerCase(),
        path,
        listener,
        summary: spec.summary,
        description: spec.description,
        tags: spec.tags,
        scope: spec.scope,
        parameters,
        requestBody,
        responses: spec.responses ?? { 200: { description: 'OK' } },
      });
  }

  /** The OpenAPI 3.1 document. Paths served by the OTLP/HTTP listener say so with their own `servers`. */
  document(opts: { version: string; otlpHttpUrl?: string }): JsonSchema {
    const paths: Record<string, Record<string, unknown>> = {};
    for (const op of this.operations) {
      const item = (paths[op.path] ??= {});
      if (op.listener === 'otlp_http' && opts.otlpHttpUrl) item.servers = [{ url: opts.otlpHttpUrl, description: 'the OTLP/HTTP listener (server.otlp_http_port)' }];
      item[op.method] = operationObject(op);
    }
    return {
      openapi: '3.1.0',
      info: {
        title: 'faultline API',
        version: opts.version,
        description:
          'Faults, signatures, targets, checks, supervision, silences, deliveries and rules of a faultline instance, plus its ingest endpoints. ' +
          'Errors share one shape: {"error": {"code", "message"}}. Every operation names the token scope it needs (x-faultline-scope): ingest, read or admin (admin implies read).',
      },
      servers: [{ url: '/', description: 'the HTTP listener (server.http_port)' }],
      tags: [...new Set(this.operations.flatMap((o) => o.tags))].map((name) => ({ name })),
      paths,
      components: {
        schemas: { Error: ERROR_SCHEMA },
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'An API token from auth.tokens (scopes ingest, read, admin; admin implies read).' },
          cookie: { type: 'apiKey', in: 'cookie', name: 'faultline_token', description: 'The same token, set by the dashboard login.' },
        },
      },
    };
  }
}

const ERROR_SCHEMA: JsonSchema = {
  type: 'object',
  required: ['error'],
  properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' } } } },
};

const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } });

function operationObject(op: Operation): JsonSchema {
  const responses: Record<string, unknown> = {};
  for (const [status, r] of Object.entries(op.responses))
    responses[status] = r.schema || r.contentType ? { description: r.description, content: contentOf(r) } : { description: r.description };
  if (op.parameters.length || op.requestBody) responses['400'] ??= errorResponse('invalid input: the message names each bad field');
  if (op.scope !== 'open') {
    responses['401'] = errorResponse('no token, or an unknown one (WWW-Authenticate: Bearer)');
    responses['403'] = errorResponse(`the token lacks scope ${describeScope(op.scope)}`);
  }
  return {
    operationId: `${op.method}${op.path.replace(/[{}]/g, '').replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? '').toUpperCase())}`,
    summary: op.summary,
    ...(op.description ? { description: op.description } : {}),
    tags: op.tags,
    'x-faultline-scope': describeScope(op.scope),
    security: op.scope === 'open' ? [] : [{ bearer: [] }, { cookie: [] }],
    parameters: op.parameters.map((p) => ({ name: p.name, in: p.in, required: p.required, ...(p.description ? { description: p.description } : {}), schema: p.schema })),
    ...(op.requestBody
      ? {
          requestBody: {
            required: true,
            ...(op.requestBody.description ? { description: op.requestBody.description } : {}),
            content: Object.fromEntries(op.requestBody.contentTypes.map((t) => [t, op.requestBody!.schema ? { schema: op.requestBody!.schema } : {}])),
          },
        }
      : {}),
    responses,
  };
}

function contentOf(r: ResponseSpec): JsonSchema {
  const types = [r.contentType ?? 'application/json'].flat();
  return Object.fromEntries(types.map((t) => [t, r.schema && /\bjson\b/.test(t) ? { schema: jsonSchema(r.schema, 'output') } : {}]));
}

/** JSON Schema (2020-12, what OpenAPI 3.1 uses) of what a client sends (`input`) or receives (`output`). */
export function jsonSchema(schema: z.ZodType, io: 'input' | 'output' = 'input'): JsonSchema {
  const { $schema: _, ...rest } = z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as JsonSchema;
  return rest;
}

function parametersOf(schema: z.ZodType | undefined, where: 'path' | 'query'): Parameter[] {
  if (!schema) return [];
  const js = jsonSchema(schema);
  const props = (js.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((js.required ?? []) as string[]);
  return Object.entries(props).map(([name, s]) => {
    const { description, ...rest } = s;
    return { name, in: where, required: where === 'path' || required.has(name), description: description as string | undefined, schema: rest };
  });
}
