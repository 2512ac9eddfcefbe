import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { badRequest, notFound } from '../errors.js';
import type { Registry } from '../metrics/index.js';
import { pendingMigrations, type Store } from '../store/index.js';
import type { Writer } from '../writer/index.js';

export interface ApiDeps {
  store: Store;
  writer: Writer;
  registry: Registry;
  version: string;
}

const TraceId = z.string().regex(/^[0-9a-fA-F]{32}$/, 'a trace id is 32 hex digits');

/** ClickHouse nanosecond ticks (as a decimal string) to an ISO-8601 UTC time with nanoseconds. */
export function isoFromNanos(nanos: string): string {
  if (!/^\d+$/.test(nanos) || nanos === '0') return '';
  const padded = nanos.padStart(10, '0');
  const ms = Number(padded.slice(0, -6));
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, `.${padded.slice(-9)}Z`);
}

/** Health, readiness, Prometheus metrics and the first read endpoints (targets, traces). */
export function apiRoutes(app: FastifyInstance, deps: ApiDeps): void {
  const db = deps.store.database;

  app.get('/healthz', async () => ({ status: 'ok', version: deps.version }));

  app.get('/readyz', async (_req, reply) => {
    const problems: string[] = [];
    if (!(await deps.store.ping())) problems.push(`store unreachable (${deps.store.kind}: ${deps.store.location})`);
    else {
      const pending = await pendingMigrations(deps.store).catch(() => ['unknown']);
      if (pending.length > 0) problems.push(`migrations not applied: ${pending.join(', ')}`);
    }
    if (!deps.writer.healthy) problems.push('writes to the store are failing; rows wait in the write-ahead log');
    return reply.code(problems.length ? 503 : 200).send({ status: problems.length ? 'not_ready' : 'ready', problems });
  });

  app.get('/metrics', async (_req, reply) => reply.type('text/plain; version=0.0.4').send(deps.registry.render()));

  app.get('/api/v1/targets', async () => {
    const rows = await deps.store.query<Record<string, string>>(
      `SELECT service, instance, argMaxMerge(version) AS version, argMaxMerge(host) AS host, argMaxMerge(pid) AS pid,
              toString(toUnixTimestamp64Nano(min(first_seen))) AS first_seen,
              toString(toUnixTimestamp64Nano(max(last_seen))) AS last_seen,
              toString(toUnixTimestamp64Nano(max(last_heartbeat))) AS last_heartbeat
       FROM ${db}.targets GROUP BY service, instance ORDER BY service, instance`,
    );
    return {
      targets: rows.map((r) => ({
        service: r.service,
        instance: r.instance,
        version: r.version,
        host: r.host,
        pid: Number(r.pid),
        first_seen: isoFromNanos(r.first_seen),
        last_seen: isoFromNanos(r.last_seen),
        last_heartbeat: isoFromNanos(r.last_heartbeat) || null,
      })),
    };
  });

  app.get<{ Params: { traceId: string } }>('/api/v1/traces/:traceId', async (req) => {
    const parsed = TraceId.safeParse(req.params.traceId);
    if (!parsed.success) throw badRequest('bad_trace_id', `"${req.params.traceId}" is not a trace id: ${parsed.error.issues[0].message}`);
    const traceId = parsed.data.toLowerCase();
    const rows = await deps.store.query<SpanRow>(
      `SELECT trace_id, span_id, parent_span_id, trace_state, name, kind, toString(toUnixTimestamp64Nano(ts)) AS start,
              toString(duration_ns) AS duration_ns, status_code, status_message, service, instance, version, host,
              scope_name, scope_version, attributes, resource_attributes,
              arrayMap(t -> toString(toUnixTimestamp64Nano(t)), events.ts) AS event_ts, events.name AS event_name,
              events.attributes AS event_attributes, links.trace_id AS link_trace_id, links.span_id AS link_span_id,
              links.attributes AS link_attributes
       FROM ${db}.spans WHERE trace_id = {traceId:String} ORDER BY ts, span_id`,
      { traceId },
    );
    if (rows.length === 0) throw notFound('trace_not_found', `no spans stored for trace ${traceId}`);
    return { trace_id: traceId, spans: rows.map(spanView) };
  });
}

interface SpanRow {
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

function spanView(r: SpanRow) {
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
