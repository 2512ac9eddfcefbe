/**
 * faultline's Node collector: heartbeats with the process's vital signs, and the exception and exit that
 * end it, sent over OTLP/HTTP (protobuf) with the official OpenTelemetry SDK.
 *
 *   import { start } from 'faultline/collector';
 *   start({ service: 'checkout' });            // or configure with OTEL_* variables
 *
 * Identity comes from the options or the standard variables: OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
 * (service.instance.id, service.version, host.name), OTEL_EXPORTER_OTLP_ENDPOINT. When the process runs
 * under a supervisor that reports its exit from outside (`FAULTLINE_SUPERVISED=1`, set by `faultline run`),
 * the collector reports the exception only, so one exit is never reported twice.
 */
import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { getHeapStatistics } from 'node:v8';
import { SpanStatusCode, type Tracer } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';

export interface CollectorOptions {
  service?: string;
  instance?: string;
  version?: string;
  host?: string;
  /** OTLP/HTTP base URL (default: OTEL_EXPORTER_OTLP_ENDPOINT, else http://127.0.0.1:4318). */
  endpoint?: string;
  /** Heartbeat interval (default: FAULTLINE_HEARTBEAT_INTERVAL_MS, else 1000 ms). */
  heartbeatIntervalMs?: number;
  /** Report the exit from inside (default: unless FAULTLINE_SUPERVISED=1). */
  reportExit?: boolean;
}

export interface Collector {
  /** Sends one heartbeat now. */
  heartbeat(): void;
  /** A tracer exporting to faultline, for the application's own spans. */
  tracer: Tracer;
  shutdown(): Promise<void>;
}

function resourceAttrs(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (process.env.OTEL_RESOURCE_ATTRIBUTES ?? '').split(',')) {
    const i = pair.indexOf('=');
    if (i > 0) out[decodeURIComponent(pair.slice(0, i).trim())] = decodeURIComponent(pair.slice(i + 1).trim());
  }
  return out;
}

/** The memory the process may use: the cgroup limit when there is one, else V8's heap limit. */
export function memoryLimit(): number {
  try {
    const text = readFileSync('/sys/fs/cgroup/memory.max', 'utf8').trim();
    if (/^\d+$/.test(text)) return Number(text);
  } catch {
    // no cgroup v2 limit
  }
  return getHeapStatistics().heap_size_limit;
}

export function start(opts: CollectorOptions = {}): Collector {
  const attrs = resourceAttrs();
  const service = opts.service ?? process.env.OTEL_SERVICE_NAME ?? attrs['service.name'] ?? 'unknown_service:node';
  const resource = resourceFromAttributes({
    ...attrs,
    'service.name': service,
    'service.instance.id': opts.instance ?? attrs['service.instance.id'] ?? `${hostname()}/${process.pid}`,
    'service.version': opts.version ?? attrs['service.version'] ?? '',
    'host.name': opts.host ?? attrs['host.name'] ?? hostname(),
    'process.pid': process.pid,
    'process.runtime.name': 'nodejs',
    'process.runtime.version': process.versions.node,
  });
  const endpoint = (opts.endpoint ?? process.env.OTEL_EXPORTER_OTLP_ENDPOINT ?? 'http://127.0.0.1:4318').replace(/\/$/, '');
  const intervalMs = opts.heartbeatIntervalMs ?? Number(process.env.FAULTLINE_HEARTBEAT_INTERVAL_MS ?? 1000);
  const reportExit = opts.reportExit ?? process.env.FAULTLINE_SUPERVISED !== '1';

  const logs = new LoggerProvider({ resource, processors: [new SimpleLogRecordProcessor({ exporter: new OTLPLogExporter({ url: `${endpoint}/v1/logs` }) })] });
  const traces = new BasicTracerProvider({ resource, spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: `${endpoint}/v1/traces` }), { scheduledDelayMillis: 500 })] });
  const logger = logs.getLogger('faultline.collector');
  const tracer = traces.getTracer('faultline.collector');
  const loop = monitorEventLoopDelay({ resolution: 10 });
  loop.enable();
  let cpu = process.cpuUsage();
  let cpuAt = performance.now();
  const limit = memoryLimit();
  const started = Date.now();

  const heartbeat = () => {
    const mem = process.memoryUsage();
    const now = performance.now();
    const used = process.cpuUsage(cpu);
    const utilization = (used.user + used.system) / 1000 / Math.max(1, now - cpuAt);
    cpu = process.cpuUsage();
    cpuAt = now;
    logger.emit({
      eventName: 'faultline.heartbeat',
      attributes: {
        'faultline.heartbeat.interval_ms': intervalMs,
        // From inside the runtime's event loop: it stops when the process hangs.
        'faultline.heartbeat.source': 'runtime',
        'process.memory.rss': mem.rss,
        'process.memory.limit': limit,
        'process.runtime.heap.used': mem.heapUsed,
        'process.cpu.utilization': Math.round(utilization * 1000) / 1000,
        'nodejs.eventloop.delay.p99': Math.round((loop.percentile(99) / 1e6) * 10) / 10,
      },
    });
    loop.reset();
  };
  heartbeat();
  const timer = setInterval(heartbeat, intervalMs);
  timer.unref();

  const flush = async () => {
    await Promise.race([Promise.all([traces.forceFlush(), logs.forceFlush()]), new Promise((r) => setTimeout(r, 2000))]);
  };

  const reportFatal = async (err: unknown) => {
    const e = err instanceof Error ? err : new Error(String(err));
    const exception = { 'exception.type': e.name, 'exception.message': e.message, 'exception.stacktrace': e.stack ?? '' };
    const span = tracer.startSpan('uncaught exception');
    span.recordException(e);
    span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
    span.end();
    if (reportExit)
      logger.emit({
        eventName: 'process.exit',
        severityNumber: SeverityNumber.FATAL,
        attributes: {
          'process.exit.code': 1,
          'process.exit.reason': 'uncaught_exception',
          'process.exit.intended': false,
          'process.runtime.ms': Date.now() - started,
          'process.memory.max_rss': process.resourceUsage().maxRSS * 1024,
          ...exception,
        },
      });
    else logger.emit({ severityNumber: SeverityNumber.FATAL, body: `uncaught ${e.name}: ${e.message}`, attributes: exception });
    await flush();
  };

  const onFatal = (err: unknown) => {
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    clearInterval(timer);
    void reportFatal(err).finally(() => process.exit(1));
  };
  const onSignal = (signal: NodeJS.Signals) => {
    clearInterval(timer);
    if (reportExit)
      logger.emit({
        eventName: 'process.exit',
        attributes: { 'process.exit.signal': signal, 'process.exit.reason': 'signal', 'process.exit.intended': true, 'process.runtime.ms': Date.now() - started },
      });
    // With no handler of the application's own, the signal's default is to end the process: keep that.
    void flush().finally(() => {
      if (process.listenerCount(signal) <= 1) process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  };
  process.on('uncaughtException', onFatal);
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);

  return {
    heartbeat,
    tracer,
    shutdown: async () => {
      clearInterval(timer);
      loop.disable();
      process.off('uncaughtException', onFatal);
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      await Promise.all([traces.shutdown(), logs.shutdown()]);
    },
  };
}
