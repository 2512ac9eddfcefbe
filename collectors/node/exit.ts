/**
 * How a process's end reaches faultline as a `process.exit` event, whatever the end:
 *  - an uncaught exception or an unhandled rejection (Node's default turns one into the other): the
 *    exception goes on a span as an `exception` event (status ERROR) and into the exit; both are flushed,
 *    then the process exits 1 as it would have. An application with its own `uncaughtException` handler has
 *    chosen to live on: then only the exception is recorded.
 *  - SIGTERM / SIGINT: an intended exit. Without a handler of the application's own, the exit is flushed and
 *    the process then dies of the same signal, as it would have; with one, the application shuts down its
 *    own way and the exit, when it comes, is reported as intended.
 *  - the event loop running empty: reported (and flushed) from `beforeExit`.
 *  - `process.exit()` anywhere: nothing asynchronous can run any more, so the event is sent synchronously
 *    by a short-lived helper process (bounded to 5 s). Spans still waiting in the batch are lost then.
 * Under a supervisor that reports exits from outside (`reportExit: false`), exceptions only.
 */
import { spawnSync } from 'node:child_process';
import { SpanStatusCode, type Tracer } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { keyValues, type Attrs } from '../run/otlp.js';

export interface ExitReporterDeps {
  /** Sends a log record (the exit event, an exception) at once. */
  emit: (record: { eventName?: string; severityNumber: number; body?: string; attributes: Attrs }) => void;
  /** A tracer for the exception's span (the SDK loads on first use). */
  tracer: () => Tracer;
  resource: Record<string, string | number>;
  logsUrl: string;
  headers: Record<string, string>;
  reportExit: boolean;
  /** Sends what is buffered; resolves when done or after its own time limit. */
  flush: () => Promise<void>;
  /** Stops heartbeats: a process reported dead must not beat on. */
  stopHeartbeats: () => void;
}

type Reason = 'uncaught_exception' | 'unhandled_rejection' | 'signal' | 'graceful' | 'error';

const STOP_SIGNALS = ['SIGTERM', 'SIGINT'] as const;
type StopSignal = (typeof STOP_SIGNALS)[number];
const SYNC_SEND_TIMEOUT_MS = 5000;

/** The helper that posts one OTLP/JSON body (stdin) to a URL (argv) with node:http(s), and exits. */
const SEND_SCRIPT = `const u=new URL(process.argv[1]);const c=[];process.stdin.on('data',(d)=>c.push(d));process.stdin.on('end',()=>{const b=Buffer.concat(c);const r=require(u.protocol==='https:'?'node:https':'node:http').request(u,{method:'POST',headers:{...JSON.parse(process.argv[2]),'content-length':b.length},timeout:${SYNC_SEND_TIMEOUT_MS - 300}},(res)=>{res.resume();res.on('end',()=>process.exit(res.statusCode<300?0:1));});r.on('error',()=>process.exit(1));r.on('timeout',()=>r.destroy());r.end(b);});`;

function exceptionAttrs(err: unknown): Attrs {
  const e = err instanceof Error ? err : new Error(String(err));
  return { 'exception.type': e.name, 'exception.message': e.message, 'exception.stacktrace': e.stack ?? '' };
}

export class ExitReporter {
  private readonly started = Date.now();
  private exitReported = false;
  private dying = false;
  private stopSignal: StopSignal | null = null;
  private readonly onUncaught = (err: unknown, origin: string) => void this.uncaught(err, origin);
  private readonly onSignal = (signal: StopSignal) => void this.signal(signal);
  private readonly onBeforeExit = (code: number) => void this.beforeExit(code);
  private readonly onExit = (code: number) => this.exit(code);

  constructor(private readonly deps: ExitReporterDeps) {}

  install(): void {
    process.on('uncaughtException', this.onUncaught);
    for (const s of STOP_SIGNALS) process.on(s, this.onSignal);
    if (this.deps.reportExit) {
      process.on('beforeExit', this.onBeforeExit);
      process.on('exit', this.onExit);
    }
  }

  uninstall(): void {
    process.off('uncaughtException', this.onUncaught);
    for (const s of STOP_SIGNALS) process.off(s, this.onSignal);
    process.off('beforeExit', this.onBeforeExit);
    process.off('exit', this.onExit);
  }

  private attributes(code: number | null, reason: Reason, extra: Attrs = {}): Attrs {
    return {
      'process.exit.code': code ?? undefined,
      'process.exit.signal': this.stopSignal ?? undefined,
      'process.exit.reason': reason,
      // Only a stop signal makes an exit intended; a clean exit is not a fault anyway.
      'process.exit.intended': this.stopSignal !== null,
      'process.runtime.ms': Date.now() - this.started,
      'process.memory.max_rss': process.resourceUsage().maxRSS * 1024,
      ...extra,
    };
  }

  private emitExit(attributes: Attrs): void {
    this.exitReported = true;
    this.deps.stopHeartbeats();
    const failed = attributes['process.exit.reason'] === 'uncaught_exception' || attributes['process.exit.reason'] === 'unhandled_rejection' || attributes['process.exit.reason'] === 'error';
    this.deps.emit({ eventName: 'process.exit', severityNumber: failed ? SeverityNumber.FATAL : SeverityNumber.INFO, attributes });
  }

  private async uncaught(err: unknown, origin: string): Promise<void> {
    const rejection = origin === 'unhandledRejection';
    const exception = exceptionAttrs(err);
    const span = this.deps.tracer().startSpan(rejection ? 'unhandled rejection' : 'uncaught exception');
    span.recordException(err instanceof Error ? err : String(err));
    span.setStatus({ code: SpanStatusCode.ERROR, message: String(exception['exception.message']) });
    span.end();
    if (process.listenerCount('uncaughtException') > 1) {
      // The application handles it and lives on: a recorded exception, not an exit.
      this.deps.emit({ severityNumber: SeverityNumber.ERROR, body: `${origin} ${exception['exception.type']}: ${exception['exception.message']}`, attributes: exception });
      return;
    }
    if (this.dying) return;
    this.dying = true;
    process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : `Uncaught ${String(err)}`}\n`);
    if (this.deps.reportExit) this.emitExit(this.attributes(1, rejection ? 'unhandled_rejection' : 'uncaught_exception', exception));
    else {
      this.deps.stopHeartbeats();
      this.deps.emit({ severityNumber: SeverityNumber.FATAL, body: `${origin} ${exception['exception.type']}: ${exception['exception.message']}`, attributes: exception });
    }
    await this.deps.flush();
    this.exitReported = true;
    process.exit(1);
  }

  private async signal(signal: StopSignal): Promise<void> {
    if (this.dying) {
      // A second stop signal while flushing: stop waiting, as without the collector.
      this.die(signal);
      return;
    }
    this.stopSignal ??= signal;
    // The application's own handler shuts it down; its exit is reported when it comes.
    if (process.listenerCount(signal) > 1) return;
    this.dying = true;
    if (this.deps.reportExit) this.emitExit(this.attributes(null, 'signal'));
    else this.deps.stopHeartbeats();
    await this.deps.flush();
    this.die(signal);
  }

  /** Ends the process by `signal` with its default action, so its parent sees what it would have seen. */
  private die(signal: StopSignal): void {
    this.exitReported = true;
    for (const s of STOP_SIGNALS) process.off(s, this.onSignal);
    process.kill(process.pid, signal);
  }

  private async beforeExit(code: number): Promise<void> {
    if (this.exitReported || this.dying) return;
    this.dying = true;
    this.emitExit(this.attributes(code, this.stopSignal ? 'signal' : code === 0 ? 'graceful' : 'error'));
    await this.deps.flush();
  }

  /** process.exit() or the end after beforeExit: only synchronous work is possible here. */
  private exit(code: number): void {
    if (this.exitReported) return;
    this.exitReported = true;
    this.deps.stopHeartbeats();
    this.sendNow(this.attributes(code, this.stopSignal ? 'signal' : code === 0 ? 'graceful' : 'error'));
  }

  private sendNow(attributes: Attrs): void {
    const now = `${BigInt(Date.now()) * 1_000_000n}`;
    const failed = attributes['process.exit.reason'] === 'error';
    const body = {
      resourceLogs: [
        {
          resource: { attributes: keyValues(this.deps.resource) },
          scopeLogs: [
            {
              scope: { name: 'faultline.collector' },
              logRecords: [
                {
                  timeUnixNano: now,
                  observedTimeUnixNano: now,
                  eventName: 'process.exit',
                  severityNumber: failed ? SeverityNumber.FATAL : SeverityNumber.INFO,
                  attributes: keyValues({ 'event.name': 'process.exit', ...attributes }),
                },
              ],
            },
          ],
        },
      ],
    };
    // No NODE_OPTIONS: a `--import` of this collector there must not start another one in the helper.
    spawnSync(process.execPath, ['-e', SEND_SCRIPT, this.deps.logsUrl, JSON.stringify({ ...this.deps.headers, 'content-type': 'application/json' })], {
      input: JSON.stringify(body),
      timeout: SYNC_SEND_TIMEOUT_MS,
      stdio: ['pipe', 'ignore', 'ignore'],
      env: { PATH: process.env.PATH ?? '' },
    });
  }
}
