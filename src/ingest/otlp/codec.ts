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

/** google.rpc.Status, the body of OTLP/HTTP protobuf error responses. */
const status = protobuf.Root.fromJSON({
  nested: {
    Status: {
      fields: { code: { type: 'int32', id: 1 }, message: { type: 'string', id: 2 } },
    },
  },
}).lookupType('Status');

export function encodeStatus(code: number, message: string): Uint8Array {
  return status.encode({ code, message }).finish();
}
