/**
 * `faultline run [options] -- command args…`: a process wrapper for any language. It runs the command,
 * sends heartbeats with its vital signs while it lives, reports its exit as a `process.exit` event, passes
 * signals on, restarts it when asked (like systemd's `Restart=`), pings a check when it is a cron job, and
 * exits with the command's exit code. The watched command never suffers for its watcher: when faultline
 * cannot be reached it runs on, and telemetry waits in a bounded buffer.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';
import { startChild, type RunResult } from './child.js';
import { HELP, parseRunArgs, UsageError, type RunOptions } from './options.js';
import { OtlpSender, type SenderStats } from './otlp.js';
import { CheckPinger } from './ping.js';
import { memoryCgroup } from './proc.js';
import { closeConnections } from './post.js';
import { childEnv, exitRecord, heartbeatRecord, identity, requestHeaders, resource, wrapperExitCode } from './report.js';
import { RestartPolicy } from './restart.js';
import { SignalRelay } from './signals.js';

/** A run that stayed up this long resets the restart delay. */
const STABLE_RUN_MS = 10_000;

const log = (message: string) => void process.stderr.write(`faultline run: ${message}\n`);

const ms = (n: number) => (n < 1000 ? `${n} ms` : `${Math.round(n / 100) / 10} s`);

function describeEnd(r: RunResult): string {
  if (r.spawnError) return `could not start (${r.spawnError.code ?? r.spawnError.message})`;
  return `${r.signal ? `died of ${r.signal}` : `exited with code ${r.code}`} after ${ms(r.runtimeMs)}`;
}

function version(): string {
  try {
    return JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')).version;
  } catch {
    return '';
  }
}

function reportDelivery(stats: SenderStats, opts: RunOptions): void {
  const { dropped, pending } = stats;
  if (dropped.heartbeats + dropped.events + pending.heartbeats + pending.events + stats.rejected === 0) return;
  const parts: string[] = [];
  const n = (count: number, what: string) => `${count} ${what}${count === 1 ? '' : 's'}`;
  if (dropped.heartbeats + dropped.events > 0)
    parts.push(`dropped ${n(dropped.heartbeats, 'heartbeat')}${dropped.events ? ` and ${n(dropped.events, 'exit event')}` : ''} (buffer of ${opts.buffer} full)`);
  if (pending.heartbeats + pending.events > 0)
    parts.push(`${n(pending.heartbeats, 'heartbeat')} and ${n(pending.events, 'exit event')} not delivered within ${ms(opts.flushTimeoutMs)}`);
  if (stats.rejected) parts.push(`${n(stats.rejected, 'record')} refused`);
  log(`telemetry to ${opts.otlpEndpoint}: ${stats.delivered} delivered, ${parts.join(', ')}${stats.lastError ? ` (last error: ${stats.lastError})` : ''}`);
}

/** Runs the wrapper; resolves with the exit code the wrapper should exit with. */
export async function main(argv: string[]): Promise<number> {
  let opts: RunOptions;
  try {
    const parsed = parseRunArgs(argv);
    if (parsed === 'help') {
      process.stdout.write(HELP);
      return 0;
    }
    opts = parsed;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`faultline run: ${err.message}\nRun "faultline run --help" for usage.\n`);
    return 2;
  }

  // A reader of the wrapper's stderr that went away (EPIPE) must not end the wrapper, nor the command with it.
  process.stderr.on('error', () => undefined);
  const id = identity(opts, process.env, hostname(), process.pid);
  const env = childEnv(process.env, id, opts.otlpEndpoint, opts.token);
  const cgroup = memoryCgroup();
  const headers = requestHeaders(process.env, opts.token);
  const sender = new OtlpSender({ endpoint: opts.otlpEndpoint, maxRecords: opts.buffer, scope: { name: 'faultline.run', version: version() }, log, headers });
  const pinger = opts.check ? new CheckPinger(opts.url, opts.check, log, headers.authorization ? { authorization: headers.authorization } : {}) : null;
  const policy = new RestartPolicy({
    mode: opts.restart,
    initialDelayMs: opts.restartDelayMs,
    maxDelayMs: opts.restartMaxDelayMs,
    maxRestarts: opts.maxRestarts,
    stableAfterMs: STABLE_RUN_MS,
  });
  const relay = new SignalRelay();
  relay.install();
  const resourceFor = (pid: number | undefined) => resource(id, opts.command, opts.args, pid, process.pid);

  let exitCode = 0;
  for (;;) {
    const rid = randomUUID();
    pinger?.start(rid);
    const restarts = policy.restarts;
    const running = startChild({
      command: opts.command,
      args: opts.args,
      env,
      intervalMs: opts.intervalMs,
      cgroup,
      onHeartbeat: (v) => sender.enqueue('heartbeat', resourceFor(v.pid), heartbeatRecord(v, opts.intervalMs, cgroup.limit, restarts)),
    });
    relay.attach(running.child);
    const result = await running.done;
    const { forwarded, stopForwarded } = relay.detach();
    const intended = stopForwarded || (result.signal !== null && forwarded.has(result.signal));
    const delay = relay.stopSignal ? null : policy.next({ code: result.code, signal: result.signal, runtimeMs: result.runtimeMs, intended });
    const sent = sender.snapshot();
    sender.enqueue(
      'event',
      resourceFor(result.pid),
      exitRecord(result, {
        memoryLimit: cgroup.limit,
        intended,
        restarts,
        restartInMs: delay,
        restartPolicy: opts.restart,
        droppedSoFar: sent.dropped.heartbeats + sent.dropped.events,
      }),
    );
    exitCode = wrapperExitCode(result);
    pinger?.finish(rid, exitCode, result.stderrTail);
    if (result.spawnError) log(`cannot run "${opts.command}": ${result.spawnError.message}`);

    if (delay === null) {
      if (opts.restart !== 'no' && !intended && !relay.stopSignal && opts.maxRestarts !== undefined && policy.restarts >= opts.maxRestarts)
        log(`${opts.command} ${describeEnd(result)}; not restarting: ${policy.restarts} restarts (--max-restarts) used up`);
      break;
    }
    log(`${opts.command} ${describeEnd(result)}; restart ${policy.restarts} in ${ms(delay)}`);
    if (await relay.sleep(delay)) {
      exitCode = wrapperExitCode({ code: null, signal: relay.stopSignal });
      log(`stopped by ${relay.stopSignal} while waiting to restart`);
      break;
    }
  }

  // The command is done: deliver what is left, for a while only, then go with its exit code.
  relay.whenIdle((signal) => {
    log(`${signal}: exiting without waiting for telemetry`);
    process.exit(exitCode);
  });
  const [stats, pinged] = await Promise.all([sender.flush(opts.flushTimeoutMs), pinger ? pinger.flush(opts.flushTimeoutMs) : Promise.resolve(true)]);
  reportDelivery(stats, opts);
  if (!pinged) log(`check pings to ${opts.url} not all delivered within ${ms(opts.flushTimeoutMs)}`);
  relay.uninstall();
  closeConnections();
  return exitCode;
}
