/**
 * What Linux says about a running process, read from /proc: resident memory, its peak (VmHWM) and CPU time,
 * for the process and the descendants it started (a `sh -c` wrapper and the program it runs are one target);
 * and the memory cgroup's limit and OOM-kill counter. Every reader returns null where /proc or the cgroup
 * files are missing or the process is gone, never throws: a watcher must not fail on what it cannot see.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** USER_HZ: the unit of utime/stime in /proc/<pid>/stat; 100 on every mainstream Linux architecture. */
export const CLOCK_TICKS_PER_S = 100;
/** Bound on the process tree walked per sample (a fork bomb must not make sampling expensive). */
const MAX_TREE = 256;

export interface ProcSample {
  /** Resident set size of the process and its live descendants, bytes. */
  rss: number;
  /** The process's own peak RSS (VmHWM), bytes. */
  hwm: number;
  /** CPU time of the tree so far (own plus reaped children's), clock ticks. */
  cpuTicks: number;
}

function read(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}

/** VmRSS and VmHWM of one process in bytes (null for a zombie or a process that is gone). */
export function memoryOf(pid: number): { rss: number; hwm: number } | null {
  const text = read(`/proc/${pid}/status`);
  if (!text) return null;
  const kb = (name: string) => {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : null;
  };
  const rss = kb('VmRSS');
  if (rss === null) return null;
  return { rss, hwm: kb('VmHWM') ?? rss };
}

/** utime + stime + cutime + cstime: the process's CPU time including its children it has waited for. */
export function cpuTicksOf(pid: number): number | null {
  const text = read(`/proc/${pid}/stat`);
  if (!text) return null;
  // The command name (field 2) may hold spaces and parentheses: the fields after it start past the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime, stime, cutime, cstime are fields 14..17.
  const ticks = [11, 12, 13, 14].map((i) => Number(fields[i]));
  return ticks.every(Number.isFinite) ? ticks.reduce((a, b) => a + b, 0) : null;
}

/** Direct children of a process, from /proc/<pid>/task/<tid>/children (empty where the kernel lacks it). */
export function childrenOf(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const out: number[] = [];
  for (const tid of tasks) {
    const text = read(`/proc/${pid}/task/${tid}/children`);
    if (text) for (const c of text.trim().split(/\s+/)) if (c) out.push(Number(c));
  }
  return out;
}

/** One sample of the process tree rooted at `pid`; null when the root is gone. */
export function sampleTree(pid: number): ProcSample | null {
  const root = memoryOf(pid);
  const rootTicks = cpuTicksOf(pid);
  if (!root || rootTicks === null) return null;
  let rss = root.rss;
  let cpuTicks = rootTicks;
  const seen = new Set([pid]);
  const queue = childrenOf(pid);
  while (queue.length > 0 && seen.size < MAX_TREE) {
    const p = queue.shift()!;
    if (seen.has(p)) continue;
    seen.add(p);
    const mem = memoryOf(p);
    const ticks = cpuTicksOf(p);
    if (mem) rss += mem.rss;
    if (ticks !== null) cpuTicks += ticks;
    queue.push(...childrenOf(p));
  }
  return { rss, hwm: root.hwm, cpuTicks };
}

/** CPU utilisation between successive samples: CPU seconds per wall second (1 = one core busy). */
export class CpuMeter {
  private last: { ticks: number; at: number } | null = null;

  /** Utilisation since the previous call (null on the first). */
  update(ticks: number, at = performance.now()): number | null {
    const prev = this.last;
    this.last = { ticks, at };
    if (!prev || at <= prev.at) return null;
    // Ticks of a descendant that died unreaped leave the sum: never report a negative rate.
    const seconds = Math.max(0, ticks - prev.ticks) / CLOCK_TICKS_PER_S;
    return Math.round((seconds / ((at - prev.at) / 1000)) * 1000) / 1000;
  }
}

/** Limits at or above this are "no limit" (cgroup v1 writes 2^63 rounded down to a page). */
const UNLIMITED = 2 ** 60;

export interface MemoryCgroup {
  /** The memory limit in bytes (the lowest on the path to the root), or null when there is none. */
  limit: number | null;
  /** The cgroup's OOM-kill counter now (null when the kernel does not expose one). */
  oomKills(): number | null;
}

function numberIn(path: string): number | null {
  const text = read(path)?.trim();
  return text && /^\d+$/.test(text) ? Number(text) : null;
}

function oomKillIn(path: string): number | null {
  const m = /^oom_kill (\d+)$/m.exec(read(path) ?? '');
  return m ? Number(m[1]) : null;
}

/**
 * The memory cgroup of a process (cgroup v2, else v1). Inside a container the cgroup path in
 * /proc/<pid>/cgroup is often not visible under /sys/fs/cgroup: then the mount's root is the cgroup.
 */
export function memoryCgroup(pid: number | 'self' = 'self', root = '/sys/fs/cgroup'): MemoryCgroup {
  const lines = (read(`/proc/${pid}/cgroup`) ?? '').split('\n');
  const v2 = lines.find((l) => l.startsWith('0::'))?.slice(3);
  const v1 = lines.map((l) => l.split(':')).find((f) => f[1]?.split(',').includes('memory'))?.[2];

  const existing = (base: string, rel: string | undefined, file: string) => {
    const dirs: string[] = [];
    for (let dir = join(base, rel ?? '').replace(/(.)\/+$/, '$1'); dir.startsWith(base); dir = dirname(dir)) {
      if (read(join(dir, file)) !== null) dirs.push(dir);
      if (dir === base) break;
    }
    return dirs;
  };
  const lowest = (values: (number | null)[]) => {
    const limits = values.filter((v): v is number => v !== null && v < UNLIMITED);
    return limits.length ? Math.min(...limits) : null;
  };

  const v2dirs = existing(root, v2, 'memory.max');
  if (v2dirs.length > 0)
    return { limit: lowest(v2dirs.map((d) => numberIn(join(d, 'memory.max')))), oomKills: () => oomKillIn(join(v2dirs[0], 'memory.events')) };
  const v1dirs = existing(join(root, 'memory'), v1, 'memory.limit_in_bytes');
  if (v1dirs.length > 0)
    return {
      limit: lowest(v1dirs.map((d) => numberIn(join(d, 'memory.limit_in_bytes')))),
      oomKills: () => oomKillIn(join(v1dirs[0], 'memory.oom_control')),
    };
  return { limit: null, oomKills: () => null };
}
