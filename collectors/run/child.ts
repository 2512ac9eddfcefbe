/**
 * One run of the watched command: spawned with stdin and stdout inherited and stderr teed — every byte goes
 * on to the wrapper's stderr as it comes, and the last lines are kept for the exit report. While it lives,
 * its process tree is sampled from /proc (memory peak, CPU) and a heartbeat goes out every interval.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { CpuMeter, sampleTree, type MemoryCgroup } from './proc.js';
import { StreamTail } from './tail.js';

export interface Vitals {
  pid: number;
  rss: number;
  /** CPU seconds per second since the previous heartbeat (null for the first). */
  cpuUtilization: number | null;
  maxRss: number;
}

export interface RunResult {
  pid: number | undefined;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Set when the command could not be started at all (not found, not executable). */
  spawnError: NodeJS.ErrnoException | null;
  startedAt: number;
  runtimeMs: number;
  /** Peak RSS seen (the root's VmHWM, or the tree's sampled RSS when higher); null when never sampled. */
  maxRss: number | null;
  /** RSS at the last sample before the end. */
  lastRss: number | null;
  stderrTail: string;
  /** The cgroup's OOM killer struck during the run. */
  oomKill: boolean;
}

export interface RunSpec {
  command: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  intervalMs: number;
  cgroup: MemoryCgroup;
  onHeartbeat: (v: Vitals) => void;
  /** Where the command's stderr goes on to (default: the wrapper's stderr). */
  stderr?: NodeJS.WritableStream;
}

export interface Running {
  child: ChildProcess;
  done: Promise<RunResult>;
}

/** When the first heartbeat of a run goes out (or after one interval, when that is shorter). */
const FIRST_HEARTBEAT_MS = 200;
/** How long to wait for the rest of stderr after the exit (a background grandchild may hold it open). */
const STDERR_GRACE_MS = 200;
/**
 * How far the wrapper's stderr may fall behind its reader before the command's stderr is paused (the
 * command then blocks on its writes, as it would writing to the reader directly). Eager reading up to this
 * keeps the exit report's tail current when the reader is a little slow; the bound keeps memory bounded.
 */
const STDERR_BUFFER_BYTES = 16 * 1024 * 1024;

export function startChild(spec: RunSpec): Running {
  const startedAt = Date.now();
  const oomBefore = spec.cgroup.oomKills();
  const tail = new StreamTail();
  const out = spec.stderr ?? process.stderr;
  const child = spawn(spec.command, spec.args, { stdio: ['inherit', 'inherit', 'pipe'], env: spec.env });
  const stderrEnded = new Promise<void>((resolve) => {
    let buffered = 0;
    // A reader that went away takes nothing more: the command must not block on it.
    const resume = () => child.stderr!.resume();
    out.once('close', resume);
    child.stderr!.once('close', () => out.removeListener('close', resume));
    child.stderr!.on('data', (chunk: Buffer) => {
      tail.push(chunk);
      buffered += chunk.length;
      out.write(chunk, () => (buffered -= chunk.length));
      if (buffered < STDERR_BUFFER_BYTES || child.stderr!.isPaused() || !out.writable) return;
      child.stderr!.pause();
      out.once('drain', resume);
    });
    child.stderr!.on('end', resolve);
    child.stderr!.on('error', () => resolve());
  });

  let maxRss: number | null = null;
  let lastRss: number | null = null;
  const cpu = new CpuMeter();
  const sample = () => {
    if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return null;
    const s = sampleTree(child.pid);
    if (!s) return null;
    lastRss = s.rss;
    maxRss = Math.max(maxRss ?? 0, s.rss, s.hwm);
    return s;
  };
  const heartbeat = () => {
    const s = sample();
    if (s && child.pid !== undefined) spec.onHeartbeat({ pid: child.pid, rss: s.rss, cpuUtilization: cpu.update(s.cpuTicks), maxRss: maxRss ?? s.rss });
  };
  // Peak memory is sampled more often than heartbeats go out; the kernel's VmHWM covers the root between.
  let sampler: NodeJS.Timeout | undefined;
  let beats: NodeJS.Timeout | undefined;
  // The first heartbeat waits a moment: right after exec the process has not even mapped its libraries,
  // and a first sample of a few kilobytes would make any later size look like growth.
  let first: NodeJS.Timeout | undefined;
  child.once('spawn', () => {
    sample();
    sampler = setInterval(sample, Math.min(250, spec.intervalMs));
    first = setTimeout(() => {
      heartbeat();
      beats = setInterval(heartbeat, spec.intervalMs);
    }, Math.min(FIRST_HEARTBEAT_MS, spec.intervalMs));
  });

  const done = new Promise<RunResult>((resolve) => {
    let settled = false;
    const finish = async (code: number | null, signal: NodeJS.Signals | null, spawnError: NodeJS.ErrnoException | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(first);
      clearInterval(sampler);
      clearInterval(beats);
      const runtimeMs = Date.now() - startedAt;
      if (!spawnError) await Promise.race([stderrEnded, new Promise((r) => setTimeout(r, STDERR_GRACE_MS))]);
      else tail.push(`faultline run: cannot run "${spec.command}": ${spawnError.message}\n`);
      const oomAfter = spec.cgroup.oomKills();
      resolve({
        pid: child.pid,
        code,
        signal,
        spawnError,
        startedAt,
        runtimeMs,
        maxRss,
        lastRss,
        stderrTail: tail.value(),
        oomKill: oomBefore !== null && oomAfter !== null && oomAfter > oomBefore,
      });
    };
    child.on('exit', (code, signal) => void finish(code, signal, null));
    child.on('error', (err: NodeJS.ErrnoException) => {
      // Only a failure to start ends the run; a failed kill() of a live child does not.
      if (child.pid === undefined) void finish(err.code === 'EACCES' ? 126 : 127, null, err);
    });
  });
  return { child, done };
}
