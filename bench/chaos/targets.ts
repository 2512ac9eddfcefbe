/**
 * Watched processes for the scenarios: the fixture app (test/fixtures/apps/app.ts) under the real
 * `faultline run` wrapper, optionally inside a network namespace (a "host" of its own).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../src/paths.js';
import { CLI } from '../../test/support/faultline.js';
import type { Findings } from './harness.js';

const APP = join(packageRoot, 'dist', 'test', 'fixtures', 'apps', 'app.js');

export interface TargetSpec {
  service: string;
  instance: string;
  /** APP_MODE of the fixture app: crash-a, idle, ... */
  mode: string;
  afterMs?: number;
  /** Run inside this network namespace (`ip netns exec`). */
  netns?: string;
  /** host.name the target reports. */
  host?: string;
  intervalMs?: number;
  /** Bearer token for faultline (the wrapper passes it on to the app's collector). */
  token?: string;
}

export interface Target {
  proc: ChildProcess;
  exited: Promise<number | null>;
  stderr(): string;
}

export function startTarget(f: Findings, otlpEndpoint: string, t: TargetSpec): Target {
  const wrapped = [
    CLI, 'run', '--service', t.service, '--instance', t.instance, '--restart', 'no',
    // The wrapper keeps the exit until faultline takes it (faultline may be down when the app dies).
    '--flush-timeout', '90s', '--interval', `${t.intervalMs ?? 500}ms`, '--otlp-endpoint', otlpEndpoint,
    ...(t.token ? ['--token', t.token] : []),
    '--', process.execPath, APP,
  ];
  const [cmd, args] = t.netns ? ['ip', ['netns', 'exec', t.netns, process.execPath, ...wrapped]] : [process.execPath, wrapped];
  const proc = spawn(cmd, args, {
    env: {
      PATH: process.env.PATH ?? '',
      APP_MODE: t.mode,
      APP_AFTER_MS: String(t.afterMs ?? 1000),
      FAULTLINE_HEARTBEAT_INTERVAL_MS: String(t.intervalMs ?? 500),
      ...(t.host ? { OTEL_RESOURCE_ATTRIBUTES: `host.name=${t.host}` } : {}),
    },
    stdio: ['ignore', 'ignore', 'pipe'],
    // Its own process group: cleanup ends the wrapper and the app under it together.
    detached: true,
  });
  let stderr = '';
  proc.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
  f.onCleanup(async () => {
    try {
      process.kill(-proc.pid!, 'SIGKILL');
    } catch {
      // the group is gone already
    }
    await exited;
  });
  return { proc, exited, stderr: () => stderr };
}
