/**
 * A program the agent manages: run through `faultline run` (which reports its heartbeats and its exit to
 * faultline), started, stopped and restarted on supervisor actions. Operations on one program run one at a
 * time, in the order they came. The wrapper runs in a process group of its own, so a command that ignores
 * SIGTERM (a hung event loop) can be killed without killing the wrapper that reports its end.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../src/log/index.js';
import { parseResourceAttributes } from '../run/report.js';
import { defaultInstance, type ProgramConfig } from './config.js';
import type { ActionName, Managed, OpResult } from './managed.js';

/** faultline's CLI next to this file (dist/collectors/agent → dist/src/cli.js). */
const CLI = fileURLToPath(new URL('../../src/cli.js', import.meta.url));

/** After the wrapper was killed outright, how long to wait for it to be gone. */
const KILL_WAIT_MS = 3000;

/** How long a command may take to come up and stay up for the settle time. */
const STARTUP_MS = 15_000;
const SETTLE_POLL_MS = 100;

/** How long a wrapper whose command ended may take to deliver the exit event (its --flush-timeout is 2 s). */
const WRAPPER_FLUSH_MS = 3000;

export interface ProgramContext {
  faultline: string;
  /** faultline's API token: handed to the program's telemetry (FAULTLINE_TOKEN, OTEL_EXPORTER_OTLP_HEADERS). */
  token?: string;
  otlpEndpoint: string;
  host: string;
  settleMs: number;
  stopTimeoutMs: number;
  log: Logger;
}

interface Run {
  proc: ChildProcess;
  startedAt: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const seconds = (ms: number) => `${Math.round(ms / 100) / 10} s`;
const describeExit = (e: { code: number | null; signal: NodeJS.Signals | null }) => (e.signal ? `died of ${e.signal}` : `exited with code ${e.code}`);

export class Program implements Managed {
  readonly kind = 'program';
  readonly name: string;
  readonly service: string;
  readonly instance: string;
  readonly host: string;
  private run: Run | null = null;
  private lastExit: { code: number | null; signal: NodeJS.Signals | null; at: number } | null = null;
  private stopped = false;
  private starts = 0;
  private queue: Promise<unknown> = Promise.resolve();
  /** The last lines the wrapper and the command wrote to stderr: the reason when a start fails. */
  private stderrTail: string[] = [];

  constructor(
    private readonly config: ProgramConfig,
    private readonly ctx: ProgramContext,
  ) {
    this.name = config.name;
    this.service = config.service;
    this.instance = config.instance ?? defaultInstance(ctx.host, config.name);
    // faultline run takes host.name from OTEL_RESOURCE_ATTRIBUTES when it is there: so does matching.
    this.host = parseResourceAttributes(config.env.OTEL_RESOURCE_ATTRIBUTES ?? process.env.OTEL_RESOURCE_ATTRIBUTES)['host.name'] || ctx.host;
  }

  /** Runs `op` after every operation queued before it. */
  private serial(op: () => Promise<OpResult>): Promise<OpResult> {
    const next = this.queue.then(op, op);
    this.queue = next.catch(() => undefined);
    return next;
  }

  act(action: ActionName): Promise<OpResult> {
    if (action === 'start') return this.serial(() => this.doStart());
    if (action === 'stop') return this.serial(() => this.doStop());
    if (action === 'restart')
      return this.serial(async () => {
        const stop = await this.doStop();
        if (!stop.ok) return stop;
        const start = await this.doStart();
        return start.ok ? { ok: true, message: `restarted (${start.message})` } : start;
      });
    return Promise.resolve({ ok: false, message: `unknown action "${action}"` });
  }

  status() {
    return {
      name: this.name,
      kind: this.kind,
      service: this.service,
      instance: this.instance,
      state: this.run ? 'running' : this.stopped ? 'stopped' : this.lastExit ? 'exited' : 'not started',
      pid: this.run?.proc.pid ?? null,
      starts: this.starts,
      last_exit: this.lastExit ? { code: this.lastExit.code, signal: this.lastExit.signal, at: new Date(this.lastExit.at).toISOString() } : null,
    };
  }

  private async doStart(): Promise<OpResult> {
    if (this.run) return { ok: true, message: `already running, pid ${this.run.proc.pid}` };
    const c = this.config;
    const args = [CLI, 'run', '--service', this.service, '--instance', this.instance, '--restart', c.restart, '--otlp-endpoint', this.ctx.otlpEndpoint, '--url', this.ctx.faultline, ...c.run_args, '--', ...c.command];
    this.stderrTail = [];
    const proc = spawn(process.execPath, args, { cwd: c.cwd, env: this.env(), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const startedAt = Date.now();
    this.stopped = false;
    this.starts++;
    this.relay(proc);
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      proc.once('error', (err) => {
        this.stderrTail.push(`cannot start faultline run: ${err.message}`);
        resolve({ code: null, signal: null });
      });
      proc.once('exit', (code, signal) => resolve({ code, signal }));
    });
    const run: Run = { proc, startedAt, exited };
    this.run = run;
    void exited.then((e) => {
      if (this.run === run) this.run = null;
      this.lastExit = { ...e, at: Date.now() };
      if (!this.stopped) this.ctx.log.warn('program ended', { program: this.name, how: describeExit(e), after: seconds(Date.now() - startedAt) });
    });
    this.ctx.log.info('program started', { program: this.name, service: this.service, instance: this.instance, pid: proc.pid });
    const up = await this.settle(proc.pid!, exited);
    if (up.ok) return { ok: true, message: `pid ${proc.pid}` };
    const exit = up.exit ?? (c.restart === 'no' ? await Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), WRAPPER_FLUSH_MS))]) : null);
    // The command's last words, without the wrapper's own lines about delivering telemetry or its fallback.
    const why = this.stderrTail.filter((l) => l.trim() && !/^faultline run: (cannot send telemetry|telemetry to |the native wrapper is not built)/.test(l)).slice(-3).join(' | ');
    const how = `${exit ? describeExit(exit) : up.why} ${up.upMs === null ? 'at once' : `after ${seconds(up.upMs)}`}`;
    return { ok: false, message: `${how}${why ? `: ${why}` : ''}` };
  }

  /**
   * Whether the command came up and stayed up for the settle time. The wrapper's own exit is not enough to
   * watch: it outlives its command while it delivers the exit event, so the command's processes (in the
   * wrapper's process group) are watched from /proc.
   */
  private async settle(pid: number, exited: Run['exited']): Promise<{ ok: true } | { ok: false; exit: Awaited<Run['exited']> | null; why: string; upMs: number | null }> {
    let wrapperExit: Awaited<Run['exited']> | null = null;
    void exited.then((e) => (wrapperExit = e));
    const until = Date.now() + STARTUP_MS;
    let seenAt: number | null = null;
    for (;;) {
      await new Promise((r) => setTimeout(r, Math.min(SETTLE_POLL_MS, this.ctx.settleMs)));
      const now = Date.now();
      const upMs = seenAt === null ? null : now - seenAt;
      if (wrapperExit) return { ok: false, exit: wrapperExit, why: '', upMs };
      const alive = groupMembers(pid).some((p) => p !== pid);
      if (alive && seenAt === null) seenAt = now;
      if (!alive && seenAt !== null) return { ok: false, exit: null, why: this.config.restart === 'no' ? 'ended' : `ended (faultline run restarts it: --restart ${this.config.restart})`, upMs };
      if (seenAt !== null && now - seenAt >= this.ctx.settleMs) return { ok: true };
      if (now > until) return { ok: false, exit: null, why: `did not stay up for ${seconds(this.ctx.settleMs)}`, upMs };
    }
  }

  private async doStop(): Promise<OpResult> {
    const run = this.run;
    this.stopped = true;
    if (!run) return { ok: true, message: 'not running' };
    const pid = run.proc.pid!;
    const wait = (ms: number) => Promise.race([run.exited, new Promise<null>((r) => setTimeout(() => r(null), ms))]);
    signal(pid, 'SIGTERM');
    let ended = await wait(this.ctx.stopTimeoutMs);
    if (!ended) {
      // The command did not stop (a hung event loop, a handler that never returns): kill it, but leave the
      // wrapper, which then reports the end as the intended stop it was, and exits.
      const members = groupMembers(pid).filter((p) => p !== pid);
      this.ctx.log.warn('program did not stop in time: killing it', { program: this.name, after: seconds(this.ctx.stopTimeoutMs), pids: members.join(',') });
      for (const p of members) signal(p, 'SIGKILL');
      ended = await wait(KILL_WAIT_MS);
    }
    if (!ended) {
      signal(-pid, 'SIGKILL');
      ended = await wait(KILL_WAIT_MS);
    }
    if (!ended) return { ok: false, message: `pid ${pid} is still there after SIGTERM and SIGKILL` };
    this.ctx.log.info('program stopped', { program: this.name, how: describeExit(ended) });
    return { ok: true, message: `stopped, ${describeExit(ended)}` };
  }

  /** The agent's environment, the program's `env` over it, and the token when neither names one. */
  private env(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env };
    // systemd's notify socket is the agent's: a program that found it would speak for the agent's unit.
    for (const k of ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID']) delete env[k];
    Object.assign(env, this.config.env);
    const token = this.ctx.token;
    if (token) {
      env.FAULTLINE_TOKEN ??= token;
      // The OpenTelemetry SDKs' own way to send a header (values percent-encoded).
      env.OTEL_EXPORTER_OTLP_HEADERS ??= `authorization=${encodeURIComponent(`Bearer ${token}`)}`;
    }
    return env;
  }

  /** Kills the command now (the agent is going at once): the wrapper is left to report the end and exit. */
  kill(): void {
    const pid = this.run?.proc.pid;
    if (pid === undefined) return;
    this.stopped = true;
    for (const p of groupMembers(pid)) if (p !== pid) signal(p, 'SIGKILL');
    signal(pid, 'SIGTERM');
  }

  /** Lines of the program's output go on to the agent's, prefixed with its name. */
  private relay(proc: ChildProcess): void {
    const pipe = (stream: NodeJS.ReadableStream, out: NodeJS.WritableStream, keep: boolean) => {
      let partial = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop() ?? '';
        for (const line of lines) this.emit(out, line, keep);
        if (partial.length > 8192) {
          this.emit(out, partial, keep);
          partial = '';
        }
      });
      stream.on('end', () => partial && this.emit(out, partial, keep));
    };
    pipe(proc.stdout!, process.stdout, false);
    pipe(proc.stderr!, process.stderr, true);
  }

  private emit(out: NodeJS.WritableStream, line: string, keep: boolean): void {
    out.write(`[${this.name}] ${line}\n`);
    if (keep) this.stderrTail = [...this.stderrTail.slice(-19), line.slice(0, 500)];
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** The live processes (not zombies) in a process group, from /proc: the wrapper, the command and what it started. */
export function groupMembers(pgid: number): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses, so read after the last ')'.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') out.push(Number(entry));
    } catch {
      // it ended while we looked
    }
  }
  return out;
}
