/** Child processes of the benchmark: faultline and the ceiling server pinned to core 0, the load generator to core 1. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../src/paths.js';
import type { LoadResult, LoadSpec } from './loadgen.js';

const DIST = join(packageRoot, 'dist');
export const SERVER_CORE = 0;
export const LOADGEN_CORE = 1;

/** Whether `taskset` works here (util-linux, and a second core to pin the load generator to). */
export const taskset: { ok: boolean; note?: string } = (() => {
  const r = spawnSync('taskset', ['-c', String(LOADGEN_CORE), 'true']);
  if (r.error) return { ok: false, note: `taskset not available (${(r.error as NodeJS.ErrnoException).code}); processes are not pinned` };
  if (r.status !== 0) return { ok: false, note: `taskset -c ${LOADGEN_CORE} failed (${r.stderr.toString().trim()}); processes are not pinned` };
  return { ok: true };
})();

function spawnPinned(core: number, args: string[], env: NodeJS.ProcessEnv): ChildProcess {
  const [cmd, argv] = taskset.ok ? ['taskset', ['-c', String(core), process.execPath, ...args]] : [process.execPath, args];
  // taskset execs node, so the child's pid is node's pid (what /proc sampling needs).
  return spawn(cmd, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
}

export const tempDir = (prefix: string) => mkdtempSync(join(tmpdir(), prefix));

export interface Faultline {
  pid: number;
  dataDir: string;
  ports: { http: number; otlpHttp: number };
  logs(): string;
  /** SIGTERM, wait for the flush and exit; returns the exit code and how long the shutdown took. */
  stop(): Promise<{ code: number | null; ms: number }>;
}

export async function startFaultline(dataDir: string, extraEnv: Record<string, string> = {}, nodeArgs: string[] = []): Promise<Faultline> {
  const proc = spawnPinned(SERVER_CORE, [...nodeArgs, join(DIST, 'src', 'cli.js'), 'serve'], {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    FAULTLINE_DATA_DIR: dataDir,
    FAULTLINE_HTTP_PORT: '0',
    FAULTLINE_OTLP_HTTP_PORT: '0',
    FAULTLINE_OTLP_GRPC_PORT: '0',
    ...extraEnv,
  });
  let log = '';
  proc.stdout!.on('data', (d) => (log += d));
  proc.stderr!.on('data', (d) => (log += d));
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const ports = await new Promise<{ http: number; otlpHttp: number }>((resolve, reject) => {
    const timer = setInterval(() => {
      const m = /faultline listening .*\bhttp=(\d+) otlp_http=(\d+)/.exec(log);
      if (m) {
        clearInterval(timer);
        resolve({ http: Number(m[1]), otlpHttp: Number(m[2]) });
      }
    }, 20);
    void exited.then((code) => {
      clearInterval(timer);
      reject(new Error(`faultline exited with ${code} before listening:\n${log}`));
    });
  });
  return {
    pid: proc.pid!,
    dataDir,
    ports,
    logs: () => log,
    stop: async () => {
      const t = performance.now();
      if (proc.exitCode === null) proc.kill('SIGTERM');
      const code = await exited;
      return { code, ms: performance.now() - t };
    },
  };
}

export async function startCeiling(): Promise<{ pid: number; port: number; stop(): Promise<void> }> {
  const proc = spawnPinned(SERVER_CORE, [join(DIST, 'bench', 'ceiling.js')], { PATH: process.env.PATH ?? '' });
  const exited = new Promise<void>((resolve) => proc.on('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    let out = '';
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /"port":(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    void exited.then(() => reject(new Error('ceiling server exited before listening')));
  });
  return { pid: proc.pid!, port, stop: async () => void (proc.kill('SIGTERM'), await exited) };
}

/** Runs the load generator; `onProgress(seconds, itemsSoFar, measuring)` about once a second. */
export function runLoadgen(spec: LoadSpec, onProgress: (t: number, items: number, measuring: boolean) => void): Promise<LoadResult> {
  const proc = spawnPinned(LOADGEN_CORE, [join(DIST, 'bench', 'loadgen.js'), JSON.stringify(spec)], { PATH: process.env.PATH ?? '' });
  let out = '', err = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d: Buffer) => {
    for (const line of d.toString().split('\n')) {
      if (line.startsWith('{"t":')) {
        const p = JSON.parse(line) as { t: number; items: number; measuring: boolean };
        onProgress(p.t, p.items, p.measuring);
      } else if (line.trim()) err += `${line}\n`;
    }
  });
  return new Promise((resolve, reject) =>
    proc.on('exit', (code) => {
      if (code === 0 && out.trim()) resolve(JSON.parse(out) as LoadResult);
      else reject(new Error(`load generator failed (exit ${code}):\n${err}`));
    }),
  );
}

/** Samples a process's resident memory (VmRSS) and CPU time from /proc once a second. */
export class ProcSampler {
  private readonly rss: number[] = [];
  private timer?: NodeJS.Timeout;
  private cpu0 = 0;
  private t0 = 0;
  private cpu1 = 0;
  private t1 = 0;
  constructor(readonly pid: number) {}

  private read(): { rssBytes: number; cpuS: number } | undefined {
    try {
      const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // utime and stime are fields 14 and 15 of /proc/<pid>/stat, in clock ticks (100 per second on Linux).
      return { rssBytes: Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024, cpuS: (Number(fields[11]) + Number(fields[12])) / 100 };
    } catch {
      return undefined;
    }
  }
  current(): number {
    return this.read()?.rssBytes ?? 0;
  }
  /** Starts the window: RSS samples and CPU time are counted from now. */
  start(): void {
    this.cpu0 = this.read()?.cpuS ?? 0;
    this.t0 = performance.now();
    this.timer = setInterval(() => {
      const s = this.read();
      if (s) this.rss.push(s.rssBytes);
    }, 1000);
  }
  stop(): { maxBytes: number; meanBytes: number; samples: number; cpuUtil: number } {
    clearInterval(this.timer);
    this.cpu1 = this.read()?.cpuS ?? this.cpu0;
    this.t1 = performance.now();
    const n = this.rss.length;
    return {
      maxBytes: n ? Math.max(...this.rss) : 0,
      meanBytes: n ? this.rss.reduce((a, b) => a + b, 0) / n : 0,
      samples: n,
      cpuUtil: (this.cpu1 - this.cpu0) / ((this.t1 - this.t0) / 1000),
    };
  }
}

/** The pinning actually in effect for a pid, from /proc (e.g. "0"). */
export function cpusAllowed(pid: number): string {
  try {
    return /Cpus_allowed_list:\s+(\S+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?';
  } catch {
    return '?';
  }
}
