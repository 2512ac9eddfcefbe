/**
 * Child processes of the demo, each in its own process group: Ctrl-C reaches the launcher only, which then
 * stops them in order (fleet first, faultline last, so the fleet's exits are still recorded). To leave no
 * orphan even when a child does not stop its own children, the launcher remembers its whole process tree
 * (from /proc) and ends whatever of it is still there at the very end.
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

export interface Managed {
  name: string;
  proc: ChildProcess;
  exited: Promise<void>;
  /** Sends `signal` to the group, waits up to `graceMs`, then kills the group; resolves once it exited. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

export function startGroup(name: string, command: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; stdio?: StdioOptions } = {}): Managed {
  const proc = spawn(command, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: opts.stdio ?? ['ignore', 'ignore', 'ignore'], detached: true });
  const exited = new Promise<void>((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.once('error', () => resolve());
  });
  const signalGroup = (signal: NodeJS.Signals) => {
    try {
      if (proc.pid) process.kill(-proc.pid, signal);
    } catch {
      // already gone
    }
  };
  return {
    name,
    proc,
    exited,
    stop: async (signal = 'SIGTERM', graceMs = 10_000) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      signalGroup(signal);
      const timer = setTimeout(() => signalGroup('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

interface ProcInfo {
  pid: number;
  ppid: number;
  /** Start time in clock ticks since boot: a pid reused later has another. */
  start: string;
}

function readProc(pid: number): ProcInfo | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may contain spaces: fields are counted after the last ")".
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { pid, ppid: Number(fields[1]), start: fields[19] };
  } catch {
    return undefined;
  }
}

/** Every live descendant of `root` (children, their children, …), from /proc. */
export function descendants(root: number = process.pid): ProcInfo[] {
  let all: ProcInfo[];
  try {
    all = readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .map((d) => readProc(Number(d)))
      .filter((p): p is ProcInfo => p !== undefined);
  } catch {
    return []; // no /proc: the process groups alone must do
  }
  const out: ProcInfo[] = [];
  const parents = new Set([root]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all)
      if (parents.has(p.ppid) && !parents.has(p.pid)) {
        parents.add(p.pid);
        out.push(p);
        grew = true;
      }
  }
  return out;
}

/** Remembers every process the demo started, as seen over time, so none outlives it. */
export class ProcessTree {
  private readonly seen = new Map<number, ProcInfo>();

  remember(): void {
    for (const p of descendants()) this.seen.set(p.pid, p);
  }

  /** Processes remembered that still run (the same pid and start time); killed with SIGKILL. Returns them. */
  killLeftovers(): number[] {
    this.remember();
    const left = [...this.seen.values()].filter((p) => readProc(p.pid)?.start === p.start);
    for (const p of left) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // it went by itself meanwhile
      }
    }
    return left.map((p) => p.pid);
  }
}
