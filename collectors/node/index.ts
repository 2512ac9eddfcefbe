/**
 * faultline's Node collector: heartbeats with the process's vital signs, the application's traces and logs,
 * and the exception and exit that end the process, sent over OTLP/HTTP (protobuf) with the OpenTelemetry
 * SDK. Two ways in:
 *
 *   node --import faultline/collector/register app.js      # configured by OTEL_* variables
 *
 *   import { start } from 'faultline/collector';
 *   start({ service: 'checkout' });
 *
 * It becomes the global tracer and logger provider (with an async context manager and W3C trace-context
 * propagation) unless the application set up its own, so `@opentelemetry/api` calls export to faultline.
 * Built from the SDK's parts (sdk-trace-base, sdk-logs, the OTLP/protobuf exporters) rather than on
 * @opentelemetry/sdk-node, which loads every exporter it might need (gRPC, Zipkin, Prometheus) into the
 * watched process. Under `faultline run` (`FAULTLINE_SUPERVISED=1`) the wrapper reports the exit, and the
 * collector only the exception, so one exit is never reported twice.
 */
import { context, propagation, trace, type Tracer } from '@opentelemetry/api';
import { logs as logsApi, type Logger } from '@opentelemetry/api-logs';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPLogExporter } from '@opentelemetry/exporter-logs-otlp-proto';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchLogRecordProcessor, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { AsyncLocalContextManager } from './context.js';
import { ExitReporter } from './exit.js';
import { resolveSettings, type CollectorOptions } from './settings.js';
import { VitalSigns } from './vitals.js';

export type { CollectorOptions } from './settings.js';
export { memoryLimit } from './vitals.js';

export interface Collector {
  /** Sends one heartbeat now. */
  heartbeat(): void;
  /** A tracer exporting to faultline, for the application's own spans. */
  tracer: Tracer;
  /** A logger exporting to faultline, for the application's own log records. */
  logger: Logger;
  /** Stops heartbeats and exit reporting, flushes and closes the exporters. Safe to call twice. */
  shutdown(): Promise<void>;
}

/** How long the end of a process waits for its telemetry to go out. */
const FLUSH_TIMEOUT_MS = 2000;
const RUNNING = Symbol.for('faultline.collector');

type WithCollector = typeof globalThis & { [RUNNING]?: Collector };

/**
 * Starts the collector, once per process: a second call (say `--import` and the application's own `start()`)
 * returns the running one, so heartbeats never double.
 */
export function start(opts: CollectorOptions = {}): Collector {
  const global = globalThis as WithCollector;
  if (global[RUNNING]) return global[RUNNING];
  const settings = resolveSettings(opts);
  const resource = resourceFromAttributes(settings.resource);
  const headers = settings.headers;

  // Heartbeats and exits go out one by one at once (they are few and time matters); the application's
  // own log records and spans in batches.
  const eventExporter = new OTLPLogExporter({ url: settings.logsUrl, headers });
  const events = new LoggerProvider({ resource, processors: [new SimpleLogRecordProcessor({ exporter: eventExporter })] });
  const appLogs = new LoggerProvider({ resource, processors: [new BatchLogRecordProcessor({ exporter: new OTLPLogExporter({ url: settings.logsUrl, headers }), scheduledDelayMillis: 500 })] });
  const traces = new BasicTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: settings.tracesUrl, headers }), { scheduledDelayMillis: 500 })],
  });
  const logger = events.getLogger('faultline.collector');
  const tracer = traces.getTracer('faultline.collector');
  if (settings.registerGlobals) {
    // Each set* refuses (and keeps the other) when the application registered its own first.
    context.setGlobalContextManager(new AsyncLocalContextManager().enable());
    propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
    trace.setGlobalTracerProvider(traces);
    logsApi.setGlobalLoggerProvider(appLogs);
  }

  const vitals = new VitalSigns();
  const heartbeat = () => {
    logger.emit({
      eventName: 'faultline.heartbeat',
      attributes: {
        'faultline.heartbeat.interval_ms': settings.intervalMs,
        // From inside the runtime's event loop: it stops when the process hangs.
        'faultline.heartbeat.source': 'runtime',
        ...vitals.sample(),
      },
    });
  };
  heartbeat();
  let timer: NodeJS.Timeout | undefined = setInterval(heartbeat, settings.intervalMs);
  timer.unref();
  const stopHeartbeats = () => {
    clearInterval(timer);
    timer = undefined;
  };

  const flush = async () => {
    let limit: NodeJS.Timeout | undefined;
    await Promise.race([
      // The simple processor's flush does not wait for the exports it started; its exporter's does.
      Promise.all([traces.forceFlush(), appLogs.forceFlush(), events.forceFlush().then(() => eventExporter.forceFlush())]).catch(() => undefined),
      new Promise((r) => (limit = setTimeout(r, FLUSH_TIMEOUT_MS))),
    ]);
    clearTimeout(limit);
  };
  const exits = new ExitReporter({ logger, tracer, resource: settings.resource, logsUrl: settings.logsUrl, headers, reportExit: settings.reportExit, flush, stopHeartbeats });
  exits.install();

  let closing: Promise<void> | undefined;
  const collector: Collector = {
    heartbeat,
    tracer,
    logger: appLogs.getLogger('app'),
    shutdown: () =>
      (closing ??= (async () => {
        stopHeartbeats();
        vitals.stop();
        exits.uninstall();
        await Promise.all([traces.shutdown(), appLogs.shutdown(), events.shutdown()]).catch(() => undefined);
        delete global[RUNNING];
      })()),
  };
  global[RUNNING] = collector;
  return collector;
}
