/**
 * What the collector is told: its options, else the standard OpenTelemetry variables (OTEL_SERVICE_NAME,
 * OTEL_RESOURCE_ATTRIBUTES, OTEL_EXPORTER_OTLP_ENDPOINT and the per-signal _TRACES_/_LOGS_ endpoints,
 * OTEL_EXPORTER_OTLP_HEADERS) and faultline's own (FAULTLINE_HEARTBEAT_INTERVAL_MS, FAULTLINE_SUPERVISED).
 * The environment is read here only. A bad variable is reported on stderr and replaced by its default: a
 * collector must never stop the application it watches. Hand-checked rather than with zod, which would
 * weigh several MiB in every watched process (the collector's memory budget is 10 MiB).
 */
import { hostname } from 'node:os';
import { parseResourceAttributes } from '../run/report.js';

export interface CollectorOptions {
  service?: string;
  instance?: string;
  version?: string;
  host?: string;
  /** OTLP/HTTP base URL (default: OTEL_EXPORTER_OTLP_ENDPOINT, else http://127.0.0.1:4318). */
  endpoint?: string;
  /** Heartbeat interval (default: FAULTLINE_HEARTBEAT_INTERVAL_MS, else 1000 ms). */
  heartbeatIntervalMs?: number;
  /** Report the exit from inside (default: unless FAULTLINE_SUPERVISED=1, set by `faultline run`). */
  reportExit?: boolean;
  /** Make the collector's providers the global OpenTelemetry ones (default true), unless others already are. */
  registerGlobals?: boolean;
}

export interface Settings {
  resource: Record<string, string | number>;
  tracesUrl: string;
  logsUrl: string;
  headers: Record<string, string>;
  intervalMs: number;
  reportExit: boolean;
  registerGlobals: boolean;
}

const DEFAULT_ENDPOINT = 'http://127.0.0.1:4318';
const MIN_INTERVAL_MS = 10;

const warn = (message: string) => void process.stderr.write(`faultline collector: ${message}\n`);

function httpUrl(text: string): boolean {
  try {
    return ['http:', 'https:'].includes(new URL(text).protocol);
  } catch {
    return false;
  }
}

/** An endpoint variable, or undefined (with a warning) when it is not an http(s) URL. */
function endpointVar(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name]?.trim();
  if (!v) return undefined;
  if (httpUrl(v)) return v;
  warn(`${name}="${v}" is not an http(s) URL; ignored`);
  return undefined;
}

/** OTEL_EXPORTER_OTLP_HEADERS: key=value pairs, comma-separated, percent-encoded (as the SDKs read it). */
function headersFrom(env: NodeJS.ProcessEnv, signal: 'LOGS' | 'TRACES'): Record<string, string> {
  return { ...parseResourceAttributes(env.OTEL_EXPORTER_OTLP_HEADERS), ...parseResourceAttributes(env[`OTEL_EXPORTER_OTLP_${signal}_HEADERS`]) };
}

function intervalFrom(env: NodeJS.ProcessEnv): number {
  const text = env.FAULTLINE_HEARTBEAT_INTERVAL_MS?.trim();
  if (!text) return 1000;
  if (/^\d+$/.test(text) && Number(text) >= MIN_INTERVAL_MS) return Number(text);
  warn(`FAULTLINE_HEARTBEAT_INTERVAL_MS="${text}" is not a whole number of milliseconds ≥ ${MIN_INTERVAL_MS}; using 1000`);
  return 1000;
}

/** Settings from explicit options (a programming error in them throws) over the environment. */
export function resolveSettings(opts: CollectorOptions, env: NodeJS.ProcessEnv = process.env): Settings {
  if (opts.endpoint !== undefined && !httpUrl(opts.endpoint)) throw new TypeError(`faultline collector: endpoint "${opts.endpoint}" is not an http(s) URL`);
  if (opts.heartbeatIntervalMs !== undefined && !(Number.isInteger(opts.heartbeatIntervalMs) && opts.heartbeatIntervalMs >= MIN_INTERVAL_MS))
    throw new TypeError(`faultline collector: heartbeatIntervalMs must be a whole number ≥ ${MIN_INTERVAL_MS}`);

  const attrs = parseResourceAttributes(env.OTEL_RESOURCE_ATTRIBUTES);
  const host = opts.host ?? attrs['host.name'] ?? hostname();
  const resource: Record<string, string | number> = {
    ...attrs,
    'service.name': opts.service ?? (env.OTEL_SERVICE_NAME?.trim() || attrs['service.name'] || 'unknown_service:node'),
    'service.instance.id': opts.instance ?? attrs['service.instance.id'] ?? `${host}/${process.pid}`,
    'host.name': host,
    'process.pid': process.pid,
    'process.runtime.name': 'nodejs',
    'process.runtime.version': process.versions.node,
  };
  const version = opts.version ?? attrs['service.version'];
  if (version) resource['service.version'] = version;

  // The base endpoint gets /v1/<signal> appended; a per-signal variable is the full URL (the OTel rule).
  const base = (opts.endpoint ?? endpointVar(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
  const signalUrl = (signal: 'LOGS' | 'TRACES', path: string) =>
    (opts.endpoint === undefined && endpointVar(env, `OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`)) || `${base}${path}`;
  return {
    resource,
    tracesUrl: signalUrl('TRACES', '/v1/traces'),
    logsUrl: signalUrl('LOGS', '/v1/logs'),
    headers: headersFrom(env, 'LOGS'),
    intervalMs: opts.heartbeatIntervalMs ?? intervalFrom(env),
    reportExit: opts.reportExit ?? env.FAULTLINE_SUPERVISED !== '1',
    registerGlobals: opts.registerGlobals ?? true,
  };
}
