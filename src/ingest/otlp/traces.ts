import { RowBatch, targetOf, type Target } from '../batch.js';
import { attributeMap, enumNumber, idHex, nanosText, type AttrMap, type KeyValueLike } from './values.js';

const SPAN_KINDS = ['unspecified', 'internal', 'server', 'client', 'producer', 'consumer'] as const;
const SPAN_KIND_NAMES = SPAN_KINDS.map((k) => `SPAN_KIND_${k.toUpperCase()}`);
const STATUS_CODES = ['unset', 'ok', 'error'] as const;
const STATUS_NAMES = ['STATUS_CODE_UNSET', 'STATUS_CODE_OK', 'STATUS_CODE_ERROR'];
const NONE: readonly never[] = Object.freeze([]);

/** The parts of an OTLP span this converter reads (protobufjs message or OTLP/JSON object). */
interface SpanIn {
  traceId?: unknown;
  spanId?: unknown;
  parentSpanId?: unknown;
  traceState?: string;
  name?: string;
  kind?: unknown;
  startTimeUnixNano?: unknown;
  endTimeUnixNano?: unknown;
  attributes?: KeyValueLike[];
  events?: { timeUnixNano?: unknown; name?: string; attributes?: KeyValueLike[] }[];
  links?: { traceId?: unknown; spanId?: unknown; attributes?: KeyValueLike[] }[];
  status?: { code?: unknown; message?: string } | null;
}

interface ScopeIn {
  scope?: { name?: string; version?: string } | null;
  spans?: SpanIn[];
}

export interface TracesRequest {
  resourceSpans?: { resource?: { attributes?: KeyValueLike[] } | null; scopeSpans?: ScopeIn[] }[];
}

/** Turns an ExportTraceServiceRequest into span rows and one exception row per `exception` span event. */
export function convertTraces(req: TracesRequest, batch: RowBatch): void {
  for (const rs of req.resourceSpans ?? []) {
    const resource = attributeMap(rs.resource?.attributes, batch.cut);
    const target = targetOf(resource);
    // Span rows carry the resource's id; the store fills in resource_attributes from it (migration 006).
    const resourceId = batch.resourceId(resource);
    for (const ss of rs.scopeSpans ?? []) {
      const scopeName = ss.scope?.name ?? '';
      const scopeVersion = ss.scope?.version ?? '';
      for (const span of ss.spans ?? []) convertSpan(span, target, resourceId, scopeName, scopeVersion, batch);
    }
  }
}

function convertSpan(
  span: SpanIn,
  target: Target,
  resourceId: string,
  scopeName: string,
  scopeVersion: string,
  batch: RowBatch,
): void {
  const traceId = idHex(span.traceId, 16);
  const spanId = idHex(span.spanId, 8);
  const parent = idHex(span.parentSpanId, 8);
  if (!traceId) return batch.reject('invalid trace_id (must be 16 bytes, 32 hex digits in JSON, not all zero)');
  if (!spanId) return batch.reject('invalid span_id (must be 8 bytes, 16 hex digits in JSON, not all zero)');
  if (parent === null) return batch.reject('invalid parent_span_id (must be 8 bytes or empty)');
  const start = nanosText(span.startTimeUnixNano);
  if (!start) return batch.reject('missing start_time_unix_nano');
  const problem = batch.timeProblem(start);
  if (problem) return batch.reject(problem);
  const end = nanosText(span.endTimeUnixNano);
  const duration = end ? BigInt(end) - BigInt(start) : 0n;

  const attributes = attributeMap(span.attributes, batch.cut);
  const status = enumNumber(span.status?.code, STATUS_NAMES);
  const events = span.events ?? [];
  // Most spans have no events or links: they share one (frozen) empty list instead of six new ones each.
  let eventTs: readonly string[] = NONE;
  let eventNames: readonly string[] = NONE;
  let eventAttrs: readonly AttrMap[] = NONE;
  if (events.length > 0) {
    const ts: string[] = (eventTs = []);
    const names: string[] = (eventNames = []);
    const attrs: AttrMap[] = (eventAttrs = []);
    for (const ev of events) {
      const at = nanosText(ev.timeUnixNano) ?? start;
      const evAttrs = attributeMap(ev.attributes, batch.cut);
      ts.push(at);
      names.push(ev.name ?? '');
      attrs.push(evAttrs);
      if (ev.name === 'exception') addException(batch, target, at, evAttrs, traceId, spanId, span.name ?? '');
    }
  }
  const links = span.links ?? [];
  const noLinks = links.length === 0;
  batch.add('spans', {
    ts: start,
    trace_id: traceId,
    span_id: spanId,
    parent_span_id: parent,
    trace_state: span.traceState ?? '',
    service: target.service,
    instance: target.instance,
    version: target.version,
    host: target.host,
    name: span.name ?? '',
    kind: SPAN_KINDS[enumNumber(span.kind, SPAN_KIND_NAMES)] ?? 'unspecified',
    duration_ns: duration > 0n ? duration.toString() : '0',
    status_code: STATUS_CODES[status] ?? 'unset',
    status_message: batch.cut.apply(span.status?.message ?? ''),
    scope_name: scopeName,
    scope_version: scopeVersion,
    attributes,
    resource_id: resourceId,
    'events.ts': eventTs,
    'events.name': eventNames,
    'events.attributes': eventAttrs,
    'links.trace_id': noLinks ? NONE : links.map((l) => idHex(l.traceId, 16) ?? ''),
    'links.span_id': noLinks ? NONE : links.map((l) => idHex(l.spanId, 8) ?? ''),
    'links.attributes': noLinks ? NONE : links.map((l) => attributeMap(l.attributes, batch.cut)),
  });
  batch.seen(target, start);
}

/** One row of the exceptions table (from a span event, an exception log or an exit record). */
export function addException(
  batch: RowBatch,
  target: Target,
  ts: string,
  attrs: AttrMap,
  traceId: string,
  spanId: string,
  spanName: string,
  source: 'span' | 'log' | 'exit' = 'span',
): void {
  batch.add('exceptions', {
    ts,
    service: target.service,
    instance: target.instance,
    version: target.version,
    host: target.host,
    source,
    exception_type: attrs['exception.type'] ?? '',
    message: attrs['exception.message'] ?? '',
    stacktrace: attrs['exception.stacktrace'] ?? '',
    trace_id: traceId,
    span_id: spanId,
    span_name: spanName,
    attributes: attrs,
  });
}
