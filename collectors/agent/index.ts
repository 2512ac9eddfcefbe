/**
 * `faultline agent`: the hand of faultline's supervisors on one host. It runs its programs through
 * `faultline run`, takes signed supervisor-action webhooks, carries out restart / stop / start on the
 * programs and systemd units they name, and reports each result back to faultline — closing the loop
 * crash → fault → action → restart → healthy again (or, when the result is a failure, escalation).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createLogger, type Level } from '../../src/log/index.js';
import { packageRoot } from '../../src/paths.js';
import { SystemdNotifier } from '../../src/systemd/index.js';
import { carryOut, select } from './actions.js';
import { AgentConfigError, loadAgentConfig, type AgentConfig } from './config.js';
import { Ledger } from './ledger.js';
import type { Managed } from './managed.js';
import { HELP, parseAgentArgs, UsageError } from './options.js';
import { Program } from './programs.js';
import { ResultReporter } from './reporter.js';
import { agentServer } from './server.js';
import { Unit } from './units.js';
import { webhookKey } from './webhook.js';

/** How long shutdown waits for results still being reported. */
const DRAIN_MS = 3000;

function version(): string {
  try {
    return JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')).version;
  } catch {
    return '';
  }
}

/** Runs the agent until SIGTERM or SIGINT; resolves with the exit code. */
export async function main(argv: string[]): Promise<number> {
  let config: AgentConfig;
  try {
    const flags = parseAgentArgs(argv);
    if (flags === 'help') {
      process.stdout.write(HELP);
      return 0;
    }
    config = loadAgentConfig({ ...flags, secrets: flags.secrets?.flatMap((s) => s.split(',')).map((s) => s.trim()).filter(Boolean) });
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`faultline agent: ${err.message}\nRun "faultline agent --help" for usage.\n`);
      return 2;
    }
    if (err instanceof AgentConfigError) {
      process.stderr.write(`faultline agent: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const envLevel = process.env.FAULTLINE_LOG_LEVEL as Level | undefined;
  const log = createLogger(envLevel && ['debug', 'info', 'warn', 'error'].includes(envLevel) ? envLevel : 'info');
  process.stderr.on('error', () => undefined);

  const programs = config.programs.map(
    (p) => new Program(p, { faultline: config.faultline, token: config.token, otlpEndpoint: config.otlp_endpoint, host: config.host, settleMs: config.settle, stopTimeoutMs: config.stop_timeout, log }),
  );
  const units = config.units.map((u) => new Unit(u, { systemctl: config.systemctl, host: config.host, log }));
  const managed: Managed[] = [...programs, ...units];
  const reporter = new ResultReporter({ faultline: config.faultline, token: config.token, log });
  let ledger: Ledger;
  try {
    ledger = new Ledger({
      file: config.state_file,
      onError: (err) => log.error('cannot write the state file: webhook ids are remembered in memory only from now on', { file: config.state_file, error: err }),
    });
  } catch (err) {
    log.error('cannot start', { reason: (err as Error).message });
    return 1;
  }

  const app = agentServer({
    keys: config.secrets.map((s) => webhookKey(s)!),
    toleranceMs: config.tolerance,
    ledger,
    managed,
    log,
    version: version(),
    execute: async (event) => {
      const outcome = await carryOut(event.action, select(event, managed));
      log[outcome.ok ? 'info' : 'warn'](outcome.ok ? 'action carried out' : 'action failed', { action: event.action.id, name: event.action.action, result: outcome.message });
      void reporter.report(event.action.id, outcome.ok ? 'succeeded' : 'failed', outcome.message);
      return outcome;
    },
  });

  let address: string;
  try {
    address = await app.listen({ host: config.listen.host, port: config.listen.port });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    log.error('cannot listen', { listen: `${config.listen.host}:${config.listen.port}`, reason: e.code === 'EADDRINUSE' ? 'the port is in use (--listen)' : e.message });
    return 1;
  }
  const port = (app.server.address() as { port: number }).port;
  log.info('faultline agent listening', {
    url: `${address}/actions`,
    port,
    programs: programs.map((p) => p.name).join(',') || 'none',
    units: units.map((u) => u.name).join(',') || 'none',
    faultline: config.faultline,
    config: config.source,
    secrets: config.secrets.length,
  });
  await Promise.all(
    programs.map(async (p) => {
      const started = await p.act('start');
      if (!started.ok) log.warn('program did not start', { program: p.name, result: started.message });
    }),
  );
  // Under systemd (Type=notify): ready once it listens and its programs were started; watchdog pings while
  // its event loop runs.
  new SystemdNotifier(log).ready(`listening on ${config.listen.host}:${port}; ${programs.length} programs, ${units.length} units`);

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        log.warn('second signal: killing the programs and exiting', { signal });
        for (const p of programs) p.kill();
        return resolve(130);
      }
      stopping = true;
      log.info('stopping: programs first, then results still being reported', { signal });
      void (async () => {
        await app.close().catch(() => undefined);
        await Promise.all(programs.map((p) => p.act('stop')));
        await reporter.drain(DRAIN_MS);
        log.info('agent stopped');
        resolve(0);
      })();
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}
