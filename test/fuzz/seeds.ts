/**
 * Valid OTLP requests the fuzzer starts from: every signal, every kind of value a decoder meets (all
 * AnyValue kinds nested, events, links, heartbeats, exits, the five metric types), as OTLP/JSON and as
 * protobuf (encoded by protobufjs from the same objects, so both encodings carry the same data).
 */
import { SIGNALS, type Signal } from '../../src/ingest/otlp/codec.js';

const nowNs = () => `${BigInt(Date.now()) * 1_000_000n}`;
const str = (key: string, v: string) => ({ key, value: { stringValue: v } });
const int = (key: string, v: number) => ({ key, value: { intValue: String(v) } });

const resource = (service: string) => ({
  attributes: [str('service.name', service), str('service.instance.id', `${service}-1`), str('host.name', 'fuzz-host'), int('process.pid', 4242)],
});

const everyValue = () => [
  str('s', 'text é ✓'),
  { key: 'b', value: { boolValue: true } },
  int('i', -9007199254740991),
  { key: 'd', value: { doubleValue: 3.25 } },
  { key: 'bytes', value: { bytesValue: 'AAEC/w==' } },
  { key: 'arr', value: { arrayValue: { values: [{ stringValue: 'a' }, { intValue: '2' }, { arrayValue: { values: [{ boolValue: false }] } }] } } },
  { key: 'kv', value: { kvlistValue: { values: [str('inner', 'x'), { key: 'deeper', value: { kvlistValue: { values: [int('n', 1)] } } }] } } },
  { key: 'empty', value: {} },
];

export function tracesSeed(): Record<string, unknown> {
  const t = nowNs();
  return {
    resourceSpans: [
      {
        resource: resource('checkout'),
        scopeSpans: [
          {
            scope: { name: 'fuzz', version: '1.0.0' },
            spans: [
              {
                traceId: '5b8efff798038103d269b633813fc60c',
                spanId: 'eee19b7ec3c1b174',
                parentSpanId: 'aaa19b7ec3c1b174',
                traceState: 'k=v',
                name: 'GET /orders',
                kind: 2,
                startTimeUnixNano: t,
                endTimeUnixNano: t,
                attributes: everyValue(),
                status: { code: 2, message: 'boom' },
                events: [
                  {
                    timeUnixNano: t,
                    name: 'exception',
                    attributes: [str('exception.type', 'TypeError'), str('exception.message', 'x is undefined'), str('exception.stacktrace', 'TypeError: x\n    at f (/app/a.js:1:2)')],
                  },
                ],
                links: [{ traceId: '5b8efff798038103d269b633813fc60d', spanId: 'eee19b7ec3c1b175', attributes: [str('l', 'v')] }],
              },
              { traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee19b7ec3c1b176', name: 'db', kind: 3, startTimeUnixNano: t, endTimeUnixNano: t, attributes: [str('peer.service', 'db')] },
            ],
          },
        ],
      },
    ],
  };
}

export function logsSeed(): Record<string, unknown> {
  const t = nowNs();
  return {
    resourceLogs: [
      {
        resource: resource('worker'),
        scopeLogs: [
          {
            scope: { name: 'fuzz' },
            logRecords: [
              { timeUnixNano: t, observedTimeUnixNano: t, eventName: 'faultline.heartbeat', attributes: [int('faultline.heartbeat.interval_ms', 1000), int('process.memory.rss', 1 << 26)] },
              {
                timeUnixNano: t,
                eventName: 'process.exit',
                attributes: [int('process.exit.code', 1), str('process.exit.reason', 'uncaught_exception'), str('exception.type', 'Error'), { key: 'process.exit.intended', value: { boolValue: false } }],
              },
              { timeUnixNano: t, severityNumber: 17, severityText: 'ERROR', body: { stringValue: 'failed' }, traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee19b7ec3c1b174', attributes: everyValue() },
              { timeUnixNano: t, body: { kvlistValue: { values: [str('k', 'v')] } }, attributes: [str('event.name', 'faultline.heartbeat')] },
            ],
          },
        ],
      },
    ],
  };
}

export function metricsSeed(): Record<string, unknown> {
  const t = nowNs();
  const attrs = [str('k', 'v')];
  return {
    resourceMetrics: [
      {
        resource: resource('api'),
        scopeMetrics: [
          {
            scope: { name: 'fuzz' },
            metrics: [
              { name: 'g', unit: 'By', gauge: { dataPoints: [{ timeUnixNano: t, asDouble: 1.5, attributes: attrs }, { timeUnixNano: t, asInt: '7' }] } },
              { name: 's', sum: { aggregationTemporality: 2, isMonotonic: true, dataPoints: [{ startTimeUnixNano: t, timeUnixNano: t, asInt: '3' }] } },
              { name: 'h', histogram: { aggregationTemporality: 1, dataPoints: [{ timeUnixNano: t, count: '3', sum: 6, bucketCounts: ['1', '2'], explicitBounds: [1], min: 1, max: 3 }] } },
              {
                name: 'e',
                exponentialHistogram: {
                  aggregationTemporality: 2,
                  dataPoints: [{ timeUnixNano: t, count: '2', sum: 3, scale: 2, zeroCount: '0', positive: { offset: 1, bucketCounts: ['1', '1'] }, negative: { offset: 0, bucketCounts: [] } }],
                },
              },
              { name: 'q', summary: { dataPoints: [{ timeUnixNano: t, count: '2', sum: 4, quantileValues: [{ quantile: 0.5, value: 2 }] }] } },
            ],
          },
        ],
      },
    ],
  };
}

export const SEEDS: Record<Signal, () => Record<string, unknown>> = { traces: tracesSeed, logs: logsSeed, metrics: metricsSeed };

const HEX_ID = new Set(['traceId', 'spanId', 'parentSpanId']);

/** OTLP/JSON (hex ids, base64 bytes) to the object protobufjs encodes (ids as bytes). */
function forProtobuf(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(forProtobuf);
  if (v === null || typeof v !== 'object') return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, HEX_ID.has(k) && typeof x === 'string' ? Buffer.from(x, 'hex') : forProtobuf(x)]));
}

export function encodeProtobuf(signal: Signal, json: Record<string, unknown>): Buffer {
  const t = SIGNALS[signal].request;
  return Buffer.from(t.encode(t.fromObject(forProtobuf(json) as Record<string, unknown>)).finish());
}
