/**
 * Starting the demo's processes: faultline itself, the fleet, and the cron job's runs — all through the
 * `faultline` CLI, as a user would run them.
 */
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';
import { startGroup, type Managed } from './processes.js';
import { CRON, CRON_CHECK, scaled, type MischiefKind } from './schedule.js';

export const CLI = join(packageRoot, 'dist', 'src', 'cli.js');
export const SERVICE = join(packageRoot, 'dist', 'collectors', 'demo', 'service.js');
const REPORT_JOB = join(packageRoot, 'collectors', 'demo', 'jobs', 'nightly-report.sh');

/** Runs `faultline serve`; its log goes to `logFile`. `listening` resolves with its addresses once it listens. */
export function startFaultline(configFile: string, logFile: string): { managed: Managed; listening: Promise<{ http: string; otlp: string }> } {
  const managed = startGroup('faultline', process.execPath, [CLI, 'serve', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(logFile, { flags: 'a' });
  managed.proc.stdout!.on('data', (d: Buffer) => log.write(d));
  let seen = '';
  let listening = false;
  const ports = new Promise<{ http: number; otlp: number }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`faultline did not start within 90 s; see ${logFile}`)), 90_000);
    managed.proc.stderr!.on('data', (d: Buffer) => {
      log.write(d);
      if (listening) return;
      seen += d.toString();
      const m = /faultline listening .*http=(\d+) otlp_http=(\d+)/.exec(seen);
      if (m) {
        listening = true;
        clearTimeout(timer);
        resolve({ http: Number(m[1]), otlp: Number(m[2]) });
      } else if (/cannot start|invalid configuration/.test(seen)) {
        clearTimeout(timer);
        reject(new Error(`faultline could not start: ${seen.trim().split('\n').slice(-3).join(' / ')}`));
      }
    });
    void managed.exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`faultline exited before it listened; see ${logFile}`));
    });
  });
  return { managed, listening: ports.then((p) => ({ http: `http://127.0.0.1:${p.http}`, otlp: `http://127.0.0.1:${p.otlp}` })) };
}

/** Waits until faultline's store is ready (escalation starts then). */
export async function waitReady(http: string, timeoutMs = 90_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      const [ready, supervision] = await Promise.all([fetch(`${http}/readyz`), fetch(`${http}/api/v1/supervision`)]);
      if (ready.ok && supervision.ok) return;
    } catch {
      // not yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`faultline's store was not ready within ${timeoutMs / 1000} s`);
}

/** Runs `faultline agent`, which starts the fleet under `faultline run` and carries out supervisor actions. */
export function startAgent(configFile: string, logFile: string): Managed {
  const m = startGroup('agent', process.execPath, [CLI, 'agent', '--config', configFile], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = createWriteStream(logFile, { flags: 'a' });
  for (const stream of [m.proc.stdout!, m.proc.stderr!]) stream.on('data', (d: Buffer) => log.write(d));
  void m.exited.then(() => log.end());
  return m;
}

/** One run of the cron job under `faultline run --check`, in the way the schedule says. */
export function runCronJob(what: MischiefKind, o: { http: string; otlp: string; speed: number; logFile: string }): Managed {
  const mode = what === 'cron-fail' ? 'fail' : what === 'cron-slow' ? 'slow' : 'ok';
  const m = startGroup(
    CRON_CHECK,
    process.execPath,
    [CLI, 'run', '--check', CRON_CHECK, '--service', CRON_CHECK, '--instance', CRON_CHECK, '--url', o.http, '--otlp-endpoint', o.otlp, '--', 'sh', REPORT_JOB],
    { env: { ...process.env, REPORT_MODE: mode, REPORT_SLOW_S: String(scaled(CRON.slowRun, o.speed) / 1000) }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const log = createWriteStream(o.logFile, { flags: 'a' });
  for (const stream of [m.proc.stdout!, m.proc.stderr!]) stream.on('data', (d: Buffer) => log.write(d));
  void m.exited.then(() => log.end());
  return m;
}
