/** The command line of `faultline run`: flags, their defaults from the environment, and the help text. */
import { parseArgs } from 'node:util';
import { RESTART_MODES, type RestartMode } from './restart.js';

export const HELP = `Usage: faultline run [options] -- command [args…]

Runs a command and reports it to faultline, whatever its language: heartbeats with its memory and CPU
(from /proc) while it lives, and its end — exit code or signal, run time, peak memory, the last lines of
its stderr — as a process.exit event. Signals sent to the wrapper (TERM, INT, HUP, QUIT, USR1, USR2) are
passed on to the command; the wrapper exits with the command's exit code (128+n after signal n).
If faultline cannot be reached the command runs on regardless; telemetry waits in a bounded buffer.

Identity (OTLP resource; the command gets the same through OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES,
and FAULTLINE_SUPERVISED=1, so an OpenTelemetry SDK inside it reports as the same target):
  -s, --service NAME          service.name (default: $OTEL_SERVICE_NAME, else the command's file name)
  -i, --instance ID           service.instance.id (default: from $OTEL_RESOURCE_ATTRIBUTES, else <host>/<wrapper pid>)
      --service-version V     service.version (default: from $OTEL_RESOURCE_ATTRIBUTES)

Where to report:
      --otlp-endpoint URL     OTLP/HTTP base URL (default: $OTEL_EXPORTER_OTLP_ENDPOINT, else http://127.0.0.1:4318)
      --url URL               faultline's HTTP address, for check pings (default: $FAULTLINE_URL, else http://127.0.0.1:8080)
      --token T               faultline API token with the ingest scope, sent as "Authorization: Bearer T" with
                              telemetry and pings (default: $FAULTLINE_TOKEN; else an authorization header in
                              $OTEL_EXPORTER_OTLP_HEADERS); the command gets it too, as FAULTLINE_TOKEN and in
                              OTEL_EXPORTER_OTLP_HEADERS, unless those are set

Cron jobs:
      --check SLUG            ping /ping/SLUG/start?rid=<run id> before each run and /ping/SLUG/<exit code>?rid=…
                              after it, with the end of its stderr as the run's log

Restarts (like systemd's Restart=):
      --restart MODE          no (default): run once; on-failure: again after a non-zero exit or a signal;
                              always: after a clean exit too. A TERM or INT to the wrapper stops for good.
      --restart-delay DUR     delay before the first restart (default 1s); doubles after each one
      --restart-max-delay DUR longest delay (default 1m); a run that stayed up 10 s resets it
      --max-restarts N        give up after N restarts (default: never)

Telemetry:
      --interval DUR          heartbeat interval (default 1s)
      --buffer N              records kept while faultline is unreachable (default 1000); the oldest
                              heartbeats are dropped first, exit events last; drops are counted and reported
      --flush-timeout DUR     how long to try to deliver what is left once the command ended (default 2s)
  -h, --help                  show this help

Durations: 500ms, 2s, 1.5m, 1h (a bare number is seconds).
Exit status: the command's; 128+n when it died of signal n; 127 when it was not found, 126 when it is not
executable; 2 for a bad command line.
`;

export class UsageError extends Error {}

export interface RunOptions {
  command: string;
  args: string[];
  service?: string;
  instance?: string;
  serviceVersion?: string;
  otlpEndpoint: string;
  url: string;
  check?: string;
  token?: string;
  restart: RestartMode;
  restartDelayMs: number;
  restartMaxDelayMs: number;
  maxRestarts?: number;
  intervalMs: number;
  buffer: number;
  flushTimeoutMs: number;
}

export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${flag}: "${text}" is not a duration (e.g. 500ms, 2s, 1m)`);
  return Math.round(Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms']);
}

function positiveInt(text: string, flag: string, min = 1): number {
  if (!/^\d+$/.test(text) || Number(text) < min) throw new UsageError(`${flag}: "${text}" is not a whole number${min > 0 ? ` ≥ ${min}` : ''}`);
  return Number(text);
}

const trimUrl = (u: string) => u.replace(/\/+$/, '');

/** Parses `[options] -- command args…`; returns 'help' for --help. Throws UsageError for a bad line. */
export function parseRunArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): RunOptions | 'help' {
  const dashes = argv.indexOf('--');
  const flags = dashes >= 0 ? argv.slice(0, dashes) : argv;
  let parsed;
  try {
    parsed = parseArgs({
      args: flags,
      allowPositionals: true,
      strict: true,
      options: {
        service: { type: 'string', short: 's' },
        instance: { type: 'string', short: 'i' },
        'service-version': { type: 'string' },
        'otlp-endpoint': { type: 'string' },
        url: { type: 'string' },
        check: { type: 'string' },
        token: { type: 'string' },
        restart: { type: 'string' },
        'restart-delay': { type: 'string' },
        'restart-max-delay': { type: 'string' },
        'max-restarts': { type: 'string' },
        interval: { type: 'string' },
        buffer: { type: 'string' },
        'flush-timeout': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    const hint = dashes < 0 ? ' (put the command after "--": faultline run [options] -- command args…)' : '';
    const unknown = /Unknown option '([^']+)'/.exec((err as Error).message);
    throw new UsageError(`${unknown ? `unknown option "${unknown[1]}"` : (err as Error).message}${hint}`);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  const command = dashes >= 0 ? argv.slice(dashes + 1) : parsed.positionals;
  if (dashes >= 0 && parsed.positionals.length > 0)
    throw new UsageError(`unexpected "${parsed.positionals[0]}" before "--" (options go before "--", the command after it)`);
  if (command.length === 0 || !command[0]) throw new UsageError('no command to run: faultline run [options] -- command args…');

  const restart = (v.restart ?? 'no') as RestartMode;
  if (!RESTART_MODES.includes(restart)) throw new UsageError(`--restart: "${v.restart}" is not one of ${RESTART_MODES.join(', ')}`);
  if (v.check !== undefined && !/^[a-z0-9][a-z0-9_.-]{0,127}$/.test(v.check))
    throw new UsageError(`--check: "${v.check}" is not a check slug (lower-case letters, digits, "-", "_", ".")`);
  const token = v.token ?? (env.FAULTLINE_TOKEN || undefined);
  if (token !== undefined && !/^[\x21-\x7e]+$/.test(token)) throw new UsageError('--token must be printable characters without spaces');
  for (const flag of ['service', 'instance'] as const)
    if (v[flag] !== undefined && v[flag].trim() === '') throw new UsageError(`--${flag} must not be empty`);
  const url = (flag: string, text: string) => {
    try {
      const u = new URL(text);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
    } catch {
      throw new UsageError(`${flag}: "${text}" is not an http(s) URL`);
    }
    return trimUrl(text);
  };
  const intervalMs = parseDuration(v.interval ?? '1s', '--interval');
  if (intervalMs < 10) throw new UsageError('--interval: at least 10ms');
  const restartDelayMs = parseDuration(v['restart-delay'] ?? '1s', '--restart-delay');
  const restartMaxDelayMs = Math.max(restartDelayMs, parseDuration(v['restart-max-delay'] ?? '1m', '--restart-max-delay'));

  return {
    command: command[0],
    args: command.slice(1),
    service: v.service,
    instance: v.instance,
    serviceVersion: v['service-version'],
    otlpEndpoint: url('--otlp-endpoint', v['otlp-endpoint'] ?? env.OTEL_EXPORTER_OTLP_ENDPOINT ?? 'http://127.0.0.1:4318'),
    url: url('--url', v.url ?? env.FAULTLINE_URL ?? 'http://127.0.0.1:8080'),
    check: v.check,
    token,
    restart,
    restartDelayMs,
    restartMaxDelayMs,
    maxRestarts: v['max-restarts'] !== undefined ? positiveInt(v['max-restarts'], '--max-restarts', 0) : undefined,
    intervalMs,
    buffer: positiveInt(v.buffer ?? '1000', '--buffer'),
    flushTimeoutMs: parseDuration(v['flush-timeout'] ?? '2s', '--flush-timeout'),
  };
}
