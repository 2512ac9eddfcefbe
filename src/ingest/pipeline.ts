import type { Config } from '../config/index.js';
import type { IngestMetrics } from '../metrics/index.js';
import type { TableName } from '../store/index.js';
import type { Writer } from '../writer/index.js';
import { badRequest } from '../errors.js';
import type { IngestAdmission, IngestClass } from './admission.js';
import { RowBatch, type IngestLimits } from './batch.js';
import { convertProtobuf, decodeJson, decodeProtobuf, SIGNALS, type ExportResult, type Signal } from './otlp/codec.js';
import { convertLogs, type LogsRequest } from './otlp/logs.js';
import { convertMetrics, type MetricsRequest } from './otlp/metrics.js';
import { convertTraces, convertTracesProtobuf, type TracesRequest } from './otlp/traces.js';

export type Encoding = 'protobuf' | 'json';

const CONVERTERS: Record<Signal, (req: never, batch: RowBatch) => void> = {
  traces: convertTraces as (req: TracesRequest, batch: RowBatch) => void,
  logs: convertLogs as (req: LogsRequest, batch: RowBatch) => void,
  metrics: convertMetrics as (req: MetricsRequest, batch: RowBatch) => void,
};

/** The tables whose rows are the signal's items (spans, log records, data points), for counting. */
const ITEM_TABLES: Record<Signal, TableName[]> = {
  traces: ['spans'],
  logs: ['heartbeats', 'exits', 'logs'],
  metrics: ['metric_points'],
};

/**
 * Decodes an OTLP request into rows, without I/O. Malformed input throws a 4xx FaultlineError; anything
 * else it throws is a bug (the fuzz tests hold it to that).
 */
export function decodeOtlp(signal: Signal, body: Uint8Array, encoding: Encoding, limits: IngestLimits): RowBatch {
  const batch = new RowBatch(limits);
  if (encoding === 'protobuf' && signal === 'traces') {
    // The hot path: rows straight from the bytes (same rows as decodeProtobuf + convertTraces).
    convertProtobuf(signal, body, (r) => convertTracesProtobuf(r, batch));
  } else {
    const request = encoding === 'protobuf' ? decodeProtobuf(signal, body) : decodeJson(signal, Buffer.isBuffer(body) ? body : Buffer.from(body));
    try {
      CONVERTERS[signal](request as never, batch);
    } catch (err) {
      // The converters read OTLP/JSON by its shape; a value of the wrong type where an array or object
      // belongs (found by the fuzzer) is the sender's error, answered like any malformed JSON. protobufjs
      // objects always have the declared shape, so there the error is faultline's own and stays a 500.
      if (encoding === 'json' && err instanceof TypeError) throw badRequest('otlp_bad_json', `the JSON does not have the OTLP shape: ${err.message}`);
      throw err;
    }
  }
  return batch;
}

/**
 * The one path every receiver (OTLP/HTTP, OTLP/gRPC, ping) hands data to: admission (backpressure),
 * decoding, conversion to rows, and the durable write. Resolves when the data may be acknowledged.
 */
export class IngestPipeline {
  readonly limits: IngestLimits;
  /** Called with every batch once it is durable (detection listens here). Must not throw or block. */
  onDurable?: (tables: Map<TableName, object[]>, arrivalMs: number) => void;

  constructor(
    private readonly writer: Writer,
    readonly metrics: IngestMetrics,
    config: Config,
    private readonly admission: IngestAdmission,
  ) {
    this.limits = {
      maxAttributeBytes: config.limits.max_attribute_bytes,
      maxFutureSkewS: config.limits.max_future_skew_s,
      maxAgeDays: config.limits.max_age_days,
    };
  }

  /** Throws 429/503 when the store is behind. */
  admit(): void {
    this.writer.admit();
  }

  /**
   * Admission of one request, before its body is read or decoded: throws 429/503 when the store is
   * behind or faultline is overloaded (see IngestAdmission); else returns the function that releases the
   * request once it is answered.
   */
  enter(kind: IngestClass, bytes: number): () => void {
    this.writer.admit();
    return this.admission.enter(kind, bytes);
  }

  async otlp(signal: Signal, body: Uint8Array, encoding: Encoding): Promise<ExportResult> {
    this.writer.admit();
    const batch = decodeOtlp(signal, body, encoding, this.limits);
    const tables = batch.tables();
    const item = SIGNALS[signal].itemName;
    const accepted = ITEM_TABLES[signal].reduce((n, t) => n + (tables.get(t)?.length ?? 0), 0);
    this.metrics.received.inc({ signal }, accepted + batch.rejected);
    if (batch.rejected > 0) this.metrics.rejected.inc({ signal, reason: 'invalid' }, batch.rejected);
    if (batch.cut.cut > 0) this.metrics.truncated.inc({ signal }, batch.cut.cut);
    await this.writer.write(tables, batch.resources);
    this.onDurable?.(tables, batch.nowMs);
    const message = batch.errorMessage();
    return { rejected: batch.rejected, errorMessage: message && batch.rejected > 0 ? `${batch.rejected} ${item} rejected: ${message}` : message };
  }

  /** Writes rows built elsewhere (pings, checks) through the same durable path. */
  async rows(tables: Map<TableName, object[]>): Promise<void> {
    this.writer.admit();
    await this.writer.write(tables);
    this.onDurable?.(tables, Date.now());
  }
}
