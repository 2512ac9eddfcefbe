/**
 * The official OpenTelemetry JS exporters (protobuf, JSON and gRPC) send traces, logs and metrics to a
 * running faultline; after a clean shutdown the rows are read back from the store and compared field by field.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { context, SpanStatusCode, SpanKind, trace } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { OTLPLogExporter as LogsGrpc } from '@opentelemetry/exporter-logs-otlp-grpc';
import { OTLPLogExporter as LogsJson } from '@opentelemetry/exporter-logs-otlp-http';
import { OTLPLogExporter as LogsProto } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPMetricExporter as MetricsGrpc } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPMetricExporter as MetricsJson } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as MetricsProto } from '@opentelemetry/exporter-metrics-otlp-proto';
import { OTLPTraceExporter as TraceGrpc } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as TraceJson } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as TraceProto } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider, type LogRecordExporter } from '@opentelemetry/sdk-logs';
import { MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { queryStore, removeDir, startFaultline, type RunningFaultline } from '../support/faultline.js';

type Transport = 'proto' | 'json' | 'grpc';
const TRANSPORTS: Transport[] = ['proto', 'json', 'grpc'];

const resource = (t: Transport) =>
  resourceFromAttributes({
    'service.name': `checkout-${t}`,
    'service.instance.id': `checkout-${t}-1`,
    'service.version': '1.4.2',
    'host.name': 'node-a',
    'process.pid': 4242,
  });

function traceExporter(t: Transport, fl: RunningFaultline): SpanExporter {
  if (t === 'grpc') return new TraceGrpc({ url: fl.otlpGrpc });
  return t === 'proto' ? new TraceProto({ url: `${fl.otlpHttp}/v1/traces` }) : new TraceJson({ url: `${fl.otlpHttp}/v1/traces` });
}
function logExporter(t: Transport, fl: RunningFaultline): LogRecordExporter {
  if (t === 'grpc') return new LogsGrpc({ url: fl.otlpGrpc });
  return t === 'proto' ? new LogsProto({ url: `${fl.otlpHttp}/v1/logs` }) : new LogsJson({ url: `${fl.otlpHttp}/v1/logs` });
}
function metricExporter(t: Transport, fl: RunningFaultline): PushMetricExporter {
  if (t === 'grpc') return new MetricsGrpc({ url: fl.otlpGrpc });
  return t === 'proto' ? new MetricsProto({ url: `${fl.otlpHttp}/v1/metrics` }) : new MetricsJson({ url: `${fl.otlpHttp}/v1/metrics` });
}

interface Sent {
  traceId: string;
  rootSpanId: string;
  childSpanId: string;
  startNanos: bigint;
}

async function sendTraces(t: Transport, fl: RunningFaultline): Promise<Sent> {
  const provider = new BasicTracerProvider({ resource: resource(t), spanProcessors: [new BatchSpanProcessor(traceExporter(t, fl))] });
  const tracer = provider.getTracer('orders', '0.9.0');
  const start = new Date(Date.now() - 1000);
  const root = tracer.startSpan('POST /orders', {
    kind: SpanKind.SERVER,
    startTime: start,
    attributes: { 'http.request.method': 'POST', 'http.response.status_code': 500, retry: true, ratio: 0.25, tags: ['a', 'b'] },
  });
  const ctx = trace.setSpan(context.active(), root);
  const child = tracer.startSpan('SELECT orders', { kind: SpanKind.CLIENT, startTime: new Date(start.getTime() + 5) }, ctx);
  child.end(new Date(start.getTime() + 25));
  const err = new TypeError(`Cannot read properties of undefined (reading 'total') [${t}]`);
  root.recordException(err, new Date(start.getTime() + 30));
  root.setStatus({ code: SpanStatusCode.ERROR, message: 'order failed' });
  root.end(new Date(start.getTime() + 40));
  await provider.forceFlush();
  await provider.shutdown();
  return {
    traceId: root.spanContext().traceId,
    rootSpanId: root.spanContext().spanId,
    childSpanId: child.spanContext().spanId,
    startNanos: BigInt(start.getTime()) * 1_000_000n,
  };
}

async function sendLogs(t: Transport, fl: RunningFaultline): Promise<void> {
  const provider = new LoggerProvider({ resource: resource(t), processors: [new BatchLogRecordProcessor({ exporter: logExporter(t, fl) })] });
  const logger = provider.getLogger('collector');
  logger.emit({
    eventName: 'faultline.heartbeat',
    attributes: {
      'faultline.heartbeat.interval_ms': 1000,
      'process.memory.rss': 73_400_320,
      'process.memory.limit': 536_870_912,
      'process.cpu.utilization': 0.125,
      'nodejs.eventloop.delay.p99': 12.5,
      'process.runtime.heap.used': 31_457_280,
    },
  });
  logger.emit({
    // The attribute form of the event name, as older SDKs send it.
    attributes: {
      'event.name': 'process.exit',
      'process.exit.code': 137,
      'process.exit.signal': 'SIGKILL',
      'process.exit.reason': 'OOMKilled',
      'process.exit.intended': false,
      'exception.type': 'RangeError',
      'exception.message': 'Invalid array length',
      'exception.stacktrace': 'RangeError: Invalid array length\n    at grow (/app/src/buffer.js:10:5)',
      'process.stderr.tail': 'FATAL ERROR: Reached heap limit',
      'process.runtime.ms': 93_000,
      'process.memory.max_rss': 530_000_000,
    },
  });
  logger.emit({ severityNumber: SeverityNumber.WARN, severityText: 'WARN', body: `payment retry ${t}`, attributes: { attempt: 2 } });
  await provider.forceFlush();
  await provider.shutdown();
}

async function sendMetrics(t: Transport, fl: RunningFaultline): Promise<void> {
  const reader = new PeriodicExportingMetricReader({ exporter: metricExporter(t, fl), exportIntervalMillis: 60_000 });
  const provider = new MeterProvider({ resource: resource(t), readers: [reader] });
  const meter = provider.getMeter('process');
  meter.createObservableGauge('process.memory.usage', { unit: 'By' }).addCallback((r) => r.observe(73_400_320));
  meter.createCounter('jobs.done').add(7, { queue: 'emails' });
  meter.createHistogram('http.server.duration', { unit: 'ms' }).record(42, { route: '/orders' });
  await provider.forceFlush();
  await provider.shutdown();
}

describe('OTLP from the official OpenTelemetry JS exporters', () => {
  let fl: RunningFaultline;
  const sent = new Map<Transport, Sent>();

  before(async () => {
    fl = await startFaultline();
    for (const t of TRANSPORTS) {
      sent.set(t, await sendTraces(t, fl));
      await sendLogs(t, fl);
      await sendMetrics(t, fl);
    }
    // The trace API reads while the service runs (data queryable shortly after acknowledgement).
    const { traceId } = sent.get('proto')!;
    let body: { spans?: unknown[] } = {};
    for (let i = 0; i < 50 && (body.spans?.length ?? 0) < 2; i++) {
      await new Promise((r) => setTimeout(r, 200));
      const res = await fetch(`${fl.http}/api/v1/traces/${traceId}`);
      if (res.ok) body = (await res.json()) as typeof body;
    }
    assert.equal(body.spans?.length, 2, `GET /api/v1/traces/<id> returns both spans while running; log:\n${fl.logs()}`);
    assert.equal(await fl.stop(), 0, 'SIGTERM exits cleanly');
  });

  after(async () => {
    await fl?.kill9();
    if (fl) removeDir(fl.dataDir);
  });

  for (const t of TRANSPORTS) {
    it(`stores spans with their attributes, status and exception events (${t})`, async () => {
      const s = sent.get(t)!;
      const spans = await queryStore<Record<string, any>>(
        fl.dataDir,
        `SELECT span_id, parent_span_id, name, kind, status_code, status_message, service, instance, version, host,
                scope_name, scope_version, toString(toUnixTimestamp64Nano(ts)) AS start, duration_ns, attributes,
                events.name AS event_names, events.attributes AS event_attrs
         FROM faultline.spans WHERE trace_id = '${s.traceId}' ORDER BY ts`,
      );
      assert.equal(spans.length, 2);
      const [root, child] = spans;
      assert.equal(root.span_id, s.rootSpanId);
      assert.equal(root.parent_span_id, '');
      assert.equal(root.name, 'POST /orders');
      assert.equal(root.kind, 'server');
      assert.equal(root.status_code, 'error');
      assert.equal(root.status_message, 'order failed');
      assert.deepEqual(
        [root.service, root.instance, root.version, root.host],
        [`checkout-${t}`, `checkout-${t}-1`, '1.4.2', 'node-a'],
      );
      assert.equal(root.scope_name, 'orders');
      assert.equal(root.scope_version, '0.9.0');
      assert.equal(root.start, s.startNanos.toString(), 'nanosecond start time kept exactly');
      assert.equal(Number(root.duration_ns), 40_000_000);
      assert.deepEqual(root.attributes, {
        'http.request.method': 'POST',
        'http.response.status_code': '500',
        retry: 'true',
        ratio: '0.25',
        tags: '["a","b"]',
      });
      assert.deepEqual(root.event_names, ['exception']);
      assert.equal(root.event_attrs[0]['exception.type'], 'TypeError');
      assert.equal(child.parent_span_id, s.rootSpanId);
      assert.equal(child.span_id, s.childSpanId);
      assert.equal(child.kind, 'client');
      assert.equal(Number(child.duration_ns), 20_000_000);

      const exceptions = await queryStore<Record<string, string>>(
        fl.dataDir,
        `SELECT source, exception_type, message, span_name, span_id FROM faultline.exceptions WHERE trace_id = '${s.traceId}'`,
      );
      assert.deepEqual(exceptions, [
        {
          source: 'span',
          exception_type: 'TypeError',
          message: `Cannot read properties of undefined (reading 'total') [${t}]`,
          span_name: 'POST /orders',
          span_id: s.rootSpanId,
        },
      ]);
    });

    it(`puts heartbeats, exits and ordinary logs in their typed tables (${t})`, async () => {
      const where = `service = 'checkout-${t}'`;
      const [hb] = await queryStore<Record<string, unknown>>(
        fl.dataDir,
        `SELECT instance, version, host, pid, interval_ms, rss_bytes, memory_limit_bytes, heap_used_bytes, cpu_utilization, eventloop_delay_p99_ms FROM faultline.heartbeats WHERE ${where}`,
      );
      assert.deepEqual(hb, {
        instance: `checkout-${t}-1`,
        version: '1.4.2',
        host: 'node-a',
        pid: 4242,
        interval_ms: 1000,
        rss_bytes: 73400320,
        memory_limit_bytes: 536870912,
        heap_used_bytes: 31457280,
        cpu_utilization: 0.125,
        eventloop_delay_p99_ms: 12.5,
      });
      const [exit] = await queryStore<Record<string, unknown>>(
        fl.dataDir,
        `SELECT exit_code, signal, reason, intended, exception_type, exception_message, exception_stacktrace, stderr_tail, runtime_ms, max_rss_bytes FROM faultline.exits WHERE ${where}`,
      );
      assert.deepEqual(exit, {
        exit_code: 137,
        signal: 'SIGKILL',
        reason: 'OOMKilled',
        intended: false,
        exception_type: 'RangeError',
        exception_message: 'Invalid array length',
        exception_stacktrace: 'RangeError: Invalid array length\n    at grow (/app/src/buffer.js:10:5)',
        stderr_tail: 'FATAL ERROR: Reached heap limit',
        runtime_ms: 93000,
        max_rss_bytes: 530000000,
      });
      const logs = await queryStore<Record<string, unknown>>(
        fl.dataDir,
        `SELECT severity_number, severity_text, body, attributes, scope_name FROM faultline.logs WHERE ${where}`,
      );
      assert.deepEqual(logs, [
        { severity_number: 13, severity_text: 'WARN', body: `payment retry ${t}`, attributes: { attempt: '2' }, scope_name: 'collector' },
      ]);
      const exitExceptions = await queryStore(fl.dataDir, `SELECT source FROM faultline.exceptions WHERE ${where} AND source = 'exit'`);
      assert.equal(exitExceptions.length, 1, 'the exit exception is indexed too');
    });

    it(`stores gauge, sum and histogram points (${t})`, async () => {
      const points = await queryStore<Record<string, any>>(
        fl.dataDir,
        `SELECT name, type, unit, temporality, monotonic, value, count, sum, bucket_counts, attributes
         FROM faultline.metric_points WHERE service = 'checkout-${t}' ORDER BY name`,
      );
      const byName = Object.fromEntries(points.map((p) => [p.name, p]));
      assert.deepEqual(Object.keys(byName).sort(), ['http.server.duration', 'jobs.done', 'process.memory.usage']);
      assert.equal(byName['process.memory.usage'].type, 'gauge');
      assert.equal(byName['process.memory.usage'].value, 73400320);
      assert.equal(byName['process.memory.usage'].unit, 'By');
      assert.equal(byName['jobs.done'].type, 'sum');
      assert.equal(byName['jobs.done'].monotonic, true);
      assert.equal(byName['jobs.done'].temporality, 'cumulative');
      assert.equal(byName['jobs.done'].value, 7);
      assert.deepEqual(byName['jobs.done'].attributes, { queue: 'emails' });
      const h = byName['http.server.duration'];
      assert.equal(h.type, 'histogram');
      assert.equal(Number(h.count), 1);
      assert.equal(h.sum, 42);
      assert.equal(h.bucket_counts.map(Number).reduce((a: number, b: number) => a + b, 0), 1);
    });
  }

  it('lists every target seen, with version, host and last heartbeat', async () => {
    const targets = await queryStore<Record<string, unknown>>(
      fl.dataDir,
      `SELECT service, instance, argMaxMerge(version) AS version, argMaxMerge(host) AS host, max(last_heartbeat) > 0 AS has_hb
       FROM faultline.targets GROUP BY service, instance ORDER BY service`,
    );
    assert.deepEqual(
      targets,
      TRANSPORTS.map((t) => `checkout-${t}`)
        .sort()
        .map((service) => ({ service, instance: `${service}-1`, version: '1.4.2', host: 'node-a', has_hb: 1 })),
    );
  });
});
