/**
 * The direct protobuf path for traces (convertTracesProtobuf, rows straight from the bytes) gives exactly
 * what protobufjs's decoder followed by convertTraces gives: rows, rejections, truncations, resources.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import Long from 'long';
import protobuf from 'protobufjs';
import { makeBodies } from '../../bench/bodies.js';
import { RowBatch } from '../../src/ingest/batch.js';
import { SIGNALS, WireError, WireReader, convertProtobuf, decodeProtobuf } from '../../src/ingest/otlp/codec.js';
import { convertTraces, convertTracesProtobuf, type TracesRequest } from '../../src/ingest/otlp/traces.js';
import { nanosToMs, u64NanosToMs, u64Text } from '../../src/ingest/otlp/values.js';

const limits = { maxAttributeBytes: 64, maxFutureSkewS: 300, maxAgeDays: 30 };
const NOW = Date.now();

function viaProtobufjs(body: Uint8Array) {
  const batch = new RowBatch(limits, NOW);
  convertTraces(decodeProtobuf('traces', body) as TracesRequest, batch);
  return outcome(batch);
}

function direct(body: Uint8Array) {
  const batch = new RowBatch(limits, NOW);
  convertProtobuf('traces', body, (r) => convertTracesProtobuf(r, batch));
  return outcome(batch);
}

const outcome = (batch: RowBatch) => ({
  tables: Object.fromEntries([...batch.tables()].map(([t, rows]) => [t, JSON.parse(JSON.stringify(rows)) as unknown])),
  rejected: batch.rejected,
  message: batch.errorMessage(),
  cut: batch.cut.cut,
  resources: [...batch.resources],
});

/** Encoded with protobufjs (not verified: some edge cases, such as an unknown span kind, are not valid). */
const encode = (msg: Record<string, unknown>) => {
  const t = SIGNALS.traces.request;
  return Buffer.from(t.encode(t.fromObject(msg)).finish());
};

const nanos = (ms: number) => Long.fromString(`${BigInt(ms) * 1_000_000n + 123_456n}`, true);
const id = (hex: string) => Buffer.from(hex, 'hex');
const str = (key: string, v: string) => ({ key, value: { stringValue: v } });

const edgeSpans = [
  { traceId: id('0102030405060708090a0b0c0d0e0f10'), spanId: id('1112131415161718'), name: 'ok', kind: 2, startTimeUnixNano: nanos(NOW - 5), endTimeUnixNano: nanos(NOW) },
  { traceId: id('0102'), spanId: id('1112131415161718'), name: 'short trace id', startTimeUnixNano: nanos(NOW) },
  { traceId: id('00000000000000000000000000000000'), spanId: id('1112131415161718'), startTimeUnixNano: nanos(NOW) },
  { spanId: id('1112131415161718'), startTimeUnixNano: nanos(NOW) },
  { traceId: id('0102030405060708090a0b0c0d0e0f10'), spanId: id('0000000000000000'), startTimeUnixNano: nanos(NOW) },
  { traceId: id('0102030405060708090a0b0c0d0e0f10'), spanId: id('1112131415161718'), parentSpanId: id('0102'), startTimeUnixNano: nanos(NOW) },
  { traceId: id('0102030405060708090a0b0c0d0e0f10'), spanId: id('1112131415161718'), parentSpanId: id('2122232425262728'), name: 'no start' },
  { traceId: id('0102030405060708090a0b0c0d0e0f10'), spanId: id('1112131415161718'), startTimeUnixNano: nanos(NOW + 86_400_000) },
  { traceId: id('0102030405060708090a0b0c0d0e0f10'), spanId: id('1112131415161718'), startTimeUnixNano: Long.fromNumber(1000, true) },
  { traceId: id('0102030405060708090a0b0c0d0e0f10'), spanId: id('1112131415161718'), startTimeUnixNano: nanos(NOW), endTimeUnixNano: nanos(NOW - 1000), kind: 9, status: { code: 7 } },
  {
    traceId: id('a102030405060708090a0b0c0d0e0f10'),
    spanId: id('b112131415161718'),
    parentSpanId: id('c112131415161718'),
    traceState: 'vendor=1',
    name: 'everything',
    kind: 3,
    startTimeUnixNano: nanos(NOW - 2000),
    endTimeUnixNano: nanos(NOW),
    attributes: [
      str('s', 'text "quoted" \\ and \n newline ünïcödé 😀'),
      str('long', 'x'.repeat(200)),
      str('', 'empty key is skipped'),
      str('dup', 'first'),
      str('dup', 'second'),
      { key: 'novalue' },
      { key: 'unset', value: {} },
      { key: 'b', value: { boolValue: true } },
      { key: 'bf', value: { boolValue: false } },
      { key: 'i', value: { intValue: Long.fromNumber(42) } },
      { key: 'neg', value: { intValue: Long.fromNumber(-42) } },
      { key: 'big', value: { intValue: Long.fromString('9007199254740993') } },
      { key: 'min', value: { intValue: Long.MIN_VALUE } },
      { key: 'max', value: { intValue: Long.MAX_VALUE } },
      { key: 'd', value: { doubleValue: 3.25 } },
      { key: 'dn', value: { doubleValue: -0.1 } },
      { key: 'inf', value: { doubleValue: Infinity } },
      { key: 'nan', value: { doubleValue: NaN } },
      { key: 'bytes', value: { bytesValue: Buffer.from([0, 1, 2, 250, 255]) } },
      { key: '123', value: { stringValue: 'numeric key' } },
      {
        key: 'arr',
        value: {
          arrayValue: {
            values: [
              { stringValue: 'a' },
              { intValue: Long.fromNumber(-7) },
              { boolValue: false },
              { doubleValue: 1.5 },
              {},
              { arrayValue: { values: [{ stringValue: 'nested' }] } },
              { kvlistValue: { values: [str('k', 'v'), { key: 'n' }, str('', 'empty key kept in plain maps')] } },
            ],
          },
        },
      },
      { key: 'kv', value: { kvlistValue: { values: [str('a', 'b'), { key: 'big', value: { intValue: Long.fromString('123456789012345678') } }] } } },
      { key: 'longarr', value: { arrayValue: { values: Array.from({ length: 30 }, (_, i) => ({ stringValue: `item-${i}` })) } } },
    ],
    events: [
      { timeUnixNano: nanos(NOW - 1000), name: 'exception', attributes: [str('exception.type', 'TypeError'), str('exception.message', 'boom'), str('exception.stacktrace', 'at x\n'.repeat(30))] },
      { name: 'no time', attributes: [str('a', '1')] },
      { timeUnixNano: nanos(NOW - 500), name: 'exception' },
      { timeUnixNano: nanos(NOW - 400) },
    ],
    links: [
      { traceId: id('d102030405060708090a0b0c0d0e0f10'), spanId: id('e112131415161718'), attributes: [str('link.kind', 'follows')] },
      { traceId: id('0102'), spanId: id('0000000000000000') },
      {},
    ],
    status: { code: 2, message: 'failed: '.repeat(20) },
  },
];

function edgeRequest() {
  return {
    resourceSpans: [
      {
        resource: {
          attributes: [str('service.name', 'edge'), str('service.instance.id', 'edge-1'), str('host.name', 'h'), { key: 'process.pid', value: { intValue: Long.fromNumber(42) } }],
        },
        scopeSpans: [
          { scope: { name: 'lib', version: '1.0' }, spans: edgeSpans },
          { spans: edgeSpans.slice(0, 2) },
        ],
      },
      { scopeSpans: [{ scope: { name: 'no resource' }, spans: edgeSpans.slice(0, 1) }] },
      { resource: { attributes: [str('service.name', 'k8s'), str('k8s.pod.name', 'pod-1'), str('k8s.node.name', 'node-1')] } },
    ],
  };
}

describe('traces: direct protobuf conversion', () => {
  it('gives the same rows as protobufjs + convertTraces for the benchmark mix', () => {
    const base = BigInt(NOW) * 1_000_000n;
    for (const t of makeBodies('protobuf', 40, 100, 11, base)) {
      const a = viaProtobufjs(t.body);
      assert.deepEqual(direct(t.body), a);
      assert.equal((a.tables.spans as unknown[]).length, 100);
    }
  });

  it('gives the same rows, rejections and truncations for edge cases', () => {
    const body = encode(edgeRequest());
    const a = viaProtobufjs(body);
    assert.ok(a.rejected >= 8, `edge cases rejected: ${a.rejected}`);
    assert.ok(a.cut > 0);
    assert.deepEqual(direct(body), a);
  });

  it('reads a resource that comes after its scope spans, and unknown fields, like protobufjs', () => {
    const req = edgeRequest();
    const rs = req.resourceSpans[0];
    const t = SIGNALS.traces.request;
    const root = t.root;
    const resource = root.lookupType('opentelemetry.proto.resource.v1.Resource').encode(rs.resource as never).finish();
    const scopeSpans = root.lookupType('opentelemetry.proto.trace.v1.ScopeSpans');
    const w = protobuf.Writer.create();
    for (const ss of rs.scopeSpans!) w.uint32((2 << 3) | 2).bytes(scopeSpans.encode(scopeSpans.fromObject(ss)).finish());
    w.uint32((1 << 3) | 2).bytes(resource);
    w.uint32((99 << 3) | 0).uint64(12345); // unknown varint field
    w.uint32((98 << 3) | 5).fixed32(7); // unknown fixed32 field
    const reordered = protobuf.Writer.create().uint32((1 << 3) | 2).bytes(w.finish()).finish();
    assert.deepEqual(direct(reordered), viaProtobufjs(reordered));
  });

  it('refuses every truncated body that protobufjs refuses, and reads the others the same', () => {
    const body = encode({ resourceSpans: [{ resource: edgeRequest().resourceSpans[0].resource, scopeSpans: [{ scope: { name: 's' }, spans: edgeSpans.slice(10) }] }] });
    for (let n = 0; n < body.length; n++) {
      const prefix = body.subarray(0, n);
      let expected: unknown;
      try {
        expected = viaProtobufjs(prefix);
      } catch {
        assert.throws(() => direct(prefix), (e: Error & { status?: number }) => e.status === 400 && /cannot decode ExportTraceServiceRequest/.test(e.message), `prefix ${n}`);
        continue;
      }
      assert.deepEqual(direct(prefix), expected, `prefix ${n}`);
    }
  });

  it('reads garbage as a WireError, not a crash', () => {
    for (const bytes of [[0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x01], [0x0f], [0x0a, 0x02, 0x12], [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]]) {
      assert.throws(() => convertTracesProtobuf(new WireReader(Buffer.from(bytes)), new RowBatch(limits)), WireError);
    }
  });

  it('writes 64-bit integers exactly, and nanoseconds as milliseconds like nanosToMs', () => {
    const check = (v: bigint) => {
      const [lo, hi] = [Number(v & 0xffffffffn), Number(v >> 32n)];
      assert.equal(u64Text(lo, hi), v.toString());
      assert.equal(u64NanosToMs(lo, hi), nanosToMs(v.toString()), `ms of ${v}`);
    };
    for (const v of [999_999n, 1_000_000n, 1_795_777_658_665_999_999n, 1_795_777_658_666_000_000n, 9_007_199_254_740_991n]) check(v);
    for (let i = 0; i < 10_000; i++) check((BigInt(Math.floor(Math.random() * 2 ** 32)) << 32n) | BigInt(Math.floor(Math.random() * 2 ** 32)));
    for (const v of [0n, 1n, 4294967295n, 4294967296n, 9007199254740991n, 9007199254740993n, 1795777658665165497n, 999999999999999999n, 1000000000000000000n, 18446744073709551615n]) {
      assert.equal(u64Text(Number(v & 0xffffffffn), Number(v >> 32n)), v.toString());
    }
    for (let i = 0; i < 10_000; i++) {
      const v = (BigInt(Math.floor(Math.random() * 2 ** 32)) << 32n) | BigInt(Math.floor(Math.random() * 2 ** 32));
      assert.equal(u64Text(Number(v & 0xffffffffn), Number(v >> 32n)), v.toString());
    }
  });
});
