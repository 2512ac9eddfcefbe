/**
 * Admission control on a real faultline process: a flood of OTLP/HTTP span requests from many
 * connections makes its event loop late; new requests are then answered 429 with Retry-After before their
 * body is read (gRPC: RESOURCE_EXHAUSTED with RetryInfo), while the API, on the same loop, keeps
 * answering in time. Every acknowledged request is stored whole and once, and no shed one at all.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import { SIGNALS } from '../../src/ingest/otlp/codec.js';
import { eventually, queryStore, removeDir, startFaultline, tempDir, type RunningFaultline } from '../support/faultline.js';

const SPANS_PER_REQUEST = 1000;
const CONNECTIONS = 48;
const FLOOD_MS = 8000;
/** The API's bound under the flood: usable, as the chaos overload scenario asks (p99 ≤ 2 s), with room for a loaded machine. */
const API_MAX_MS = 3000;

const nowNanos = () => (BigInt(Date.now()) * 1_000_000n).toString();

const TRACE_PLACEHOLDER = 'f'.repeat(32);
/**
 * One request's spans, all in one trace: the trace id names the request in the store. Made once and
 * stamped per request, so that the flood costs this process little and faultline much.
 */
const SPANS_TEMPLATE = JSON.stringify({
  resourceSpans: [
    {
      resource: { attributes: [{ key: 'service.name', value: { stringValue: 'flood' } }] },
      scopeSpans: [
        {
          spans: Array.from({ length: SPANS_PER_REQUEST }, (_, i) => ({
            traceId: TRACE_PLACEHOLDER,
            spanId: (i + 1).toString(16).padStart(16, '0'),
            name: `flood-${i % 7}`,
            kind: 2,
            startTimeUnixNano: nowNanos(),
            endTimeUnixNano: nowNanos(),
            attributes: [
              { key: 'http.route', value: { stringValue: `/orders/${i}` } },
              { key: 'pad', value: { stringValue: 'x'.repeat(120) } },
            ],
          })),
        },
      ],
    },
  ],
});
const spansBody = (traceId: string) => SPANS_TEMPLATE.replaceAll(TRACE_PLACEHOLDER, traceId);

interface Outcome {
  acked: Set<string>;
  shed: Set<string>;
  retryAfter: Set<string>;
  overloadedBodies: number;
  other: string[];
}

/** Posts one span request; a shed one waits its Retry-After before returning, as OTLP exporters do. */
async function postSpans(fl: RunningFaultline, out: Outcome): Promise<void> {
  const traceId = randomBytes(16).toString('hex');
  const res = await fetch(`${fl.otlpHttp}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: spansBody(traceId) }).catch((err: Error) => err);
  if (res instanceof Error) return void out.other.push(res.message);
  const text = await res.text();
  if (res.status === 200) out.acked.add(traceId);
  else if (res.status === 429) {
    out.shed.add(traceId);
    out.retryAfter.add(res.headers.get('retry-after') ?? '(none)');
    if ((JSON.parse(text) as { error?: { code?: string } }).error?.code === 'overloaded') out.overloadedBodies++;
    await new Promise((r) => setTimeout(r, Number(res.headers.get('retry-after') ?? 1) * 1000));
  } else out.other.push(`HTTP ${res.status}: ${text.slice(0, 200)}`);
}

/** One connection of the flood: span requests back to back until `until`. */
async function floodWorker(fl: RunningFaultline, until: number, out: Outcome): Promise<void> {
  while (Date.now() < until) await postSpans(fl, out);
}

/** GETs the fault list one request at a time, as a person refreshing would, and keeps each latency. */
async function measureApi(fl: RunningFaultline, until: number): Promise<{ ms: number[]; failed: string[]; lags: number[] }> {
  const ms: number[] = [], failed: string[] = [], lags: number[] = [];
  while (Date.now() < until) {
    const t = performance.now();
    const res = await fetch(`${fl.http}/api/v1/faults?limit=50`, { signal: AbortSignal.timeout(30_000) }).catch((err: Error) => err);
    if (res instanceof Error) failed.push(res.message);
    else {
      await res.arrayBuffer();
      if (res.ok) ms.push(performance.now() - t);
      else failed.push(`HTTP ${res.status}`);
    }
    const m = await (await fetch(`${fl.http}/metrics`)).text();
    lags.push(Number(/faultline_event_loop_delay_ms ([\d.]+)/.exec(m)?.[1]));
    await new Promise((r) => setTimeout(r, 100));
  }
  return { ms, failed, lags };
}

/** One OTLP/gRPC trace export of a single span; resolves with the status and the trailers. */
function grpcExport(client: grpc.Client, traceId: string): Promise<{ code: number; metadata?: grpc.Metadata }> {
  const t = SIGNALS.traces.request;
  const body = t.encode(
    t.fromObject({
      resourceSpans: [
        {
          resource: { attributes: [{ key: 'service.name', value: { stringValue: 'flood' } }] },
          scopeSpans: [{ spans: [{ traceId: Buffer.from(traceId, 'hex'), spanId: randomBytes(8), name: 'grpc', startTimeUnixNano: nowNanos() }] }],
        },
      ],
    }),
  ).finish();
  return new Promise((resolve) =>
    client.makeUnaryRequest(SERVICE, (b: Buffer) => b, (b: Buffer) => b, Buffer.from(body), (err) => resolve(err ? { code: err.code, metadata: err.metadata } : { code: 0 })),
  );
}
const SERVICE = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

/** The retry delay (s) in a google.rpc.Status's RetryInfo detail (the grpc-status-details-bin trailer). */
function retryDelayOf(details: Buffer): number | undefined {
  const root = protobuf.Root.fromJSON({
    nested: {
      Status: { fields: { code: { type: 'int32', id: 1 }, message: { type: 'string', id: 2 }, details: { rule: 'repeated', type: 'Any', id: 3 } } },
      Any: { fields: { type_url: { type: 'string', id: 1 }, value: { type: 'bytes', id: 2 } } },
      RetryInfo: { fields: { retry_delay: { type: 'Duration', id: 1 } } },
      Duration: { fields: { seconds: { type: 'int64', id: 1 } } },
    },
  });
  const status = root.lookupType('Status').toObject(root.lookupType('Status').decode(details), { longs: Number }) as { details?: { type_url: string; value: Uint8Array }[] };
  const info = status.details?.find((d) => d.type_url === 'type.googleapis.com/google.rpc.RetryInfo');
  if (!info) return undefined;
  const r = root.lookupType('RetryInfo').toObject(root.lookupType('RetryInfo').decode(info.value), { longs: Number }) as { retry_delay?: { seconds?: number } };
  return r.retry_delay?.seconds;
}

describe('ingest under overload', () => {
  const dir = tempDir('faultline-overload-');
  after(() => removeDir(dir));

  it('sheds new ingest with 429 + Retry-After while the API stays usable, and loses nothing acknowledged', async (t) => {
    const config = join(dir, 'faultline.yaml');
    // A lower delay threshold than the default (100 ms), so that the flood a test can afford trips it.
    writeFileSync(config, 'ingest:\n  max_event_loop_delay_ms: 50\n  retry_after_s: 1\n');
    const fl = await startFaultline({ dataDir: join(dir, 'data'), env: { FAULTLINE_CONFIG: config } });
    const grpcClient = new grpc.Client(fl.otlpGrpc.replace('http://', ''), grpc.credentials.createInsecure());
    const out: Outcome = { acked: new Set(), shed: new Set(), retryAfter: new Set(), overloadedBodies: 0, other: [] };
    const grpcAcked = new Set<string>();
    let grpcShed: { code: number; metadata?: grpc.Metadata } | undefined;
    const grpcOther: number[] = [];
    try {
      await eventually(async () => (await fetch(`${fl.http}/readyz`)).ok, 30_000, 'faultline ready');
      // Light load, once start-up work is done: the loop is healthy and nothing is shed.
      await eventually(async () => Number(/faultline_event_loop_delay_ms ([\d.]+)/.exec(await (await fetch(`${fl.http}/metrics`)).text())?.[1] ?? 1e9) < 10, 15_000, 'an idle loop');
      for (let i = 0; i < 10; i++) {
        await postSpans(fl, out);
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(out.acked.size === 10 && out.shed.size === 0, `light load: ${out.acked.size} acknowledged, ${out.shed.size} shed`);

      const until = Date.now() + FLOOD_MS;
      const api = measureApi(fl, until);
      // OTLP/gRPC exporters beside the HTTP flood, back to back too.
      const grpcProbe = Promise.all(
        Array.from({ length: 4 }, async () => {
          while (Date.now() < until) {
            const traceId = randomBytes(16).toString('hex');
            const r = await grpcExport(grpcClient, traceId);
            if (r.code === 0) grpcAcked.add(traceId);
            else {
              if (r.code === grpc.status.RESOURCE_EXHAUSTED) grpcShed ??= r;
              else grpcOther.push(r.code);
              await new Promise((r) => setTimeout(r, 1000));
            }
          }
        }),
      );
      await Promise.all(Array.from({ length: CONNECTIONS }, () => floodWorker(fl, until, out)));
      const { ms, failed, lags } = await api;
      await grpcProbe;
      const slowest = Math.max(...ms);
      t.diagnostic(`flood: ${out.acked.size} requests acknowledged, ${out.shed.size} shed; API: ${ms.length} answers, slowest ${slowest.toFixed(0)} ms; loop delay up to ${Math.max(...lags).toFixed(0)} ms`);

      assert.deepEqual(out.other, [], 'every ingest answer is 200 or 429');
      assert.ok(out.shed.size > 0, `the flood was shed (${out.acked.size} requests acknowledged)`);
      assert.equal(out.overloadedBodies, out.shed.size, 'each 429 says faultline is overloaded');
      assert.deepEqual([...out.retryAfter], ['1'], 'each 429 carries the configured Retry-After');
      assert.deepEqual(failed, [], 'every API request answered');
      assert.ok(ms.length >= 5 && slowest <= API_MAX_MS, `API under the flood: ${ms.length} answers, slowest ${slowest.toFixed(0)} ms (bound ${API_MAX_MS} ms)`);
      assert.deepEqual(grpcOther, [], 'every gRPC answer is OK or RESOURCE_EXHAUSTED');
      assert.ok(grpcShed, `an OTLP/gRPC export during the flood was refused with RESOURCE_EXHAUSTED (${grpcAcked.size} acknowledged)`);
      assert.equal(grpcShed.metadata?.get('retry-after')[0], '1');
      const details = grpcShed.metadata?.get('grpc-status-details-bin')[0];
      assert.ok(Buffer.isBuffer(details) && retryDelayOf(details) === 1, 'with RetryInfo, which makes it retryable for OTLP exporters');

      const metrics = await (await fetch(`${fl.http}/metrics`)).text();
      assert.match(metrics, /faultline_shed_requests_total\{reason="event_loop_delay"\} [1-9]/);
      assert.match(metrics, /faultline_event_loop_delay_ms \d/);
      // The loop recovers, and ingest is taken again; the episode is logged once, start and end.
      await eventually(async () => (await fetch(`${fl.otlpHttp}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"resourceSpans":[]}' })).ok, 15_000, 'ingest admitted again');
      await eventually(async () => (fl.logs().match(/ingest no longer shedding/g)?.length ?? 0) === (fl.logs().match(/ingest overloaded/g)?.length ?? 0), 20_000, 'the end of the episode logged');
      const episodes = fl.logs().match(/ingest overloaded/g)?.length ?? 0;
      assert.ok(episodes >= 1 && episodes <= 3, `one warning per episode, not one per request (${episodes} for ${out.shed.size} shed)`);
      assert.equal(fl.logs().match(/ingest no longer shedding/g)?.length, episodes, 'and one line at the end of each');
    } finally {
      grpcClient.close();
      assert.equal(await fl.stop(), 0, 'faultline stops cleanly after the flood');
    }

    const rows = await queryStore<{ trace_id: string; spans: string; distinct: string }>(
      fl.dataDir,
      `SELECT trace_id, count() AS spans, uniqExact(span_id) AS distinct FROM faultline.spans WHERE service = 'flood' GROUP BY trace_id`,
    );
    const stored = new Map(rows.map((r) => [r.trace_id, r]));
    for (const id of out.acked) {
      const r = stored.get(id);
      assert.ok(r && Number(r.spans) === SPANS_PER_REQUEST && Number(r.distinct) === SPANS_PER_REQUEST, `acknowledged request ${id} stored whole and once (${r?.spans ?? 0} spans)`);
    }
    for (const id of grpcAcked) assert.equal(Number(stored.get(id)?.spans ?? 0), 1, `gRPC export ${id} stored once`);
    for (const id of out.shed) assert.ok(!stored.has(id), `shed request ${id} not stored`);
    assert.equal(stored.size, out.acked.size + grpcAcked.size, 'nothing stored besides what was acknowledged');
  });
});
