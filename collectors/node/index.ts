/**
 * faultline's Node collector: heartbeats with the process's vital signs, the application's traces and logs,
 * and the exception and exit that end the process, over OTLP/HTTP — heartbeats and exits as OTLP/JSON by a
 * small sender of its own, the application's spans and log records (protobuf) by the OpenTelemetry SDK,
 * loaded the first time the application asks for a tracer or logger. Two ways in:
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
 * watched process; and those only when used (the memory budget is 10 MiB). Under `faultline run` (`FAULTLINE_SUPERVISED=1`) the wrapper reports the exit, and the
 * collector only the exception, so one exit is never reported twice.
 */
import { createRequire } from 'node:module';
import { context, propagation, trace, type Context, type TextMapGetter, type TextMapPropagator, type TextMapSetter, type Tracer, type TracerProvider } from '@opentelemetry/api';
import { logs as logsApi, type Logger, type LoggerOptions, type LoggerProvider as ApiLoggerProvider } from '@opentelemetry/api-logs';
import type * as Core from '@opentelemetry/core';
import type * as LogExporter from '@opentelemetry/exporter-logs-otlp-proto';
import type * as TraceExporter from '@opentelemetry/exporter-trace-otlp-proto';
import type * as Resources from '@opentelemetry/resources';
import type * as SdkLogs from '@opentelemetry/sdk-logs';
import type * as SdkTrace from '@opentelemetry/sdk-trace-base';
import { OtlpSender, type Attrs } from '../run/otlp.js';
import { AsyncLocalContextManager } from './context.js';
import { ExitReporter } from './exit.js';
import { resolveSettings, type CollectorOptions, type Settings } from './settings.js';
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

/** The SDK's parts (CommonJS packages), required on first use: each one loaded costs the watched process RSS. */
const load = createRequire(import.meta.url);

interface Sdk {
  traces: SdkTrace.BasicTracerProvider;
  appLogs: SdkLogs.LoggerProvider;
  propagator: TextMapPropagator;
}

/**
 * The OpenTelemetry SDK for the application's own spans and log records, built when the application (or a
 * crash, whose exception goes on a span) first asks for a tracer or a logger. A process that never traces
 * is watched with heartbeats and exit events alone and never loads it (~10 MiB of RSS).
 */
function sdkLoader(settings: Settings): { get: () => Sdk; loaded: () => Sdk | undefined } {
  let sdk: Sdk | undefined;
  const get = () => {
    if (sdk) return sdk;
    const { resourceFromAttributes } = load('@opentelemetry/resources') as typeof Resources;
    const { BatchLogRecordProcessor, LoggerProvider } = load('@opentelemetry/sdk-logs') as typeof SdkLogs;
    const { BasicTracerProvider, BatchSpanProcessor } = load('@opentelemetry/sdk-trace-base') as typeof SdkTrace;
    const { OTLPLogExporter } = load('@opentelemetry/exporter-logs-otlp-proto') as typeof LogExporter;
    const { OTLPTraceExporter } = load('@opentelemetry/exporter-trace-otlp-proto') as typeof TraceExporter;
    const { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } = load('@opentelemetry/core') as typeof Core;
    const resource = resourceFromAttributes(settings.resource);
    const headers = settings.headers;
    sdk = {
      appLogs: new LoggerProvider({ resource, processors: [new BatchLogRecordProcessor({ exporter: new OTLPLogExporter({ url: settings.logsUrl, headers }), scheduledDelayMillis: 500 })] }),
      traces: new BasicTracerProvider({
        resource,
        spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url: settings.tracesUrl, headers }), { scheduledDelayMillis: 500 })],
      }),
      propagator: new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }),
    };
    return sdk;
  };
  return { get, loaded: () => sdk };
}

/** The global tracer provider until the SDK is needed: the first getTracer() loads it. */
class LazyTracerProvider implements TracerProvider {
  constructor(private readonly sdk: () => Sdk) {}
  getTracer(name: string, version?: string, options?: { schemaUrl?: string }): Tracer {
    return this.sdk().traces.getTracer(name, version, options);
  }
}

/** The global logger provider until the SDK is needed: the first getLogger() loads it. */
class LazyLoggerProvider implements ApiLoggerProvider {
  constructor(private readonly sdk: () => Sdk) {}
  getLogger(name: string, version?: string, options?: LoggerOptions): Logger {
    return this.sdk().appLogs.getLogger(name, version, options);
  }
}

/** W3C trace context and baggage, loaded with the SDK on the first inject or extract. */
class LazyPropagator implements TextMapPropagator {
  constructor(private readonly sdk: () => Sdk) {}
  inject(ctx: Context, carrier: unknown, setter: TextMapSetter): void {
    this.sdk().propagator.inject(ctx, carrier, setter);
  }
  extract(ctx: Context, carrier: unknown, getter: TextMapGetter): Context {
    return this.sdk().propagator.extract(ctx, carrier, getter);
  }
  fields(): string[] {
    return ['traceparent', 'tracestate', 'baggage'];
  }
}

/** Severity numbers (OTLP) and their names, for the collector's own records. */
const SEVERITY_TEXT: Record<number, string> = { 9: 'INFO', 17: 'ERROR', 21: 'FATAL' };

/**
 * Starts the collector, once per process: a second call (say `--import` and the application's own `start()`)
 * returns the running one, so heartbeats never double.
 */
export function start(opts: CollectorOptions = {}): Collector {
  const global = globalThis as WithCollector;
  if (global[RUNNING]) return global[RUNNING];
  const settings = resolveSettings(opts);
  const sdk = sdkLoader(settings);

  // Heartbeats and exits go out one by one at once (they are few and time matters), as OTLP/JSON over
  // node:http through the same small bounded sender as faultline run's: no SDK needed for them.
  const events = new OtlpSender({
    endpoint: settings.logsUrl,
    url: settings.logsUrl,
    maxRecords: 100,
    scope: { name: 'faultline.collector', version: '' },
    // The application's stderr is its own (and faultline reads exceptions from it): the collector is quiet.
    log: () => undefined,
    headers: settings.headers,
  });
  const emit = (kind: 'heartbeat' | 'event', record: { eventName?: string; severityNumber?: number; body?: string; attributes: Attrs }) =>
    events.enqueue(kind, settings.resource, {
      timeMs: Date.now(),
      eventName: record.eventName ?? '',
      severityNumber: record.severityNumber,
      severityText: record.severityNumber ? SEVERITY_TEXT[record.severityNumber] : undefined,
      body: record.body,
      attributes: record.attributes,
    });
  const tracer = () => sdk.get().traces.getTracer('faultline.collector');
  if (settings.registerGlobals) {
    // Each set* refuses (and keeps the other) when the application registered its own first.
    context.setGlobalContextManager(new AsyncLocalContextManager().enable());
    propagation.setGlobalPropagator(new LazyPropagator(sdk.get));
    trace.setGlobalTracerProvider(new LazyTracerProvider(sdk.get));
    logsApi.setGlobalLoggerProvider(new LazyLoggerProvider(sdk.get));
  }

  const vitals = new VitalSigns();
  const heartbeat = () => {
    emit('heartbeat', {
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
    const loaded = sdk.loaded();
    await Promise.race([
      Promise.all([events.flush(FLUSH_TIMEOUT_MS), loaded?.traces.forceFlush(), loaded?.appLogs.forceFlush()]).catch(() => undefined),
      new Promise((r) => (limit = setTimeout(r, FLUSH_TIMEOUT_MS))),
    ]);
    clearTimeout(limit);
  };
  const exits = new ExitReporter({ emit: (record) => emit('event', record), tracer, resource: settings.resource, logsUrl: settings.logsUrl, headers: settings.headers, reportExit: settings.reportExit, flush, stopHeartbeats });
  exits.install();

  let closing: Promise<void> | undefined;
  const collector: Collector = {
    heartbeat,
    get tracer() {
      return tracer();
    },
    get logger() {
      return sdk.get().appLogs.getLogger('app');
    },
    shutdown: () =>
      (closing ??= (async () => {
        stopHeartbeats();
        vitals.stop();
        exits.uninstall();
        const loaded = sdk.loaded();
        await Promise.all([events.flush(FLUSH_TIMEOUT_MS), loaded?.traces.shutdown(), loaded?.appLogs.shutdown()]).catch(() => undefined);
        delete global[RUNNING];
      })()),
  };
  global[RUNNING] = collector;
  return collector;
}
