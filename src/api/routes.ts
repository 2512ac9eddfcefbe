import { z } from 'zod';
import { notFound } from '../errors.js';
import type { Registry } from '../metrics/index.js';
import { pendingMigrations, type Store } from '../store/index.js';
import type { Writer } from '../writer/index.js';
import { renderDocs } from './docs.js';
import { Health, OpenApiDocument, Readiness, SpanView, Trace } from './responses.js';
import { defineRoute, type RouteTable } from './route.js';

export interface ApiDeps {
  store: Store;
  writer: Writer;
  registry: Registry;
  version: string;
}

const TraceParams = z.object({ traceId: z.string().regex(/^[0-9a-fA-F]{32}$/, 'a trace id is 32 hex digits') }).strict();

/** ClickHouse nanosecond ticks (as a decimal string) to an ISO-8601 UTC time with nanoseconds. */
export function isoFromNanos(nanos: string): string {
  if (!/^\d+$/.test(nanos) || nanos === '0') return '';
  const padded = nanos.padStart(10, '0');
  const ms = Number(padded.slice(0, -6));
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, `.${padded.slice(-9)}Z`);
}

/** Health, readiness, Prometheus metrics, the API's own description, and the first read endpoints (targets, traces). */
export function apiRoutes(table: RouteTable, deps: ApiDeps & { otlpHttpUrl?: () => string | undefined }): void {
  const db = deps.store.database;
  const tags = ['service'];

  defineRoute(
    table,
    { method: 'GET', url: '/healthz', summary: 'The process is up', tags, scope: 'open', responses: { 200: { description: 'up', schema: Health } } },
    async () => ({ status: 'ok', version: deps.version }),
  );

  defineRoute(
    table,
    {
      method: 'GET',
      url: '/readyz',
      summary: 'Ready: the store answers, migrations are applied and writes succeed',
      tags,
      scope: 'open',
      responses: { 200: { description: 'ready', schema: Readiness }, 503: { description: 'not ready, with the problems', schema: Readiness } },
    },
    async ({ reply }) => {
      const problems: string[] = [];
      if (!(await deps.store.ping())) problems.push(`store unreachable (${deps.store.kind}: ${deps.store.location})`);
      else {
        const pending = await pendingMigrations(deps.store).catch(() => ['unknown']);
        if (pending.length > 0) problems.push(`migrations not applied: ${pending.join(', ')}`);
      }
      if (!deps.writer.healthy) problems.push('writes to the store are failing; rows wait in the write-ahead log');
      return reply.code(problems.length ? 503 : 200).send({ status: problems.length ? 'not_ready' : 'ready', problems });
    },
  );

  defineRoute(
    table,
    { method: 'GET', url: '/metrics', summary: "faultline's own metrics (Prometheus text)", tags, scope: 'read', responses: { 200: { description: 'Prometheus text format 0.0.4', contentType: 'text/plain' } } },
    async ({ reply }) => reply.type('text/plain; version=0.0.4').send(deps.registry.render()),
  );

  const document = () => table.registry.document({ version: deps.version, otlpHttpUrl: deps.otlpHttpUrl?.() });
  defineRoute(
    table,
    { method: 'GET', url: '/api/openapi.json', summary: 'This API as an OpenAPI 3.1 document', tags, scope: 'open', responses: { 200: { description: 'this document', schema: OpenApiDocument } } },
    async () => document(),
  );
  defineRoute(
    table,
    { method: 'GET', url: '/api/docs', summary: 'This API as a readable page', tags, scope: 'open', responses: { 200: { description: 'HTML', contentType: 'text/html' } } },
    async ({ reply }) => reply.type('text/html; charset=utf-8').send(renderDocs(document())),
  );

  defineRoute(
    table,
    {
      method: 'GET',
      url: '/api/v1/traces/:traceId',
      summary: "A trace's spans with their events and links",
      tags: ['traces'],
      scope: 'read',
      params: TraceParams,
      paramsErrorCode: 'bad_trace_id',
      responses: { 200: { description: 'the trace', schema: Trace }, 404: { description: 'no spans stored for it' } },
    },
    async ({ params }) => {
      const traceId = params.traceId.toLowerCase();
      const rows = await deps.store.query<SpanRow>(
        `SELECT ${SPAN_COLUMNS} FROM ${db}.spans WHERE trace_id = {traceId:String} ORDER BY ts, span_id`,
        { traceId },
      );
      if (rows.length === 0) throw notFound('trace_not_found', `no spans stored for trace ${traceId}`);
      return { trace_id: traceId, spans: rows.map(spanView) };
    },
  );
}

/** The columns `spanView` needs, for any query over the spans table. */
export const SPAN_COLUMNS = `trace_id, span_id, parent_span_id, trace_state, name, kind, toString(toUnixTimestamp64Nano(ts)) AS start,
  toString(duration_ns) AS duration_ns, status_code, status_message, service, instance, version, host,
  scope_name, scope_version, attributes, resource_attributes,
  arrayMap(t -> toString(toUnixTimestamp64Nano(t)), events.ts) AS event_ts, events.name AS event_name,
  events.attributes AS event_attributes, links.trace_id AS link_trace_id, links.span_id AS link_span_id,
  links.attributes AS link_attributes`;

export interface SpanRow {
  trace_id: string;
  span_id: string;
  parent_span_id: string;
  trace_state: string;
  name: string;
  kind: string;
  start: string;
  duration_ns: string;
  status_code: string;
  status_message: string;
  service: string;
  instance: string;
  version: string;
  host: string;
  scope_name: string;
  scope_version: string;
  attributes: Record<string, string>;
  resource_attributes: Record<string, string>;
  event_ts: string[];
  event_name: string[];
  event_attributes: Record<string, string>[];
  link_trace_id: string[];
  link_span_id: string[];
  link_attributes: Record<string, string>[];
}

export function spanView(r: SpanRow): z.infer<typeof SpanView> {
  const end = (BigInt(r.start) + BigInt(r.duration_ns)).toString();
  return {
    trace_id: r.trace_id,
    span_id: r.span_id,
    parent_span_id: r.parent_span_id,
    trace_state: r.trace_state,
    name: r.name,
    kind: r.kind,
    start_time_unix_nano: r.start,
    end_time_unix_nano: end,
    start_time: isoFromNanos(r.start),
    duration_ns: r.duration_ns,
    status: { code: r.status_code, message: r.status_message },
    target: { service: r.service, instance: r.instance, version: r.version, host: r.host },
    scope: { name: r.scope_name, version: r.scope_version },
    attributes: r.attributes,
    resource_attributes: r.resource_attributes,
    events: r.event_ts.map((ts, i) => ({
      time_unix_nano: ts,
      time: isoFromNanos(ts),
      name: r.event_name[i],
      attributes: r.event_attributes[i],
    })),
    links: r.link_trace_id.map((t, i) => ({ trace_id: t, span_id: r.link_span_id[i], attributes: r.link_attributes[i] })),
  };
}
