import protobuf from 'protobufjs';
import Long from 'long';
import { badRequest } from '../../errors.js';
import { srcAsset } from '../../paths.js';

// protobufjs represents 64-bit integers as Long only when it is configured with the library.
protobuf.util.Long = Long;
protobuf.configure();

const root = new protobuf.Root();
root.resolvePath = (_origin, target) => srcAsset('ingest', 'otlp', 'proto', target.split('/').pop()!);
root.loadSync('collector.proto');

const type = (name: string) => root.lookupType(`opentelemetry.proto.collector.v1.${name}`);

/** The three OTLP signals and their protobuf request/response types. */
export const SIGNALS = {
  traces: {
    request: type('ExportTraceServiceRequest'),
    response: type('ExportTraceServiceResponse'),
    rejectedField: 'rejectedSpans',
    jsonRoot: 'resourceSpans',
    itemName: 'spans',
  },
  logs: {
    request: type('ExportLogsServiceRequest'),
    response: type('ExportLogsServiceResponse'),
    rejectedField: 'rejectedLogRecords',
    jsonRoot: 'resourceLogs',
    itemName: 'log records',
  },
  metrics: {
    request: type('ExportMetricsServiceRequest'),
    response: type('ExportMetricsServiceResponse'),
    rejectedField: 'rejectedDataPoints',
    jsonRoot: 'resourceMetrics',
    itemName: 'data points',
  },
} as const;

export type Signal = keyof typeof SIGNALS;

/** Decodes a binary protobuf request; truncated or garbage bytes become a 400 with the decoder's reason. */
export function decodeProtobuf(signal: Signal, body: Uint8Array): unknown {
  try {
    return SIGNALS[signal].request.decode(body);
  } catch (err) {
    throw badRequest('otlp_bad_protobuf', `cannot decode ${SIGNALS[signal].request.name}: ${(err as Error).message}`);
  }
}

/**
 * A protobuf wire-format reader for hot paths that turn a request into rows directly, without protobufjs's
 * message objects (convertTracesProtobuf). One cursor over the whole body; each message is read up to its
 * `end`, and reading past it throws (a truncated or garbage body, answered with 400 like protobufjs's).
 * The last varint or fixed64 read is in `lo`/`hi` (unsigned 32-bit halves).
 */
export class WireReader {
  pos = 0;
  lo = 0;
  hi = 0;
  readonly buf: Buffer;

  constructor(body: Uint8Array) {
    this.buf = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  }

  private outOfRange(n: number, end: number): never {
    throw new WireError(`index out of range: ${this.pos} + ${n} > ${end}`);
  }

  /** A varint of up to 64 bits into lo/hi; returns lo. */
  varint(end: number): number {
    const buf = this.buf;
    let lo = 0;
    let hi = 0;
    let shift = 0;
    let b: number;
    do {
      if (this.pos >= end) this.outOfRange(1, end);
      b = buf[this.pos++];
      if (shift < 28) lo |= (b & 0x7f) << shift;
      else if (shift === 28) {
        lo |= (b & 0x0f) << 28;
        hi |= (b & 0x7f) >>> 4;
      } else if (shift < 64) hi |= (b & 0x7f) << (shift - 32);
      else throw new WireError(`invalid varint encoding at offset ${this.pos}`);
      shift += 7;
    } while (b & 0x80);
    this.lo = lo >>> 0;
    this.hi = hi >>> 0;
    return this.lo;
  }

  /** A little-endian fixed64 into lo/hi. */
  fixed64(end: number): void {
    if (this.pos + 8 > end) this.outOfRange(8, end);
    this.lo = this.buf.readUInt32LE(this.pos);
    this.hi = this.buf.readUInt32LE(this.pos + 4);
    this.pos += 8;
  }

  double(end: number): number {
    if (this.pos + 8 > end) this.outOfRange(8, end);
    const v = this.buf.readDoubleLE(this.pos);
    this.pos += 8;
    return v;
  }

  /** The length prefix of a length-delimited field: returns the field's end (its start is `pos`). */
  len(end: number): number {
    const n = this.varint(end);
    if (this.hi !== 0 || this.pos + n > end) this.outOfRange(n, end);
    return this.pos + n;
  }

  /** A length-delimited field as UTF-8 text. */
  string(end: number): string {
    const to = this.len(end);
    // Buffer's own UTF-8 decoder (what toString('utf8', ...) calls, without its argument handling).
    const s = (this.buf as unknown as { utf8Slice(start: number, end: number): string }).utf8Slice(this.pos, to);
    this.pos = to;
    return s;
  }

  /**
   * Moves to the next length-delimited field `tag` of the message ending at `end`, skipping other fields:
   * returns that field's end (its value starts at `pos`), or -1 once the message is read. Every OTLP
   * container is "for each field-N submessage", read without a callback or an allocation on the hot path:
   * `for (let to; (to = r.next(TAG, end)) >= 0; r.pos = to) read(r, to);`
   */
  next(tag: number, end: number): number {
    while (this.pos < end) {
      const t = this.varint(end);
      if (t === tag) return this.len(end);
      this.skip(t & 7, end);
    }
    return -1;
  }

  /** Skips a field's value of this wire type. */
  skip(wireType: number, end: number): void {
    switch (wireType) {
      case 0:
        this.varint(end);
        return;
      case 1:
        if (this.pos + 8 > end) this.outOfRange(8, end);
        this.pos += 8;
        return;
      case 2:
        this.pos = this.len(end);
        return;
      case 3:
        // A group's fields up to its end tag; groups nested in it are skipped flat (counted, not recursed),
        // so a hostile run of start-group tags cannot exhaust the stack.
        for (let open = 1; open > 0; ) {
          const tag = this.varint(end);
          const wt = tag & 7;
          if (wt === 4) open--;
          else if (wt === 3) open++;
          else this.skip(wt, end);
        }
        return;
      case 5:
        if (this.pos + 4 > end) this.outOfRange(4, end);
        this.pos += 4;
        return;
      default:
        throw new WireError(`invalid wire type ${wireType} at offset ${this.pos}`);
    }
  }

  /** Throws unless a known field has the wire type its declaration gives it. */
  expect(tag: number, wireType: number): void {
    if ((tag & 7) !== wireType) throw new WireError(`invalid wire type ${tag & 7} for field ${tag >>> 3} at offset ${this.pos}`);
  }
}

/** Malformed protobuf bytes (not a bug in the reader's caller). */
export class WireError extends Error {
  override name = 'WireError';
}

/** Runs a direct protobuf conversion; malformed bytes become the same 400 as decodeProtobuf's. */
export function convertProtobuf(signal: Signal, body: Uint8Array, convert: (r: WireReader) => void): void {
  try {
    convert(new WireReader(body));
  } catch (err) {
    if (!(err instanceof WireError)) throw err;
    throw badRequest('otlp_bad_protobuf', `cannot decode ${SIGNALS[signal].request.name}: ${err.message}`);
  }
}

/**
 * Parses an OTLP/JSON request. The spec's keys are lowerCamelCase; proto field names (snake_case), which
 * protobuf JSON parsers also accept, are converted too.
 */
export function decodeJson(signal: Signal, body: Buffer): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw badRequest('otlp_bad_json', `malformed JSON: ${(err as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw badRequest('otlp_bad_json', `expected a JSON object with "${SIGNALS[signal].jsonRoot}"`);
  const root = SIGNALS[signal].jsonRoot;
  if (!(root in parsed) && snake(root) in parsed) parsed = camelKeys(parsed);
  const list = (parsed as Record<string, unknown>)[root];
  if (list !== undefined && !Array.isArray(list)) throw badRequest('otlp_bad_json', `"${root}" must be an array`);
  return parsed;
}

const snake = (s: string) => s.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

function camelKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(camelKeys);
  if (v === null || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, val] of Object.entries(v)) out[k === 'key' ? k : camel(k)] = camelKeys(val);
  return out;
}

export interface ExportResult {
  rejected: number;
  errorMessage: string;
}

/** The Export*ServiceResponse, with partial_success only when something was rejected or cut. */
export function responseObject(signal: Signal, result: ExportResult): Record<string, unknown> {
  if (result.rejected === 0 && result.errorMessage === '') return {};
  return { partialSuccess: { [SIGNALS[signal].rejectedField]: result.rejected, errorMessage: result.errorMessage } };
}

export function encodeResponse(signal: Signal, result: ExportResult): Uint8Array {
  const t = SIGNALS[signal].response;
  return t.encode(t.fromObject(responseObject(signal, result))).finish();
}

/** google.rpc.Status (the body of OTLP/HTTP protobuf error responses), with RetryInfo for its details. */
const rpc = protobuf.Root.fromJSON({
  nested: {
    Status: {
      fields: { code: { type: 'int32', id: 1 }, message: { type: 'string', id: 2 }, details: { rule: 'repeated', type: 'Any', id: 3 } },
    },
    Any: { fields: { type_url: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } },
    RetryInfo: { fields: { retry_delay: { type: 'Duration', id: 1 } } },
    Duration: { fields: { seconds: { type: 'int64', id: 1 } } },
  },
});
const status = rpc.lookupType('Status');
const retryInfo = rpc.lookupType('RetryInfo');

export function encodeStatus(code: number, message: string): Uint8Array {
  return status.encode({ code, message }).finish();
}

/**
 * A google.rpc.Status whose details carry a google.rpc.RetryInfo: what tells an OTLP/gRPC client that a
 * RESOURCE_EXHAUSTED is worth retrying, and after how long (the `grpc-status-details-bin` trailer).
 */
export function encodeRetryStatus(code: number, message: string, retryAfterS: number): Uint8Array {
  const value = retryInfo.encode({ retry_delay: { seconds: retryAfterS } }).finish();
  return status.encode({ code, message, details: [{ type_url: 'type.googleapis.com/google.rpc.RetryInfo', value }] }).finish();
}
