/**
 * What `faultline run` says about the command, in faultline's telemetry conventions: the target's identity
 * (OTLP resource), the environment that gives a child's own SDK the same identity, heartbeats and the
 * `process.exit` event, and the wrapper's own exit code.
 */
import { basename } from 'node:path';
import { constants } from 'node:os';
import type { RunResult, Vitals } from './child.js';
import type { Attrs, LogRecord } from './otlp.js';

export interface Identity {
  service: string;
  instance: string;
  version: string;
  host: string;
  /** Other resource attributes from OTEL_RESOURCE_ATTRIBUTES (deployment.environment, k8s.*, …). */
  extra: Record<string, string>;
}

/** OTEL_RESOURCE_ATTRIBUTES: comma-separated key=value pairs, percent-encoded. */
export function parseResourceAttributes(text: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of (text ?? '').split(',')) {
    const i = pair.indexOf('=');
    if (i <= 0) continue;
    try {
      out[decodeURIComponent(pair.slice(0, i).trim())] = decodeURIComponent(pair.slice(i + 1).trim());
    } catch {
      // a malformed escape: leave that pair out, as the SDKs do
    }
  }
  return out;
}

export function identity(
  opts: { service?: string; instance?: string; serviceVersion?: string; command: string },
  env: NodeJS.ProcessEnv,
  hostName: string,
  wrapperPid: number,
): Identity {
  const attrs = parseResourceAttributes(env.OTEL_RESOURCE_ATTRIBUTES);
  const host = attrs['host.name'] || hostName;
  const extra = { ...attrs };
  for (const k of ['service.name', 'service.instance.id', 'service.version', 'host.name', 'process.pid']) delete extra[k];
  return {
    service: opts.service ?? (env.OTEL_SERVICE_NAME || attrs['service.name'] || basename(opts.command)),
    instance: opts.instance ?? (attrs['service.instance.id'] || `${host}/${wrapperPid}`),
    version: opts.serviceVersion ?? attrs['service.version'] ?? '',
    host,
    extra,
  };
}

export function resource(id: Identity, command: string, args: string[], childPid: number | undefined, wrapperPid: number): Attrs {
  return {
    ...id.extra,
    'service.name': id.service,
    'service.instance.id': id.instance,
    'service.version': id.version || undefined,
    'host.name': id.host,
    'process.pid': childPid,
    'process.parent_pid': wrapperPid,
    'process.command': command,
    'process.command_line': [command, ...args].join(' '),
  };
}

/**
 * The headers of the wrapper's own requests: OTEL_EXPORTER_OTLP_HEADERS (names lower-cased), with the
 * token, when there is one, as the authorization.
 */
export function requestHeaders(env: NodeJS.ProcessEnv, token: string | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(parseResourceAttributes(env.OTEL_EXPORTER_OTLP_HEADERS))) headers[k.toLowerCase()] = v;
  if (token) headers.authorization = `Bearer ${token}`;
  return headers;
}

/** The command's environment: the same identity for an OpenTelemetry SDK inside it, and "supervised". */
export function childEnv(env: NodeJS.ProcessEnv, id: Identity, otlpEndpoint: string, token?: string): NodeJS.ProcessEnv {
  const attrs: Record<string, string> = {
    ...parseResourceAttributes(env.OTEL_RESOURCE_ATTRIBUTES),
    'service.instance.id': id.instance,
    'host.name': id.host,
  };
  if (id.version) attrs['service.version'] = id.version;
  delete attrs['service.name'];
  return {
    ...env,
    FAULTLINE_SUPERVISED: '1',
    OTEL_SERVICE_NAME: id.service,
    OTEL_RESOURCE_ATTRIBUTES: Object.entries(attrs)
      .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
      .join(','),
    OTEL_EXPORTER_OTLP_ENDPOINT: otlpEndpoint,
    // The token reaches the command's own SDK and pings, unless it was given its own.
    ...(token && { FAULTLINE_TOKEN: env.FAULTLINE_TOKEN ?? token, OTEL_EXPORTER_OTLP_HEADERS: env.OTEL_EXPORTER_OTLP_HEADERS ?? `authorization=${encodeURIComponent(`Bearer ${token}`)}` }),
  };
}

export function heartbeatRecord(v: Vitals, intervalMs: number, memoryLimit: number | null, restarts: number): LogRecord {
  return {
    timeMs: Date.now(),
    eventName: 'faultline.heartbeat',
    attributes: {
      'faultline.heartbeat.interval_ms': intervalMs,
      // From outside the process: proves it exists, not that it responds (see the detector).
      'faultline.heartbeat.source': 'wrapper',
      'process.memory.rss': v.rss,
      'process.memory.limit': memoryLimit,
      'process.memory.max_rss': v.maxRss,
      'process.cpu.utilization': v.cpuUtilization,
      'process.restart.count': restarts,
    },
  };
}

/** RSS at or above this share of the cgroup limit at a SIGKILL counts as an OOM kill. */
export const OOM_RATIO = 0.9;

export type ExitReason = 'OOMKilled' | 'signal' | 'error' | 'graceful';

export function exitReason(r: RunResult, memoryLimit: number | null): ExitReason {
  if (r.signal === 'SIGKILL' && (r.oomKill || (memoryLimit !== null && (r.lastRss ?? 0) >= OOM_RATIO * memoryLimit))) return 'OOMKilled';
  if (r.signal) return 'signal';
  return r.code === 0 ? 'graceful' : 'error';
}

/** The wrapper's own exit code for a run: the command's, or 128+n for signal n. */
export function wrapperExitCode(r: Pick<RunResult, 'code' | 'signal'>): number {
  if (r.signal) return 128 + (constants.signals[r.signal] ?? 0);
  return r.code ?? 1;
}

export interface ExitContext {
  memoryLimit: number | null;
  intended: boolean;
  restarts: number;
  /** The delay before the next run, when there will be one. */
  restartInMs: number | null;
  restartPolicy: string;
  droppedSoFar: number;
}

export function exitRecord(r: RunResult, ctx: ExitContext): LogRecord {
  const reason = exitReason(r, ctx.memoryLimit);
  const fine = ctx.intended || reason === 'graceful';
  return {
    timeMs: r.startedAt + r.runtimeMs,
    eventName: 'process.exit',
    severityNumber: fine ? 9 : 17,
    severityText: fine ? 'INFO' : 'ERROR',
    attributes: {
      'process.exit.code': r.code,
      'process.exit.signal': r.signal,
      'process.exit.reason': reason,
      'process.exit.intended': ctx.intended,
      'process.runtime.ms': r.runtimeMs,
      'process.memory.max_rss': r.maxRss,
      'process.memory.limit': ctx.memoryLimit,
      'process.stderr.tail': r.stderrTail,
      'process.restart.count': ctx.restarts,
      'faultline.restart.policy': ctx.restartPolicy,
      'faultline.restart.in_ms': ctx.restartInMs,
      'faultline.telemetry.dropped': ctx.droppedSoFar || undefined,
    },
  };
}
