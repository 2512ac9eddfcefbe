import { RowBatch, targetOf, type Target } from '../batch.js';
import { addException } from './traces.js';
import {
  anyValueText,
  attributeMap,
  boolAttr,
  idHex,
  nanosText,
  numberAttr,
  uintAttr,
  list,
  type AttrMap,
  type KeyValueLike,
} from './values.js';

/** Event names of DESIGN.md's telemetry conventions. */
export const HEARTBEAT_EVENT = 'faultline.heartbeat';
export const EXIT_EVENT = 'process.exit';

interface LogRecordIn {
  timeUnixNano?: unknown;
  observedTimeUnixNano?: unknown;
  severityNumber?: unknown;
  severityText?: string;
  body?: unknown;
  attributes?: KeyValueLike[];
  flags?: number;
  traceId?: unknown;
  spanId?: unknown;
  eventName?: string;
}

export interface LogsRequest {
  resourceLogs?: {
    resource?: { attributes?: KeyValueLike[] } | null;
    scopeLogs?: { scope?: { name?: string } | null; logRecords?: LogRecordIn[] }[];
  }[];
}

/**
 * Turns an ExportLogsServiceRequest into rows: heartbeats and exits into their typed tables, every other
 * record into logs, and records carrying `exception.type` also into exceptions.
 */
export function convertLogs(req: LogsRequest, batch: RowBatch): void {
  for (const rl of list(req.resourceLogs, 'resourceLogs')) {
    const resource = attributeMap(rl.resource?.attributes, batch.cut);
    const target = targetOf(resource);
    for (const sl of list(rl.scopeLogs, 'scopeLogs')) {
      const scopeName = sl.scope?.name ?? '';
      for (const record of list(sl.logRecords, 'logRecords')) convertRecord(record, target, resource, scopeName, batch);
    }
  }
}

function convertRecord(record: LogRecordIn, target: Target, resource: AttrMap, scopeName: string, batch: RowBatch): void {
  const observed = nanosText(record.observedTimeUnixNano);
  // The spec allows a record without a time: the observed time (or, lacking that, arrival) stands in.
  const ts = nanosText(record.timeUnixNano) ?? observed ?? `${batch.nowMs}000000`;
  const problem = batch.timeProblem(ts);
  if (problem) return batch.reject(problem);
  const traceId = idHex(record.traceId, 16);
  const spanId = idHex(record.spanId, 8);
  if (traceId === null) return batch.reject('invalid trace_id (must be 16 bytes, 32 hex digits in JSON, not all zero)');
  if (spanId === null) return batch.reject('invalid span_id (must be 8 bytes, 16 hex digits in JSON, not all zero)');
  const attrs = attributeMap(record.attributes, batch.cut);
  const eventName = record.eventName || attrs['event.name'] || '';

  if (eventName === HEARTBEAT_EVENT) {
    batch.add('heartbeats', heartbeatRow(ts, target, attrs));
    batch.seen(target, ts, true);
    return;
  }
  if (eventName === EXIT_EVENT) {
    batch.add('exits', exitRow(ts, target, attrs, traceId, spanId));
    if (attrs['exception.type']) addException(batch, target, ts, attrs, traceId, spanId, '', 'exit');
    batch.seen(target, ts);
    return;
  }
  batch.add('logs', {
    ts,
    observed_ts: observed ?? ts,
    service: target.service,
    instance: target.instance,
    version: target.version,
    host: target.host,
    severity_number: clampSeverity(record.severityNumber),
    severity_text: record.severityText ?? '',
    event_name: eventName,
    body: anyValueText(record.body, batch.cut),
    trace_id: traceId,
    span_id: spanId,
    flags: typeof record.flags === 'number' ? record.flags >>> 0 : 0,
    scope_name: scopeName,
    attributes: attrs,
    resource_attributes: resource,
  });
  if (attrs['exception.type']) addException(batch, target, ts, attrs, traceId, spanId, '', 'log');
  batch.seen(target, ts);
}

function clampSeverity(v: unknown): number {
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isInteger(n) && n >= 0 && n <= 24 ? n : 0;
}

function heartbeatRow(ts: string, target: Target, attrs: AttrMap): object {
  return {
    ts,
    service: target.service,
    instance: target.instance,
    version: target.version,
    host: target.host,
    pid: target.pid,
    interval_ms: uintAttr(attrs, 'faultline.heartbeat.interval_ms'),
    rss_bytes: uintAttr(attrs, 'process.memory.rss'),
    memory_limit_bytes: uintAttr(attrs, 'process.memory.limit'),
    heap_used_bytes: uintAttr(attrs, 'process.runtime.heap.used'),
    cpu_utilization: numberAttr(attrs, 'process.cpu.utilization'),
    eventloop_delay_p99_ms: numberAttr(attrs, 'nodejs.eventloop.delay.p99'),
    attributes: attrs,
  };
}

function exitRow(ts: string, target: Target, attrs: AttrMap, traceId: string, spanId: string): object {
  const code = numberAttr(attrs, 'process.exit.code');
  return {
    ts,
    service: target.service,
    instance: target.instance,
    version: target.version,
    host: target.host,
    pid: target.pid,
    exit_code: code === null ? null : Math.trunc(code),
    signal: attrs['process.exit.signal'] ?? '',
    reason: attrs['process.exit.reason'] ?? '',
    intended: boolAttr(attrs, 'process.exit.intended'),
    exception_type: attrs['exception.type'] ?? '',
    exception_message: attrs['exception.message'] ?? '',
    exception_stacktrace: attrs['exception.stacktrace'] ?? '',
    stderr_tail: attrs['process.stderr.tail'] ?? '',
    runtime_ms: uintAttr(attrs, 'process.runtime.ms'),
    max_rss_bytes: uintAttr(attrs, 'process.memory.max_rss'),
    trace_id: traceId,
    span_id: spanId,
    attributes: attrs,
  };
}
