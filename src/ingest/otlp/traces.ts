import { RowBatch, targetOf, type Target } from '../batch.js';
import type { WireReader } from './codec.js';
import {
  attributeMap,
  enumNumber,
  idHex,
  nanosText,
  u64NanosToMs,
  u64Text,
  wireIdHex,
  wireKeyValue,
  list,
  type AttrMap,
  type KeyValueLike,
} from './values.js';

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
  for (const rs of list(req.resourceSpans, 'resourceSpans')) {
    const resource = attributeMap(rs.resource?.attributes, batch.cut);
    const target = targetOf(resource);
    // Span rows carry the resource's id; the store fills in resource_attributes from it (migration 006).
    const resourceId = batch.resourceId(resource);
    for (const ss of list(rs.scopeSpans, 'scopeSpans')) {
      const scopeName = ss.scope?.name ?? '';
      const scopeVersion = ss.scope?.version ?? '';
      for (const span of list(ss.spans, 'spans')) convertSpan(span, target, resourceId, scopeName, scopeVersion, batch);
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
  const events = list(span.events, 'events');
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
  const links = list(span.links, 'links');
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

/**
 * What convertTraces does with a protobufjs-decoded ExportTraceServiceRequest, straight from its bytes:
 * the same rows, rejections and truncations, without building protobufjs's message objects first (they
 * cost more CPU and garbage than the conversion itself). Messages whose fields come in an unusual order
 * (a resource after its scope spans) read the same; malformed bytes throw a WireError.
 */
export function convertTracesProtobuf(r: WireReader, batch: RowBatch): void {
  const end = r.buf.length;
  for (let to: number; (to = r.next(0x0a, end)) >= 0; r.pos = to) wireResourceSpans(r, to, batch);
}

/** ResourceSpans: resource = 1, scope_spans = 2. */
function wireResourceSpans(r: WireReader, end: number, batch: RowBatch): void {
  const start = r.pos;
  // The resource may come after its scope spans: found first, read once (the last one wins, as in protobuf).
  let resStart = -1;
  let resEnd = -1;
  for (let to: number; (to = r.next(0x0a, end)) >= 0; r.pos = to) {
    resStart = r.pos;
    resEnd = to;
  }
  const resource: AttrMap = {};
  if (resStart >= 0) {
    // Resource: attributes = 1.
    r.pos = resStart;
    for (let to: number; (to = r.next(0x0a, resEnd)) >= 0; r.pos = to) wireKeyValue(r, to, resource, batch.cut);
  }
  const target = targetOf(resource);
  const resourceId = batch.resourceId(resource);
  r.pos = start;
  for (let to: number; (to = r.next(0x12, end)) >= 0; r.pos = to) wireScopeSpans(r, to, target, resourceId, batch);
}

/** ScopeSpans: scope = 1 (InstrumentationScope: name = 1, version = 2), spans = 2. */
function wireScopeSpans(r: WireReader, end: number, target: Target, resourceId: string, batch: RowBatch): void {
  const start = r.pos;
  let scopeName = '';
  let scopeVersion = '';
  for (let to: number; (to = r.next(0x0a, end)) >= 0; ) {
    scopeName = '';
    scopeVersion = '';
    while (r.pos < to) {
      const t = r.varint(to);
      if (t === 0x0a) scopeName = r.string(to);
      else if (t === 0x12) scopeVersion = r.string(to);
      else r.skip(t & 7, to);
    }
  }
  r.pos = start;
  for (let to: number; (to = r.next(0x12, end)) >= 0; r.pos = to) wireSpan(r, to, target, resourceId, scopeName, scopeVersion, batch);
}

/**
 * Span: trace_id = 1, span_id = 2, trace_state = 3, parent_span_id = 4, name = 5, kind = 6,
 * start_time_unix_nano = 7, end_time_unix_nano = 8, attributes = 9, events = 11, links = 13, status = 15.
 * A first pass reads the scalar fields and checks them (a rejected span costs no attribute decoding, as in
 * convertSpan); a second reads attributes, events and links in order.
 */
function wireSpan(
  r: WireReader,
  end: number,
  target: Target,
  resourceId: string,
  scopeName: string,
  scopeVersion: string,
  batch: RowBatch,
): void {
  const buf = r.buf;
  const start = r.pos;
  let tS = -1, tE = -1, sS = -1, sE = -1, pS = -1, pE = -1, stS = -1, stE = -1;
  let traceState = '';
  let name = '';
  let kind = 0;
  let startLo = 0, startHi = 0, endLo = 0, endHi = 0;
  let more = false;
  while (r.pos < end) {
    const tag = r.varint(end);
    switch (tag) {
      case 0x0a:
        tE = r.len(end);
        tS = r.pos;
        r.pos = tE;
        break;
      case 0x12:
        sE = r.len(end);
        sS = r.pos;
        r.pos = sE;
        break;
      case 0x1a:
        traceState = r.string(end);
        break;
      case 0x22:
        pE = r.len(end);
        pS = r.pos;
        r.pos = pE;
        break;
      case 0x2a:
        name = r.string(end);
        break;
      case 0x30:
        kind = r.varint(end) | 0;
        break;
      case 0x39:
        r.fixed64(end);
        [startLo, startHi] = [r.lo, r.hi];
        break;
      case 0x41:
        r.fixed64(end);
        [endLo, endHi] = [r.lo, r.hi];
        break;
      case 0x7a:
        stE = r.len(end);
        stS = r.pos;
        r.pos = stE;
        break;
      case 0x4a:
      case 0x5a:
      case 0x6a:
        more = true;
        r.pos = r.len(end);
        break;
      default:
        r.skip(tag & 7, end);
    }
  }
  const traceId = wireIdHex(buf, tS, tE, 16);
  const spanId = wireIdHex(buf, sS, sE, 8);
  const parent = wireIdHex(buf, pS, pE, 8);
  if (!traceId) return batch.reject('invalid trace_id (must be 16 bytes, 32 hex digits in JSON, not all zero)');
  if (!spanId) return batch.reject('invalid span_id (must be 8 bytes, 16 hex digits in JSON, not all zero)');
  if (parent === null) return batch.reject('invalid parent_span_id (must be 8 bytes or empty)');
  if (startLo === 0 && startHi === 0) return batch.reject('missing start_time_unix_nano');
  const startText = u64Text(startLo, startHi);
  const startMs = u64NanosToMs(startLo, startHi);
  const problem = batch.timeProblem(startText, startMs);
  if (problem) return batch.reject(problem);
  let duration = '0';
  if (endLo !== 0 || endHi !== 0) {
    let lo = endLo - startLo;
    let hi = endHi - startHi;
    if (lo < 0) [lo, hi] = [lo + 4294967296, hi - 1];
    if (hi > 0 || (hi === 0 && lo > 0)) duration = u64Text(lo, hi);
  }
  // Status: message = 2, code = 3.
  let statusMessage = '';
  let status = 0;
  if (stS >= 0) {
    r.pos = stS;
    while (r.pos < stE) {
      const t = r.varint(stE);
      if (t === 0x12) statusMessage = r.string(stE);
      else if (t === 0x18) status = r.varint(stE) | 0;
      else r.skip(t & 7, stE);
    }
  }

  const attributes: AttrMap = {};
  let eventTs: readonly string[] = NONE;
  let eventNames: readonly string[] = NONE;
  let eventAttrs: readonly AttrMap[] = NONE;
  let linkTraceIds: readonly string[] = NONE;
  let linkSpanIds: readonly string[] = NONE;
  let linkAttrs: readonly AttrMap[] = NONE;
  if (more) {
    r.pos = start;
    while (r.pos < end) {
      const tag = r.varint(end);
      if (tag !== 0x4a && tag !== 0x5a && tag !== 0x6a) {
        r.skip(tag & 7, end);
        continue;
      }
      const to = r.len(end);
      if (tag === 0x4a) wireKeyValue(r, to, attributes, batch.cut);
      else if (tag === 0x5a) {
        // Event: time_unix_nano = 1, name = 2, attributes = 3.
        let lo = 0, hi = 0;
        let evName = '';
        const evAttrs: AttrMap = {};
        while (r.pos < to) {
          const t = r.varint(to);
          if (t === 0x09) {
            r.fixed64(to);
            [lo, hi] = [r.lo, r.hi];
          } else if (t === 0x12) evName = r.string(to);
          else if (t === 0x1a) wireKeyValue(r, r.len(to), evAttrs, batch.cut);
          else r.skip(t & 7, to);
        }
        const at = lo === 0 && hi === 0 ? startText : u64Text(lo, hi);
        if (eventTs === NONE) [eventTs, eventNames, eventAttrs] = [[], [], []];
        (eventTs as string[]).push(at);
        (eventNames as string[]).push(evName);
        (eventAttrs as AttrMap[]).push(evAttrs);
        if (evName === 'exception') addException(batch, target, at, evAttrs, traceId, spanId, name);
      } else {
        // Link: trace_id = 1, span_id = 2, attributes = 4.
        let lt = '';
        let ls = '';
        const lAttrs: AttrMap = {};
        while (r.pos < to) {
          const t = r.varint(to);
          if (t === 0x0a || t === 0x12) {
            const e = r.len(to);
            const id = wireIdHex(buf, r.pos, e, t === 0x0a ? 16 : 8) ?? '';
            if (t === 0x0a) lt = id;
            else ls = id;
            r.pos = e;
          } else if (t === 0x22) wireKeyValue(r, r.len(to), lAttrs, batch.cut);
          else r.skip(t & 7, to);
        }
        if (linkTraceIds === NONE) [linkTraceIds, linkSpanIds, linkAttrs] = [[], [], []];
        (linkTraceIds as string[]).push(lt);
        (linkSpanIds as string[]).push(ls);
        (linkAttrs as AttrMap[]).push(lAttrs);
      }
      r.pos = to;
    }
  }
  batch.add('spans', {
    ts: startText,
    trace_id: traceId,
    span_id: spanId,
    parent_span_id: parent,
    trace_state: traceState,
    service: target.service,
    instance: target.instance,
    version: target.version,
    host: target.host,
    name,
    kind: SPAN_KINDS[kind] ?? 'unspecified',
    duration_ns: duration,
    status_code: STATUS_CODES[status] ?? 'unset',
    status_message: batch.cut.apply(statusMessage),
    scope_name: scopeName,
    scope_version: scopeVersion,
    attributes,
    resource_id: resourceId,
    'events.ts': eventTs,
    'events.name': eventNames,
    'events.attributes': eventAttrs,
    'links.trace_id': linkTraceIds,
    'links.span_id': linkSpanIds,
    'links.attributes': linkAttrs,
  });
  batch.seen(target, startText, false, startMs);
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
