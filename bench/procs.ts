/** Child processes of the benchmark: faultline and the ceiling server pinned to core 0, the load generator to core 1. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { packageRoot } from '../src/paths.js';
import type { LoadResult, LoadSpec } from './loadgen.js';

const DIST = join(packageRoot, 'dist');
export const SERVER_CORE = 0;
export const LOADGEN_CORE = 1;
/** The store process of the "store by URL" phases shares the load generator's core, not faultline's. */
export const STORE_CORE = LOADGEN_CORE;

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

/** Extra node options for faultline (BENCH_NODE_ARGS, e.g. "--max-semi-space-size=64"), printed with the results. */
export const FAULTLINE_NODE_ARGS = (process.env.BENCH_NODE_ARGS ?? '').split(/\s+/).filter(Boolean);

/** Extra environment for faultline (BENCH_ENV="NAME=value NAME2=value2", e.g. JE_MALLOC_CONF=...), printed with the results. */
export const FAULTLINE_ENV: Record<string, string> = Object.fromEntries(
  (process.env.BENCH_ENV ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .map((kv) => {
      const eq = kv.indexOf('=');
      if (eq < 1) throw new Error(`BENCH_ENV: "${kv}" is not NAME=value`);
      return [kv.slice(0, eq), kv.slice(eq + 1)];
    }),
);

export interface Faultline {
  pid: number;
  dataDir: string;
  /** Where faultline's process.memoryUsage() is written (bench/memprobe.ts). */
  memprobe: string;
  ports: { http: number; otlpHttp: number };
  logs(): string;
  /** SIGTERM, wait for the flush and exit; returns the exit code and how long the shutdown took. */
  stop(): Promise<{ code: number | null; ms: number }>;
}

export async function startFaultline(dataDir: string, extraEnv: Record<string, string> = {}, nodeArgs: string[] = []): Promise<Faultline> {
  const memprobe = join(dataDir, '..', 'memprobe.json');
  const probe = `--import=${pathToFileURL(join(DIST, 'bench', 'memprobe.js')).href}`;
  const proc = spawnPinned(SERVER_CORE, [...FAULTLINE_NODE_ARGS, ...nodeArgs, probe, join(DIST, 'src', 'cli.js'), 'serve'], {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    BENCH_MEMPROBE_FILE: memprobe,
    FAULTLINE_DATA_DIR: dataDir,
    FAULTLINE_HTTP_PORT: '0',
    FAULTLINE_OTLP_HTTP_PORT: '0',
    FAULTLINE_OTLP_GRPC_PORT: '0',
    ...FAULTLINE_ENV,
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
  // Listening comes before the store is migrated; the load starts once /readyz says the store is ready.
  for (const until = Date.now() + 60_000; ; ) {
    const ok = await fetch(`http://127.0.0.1:${ports.http}/readyz`).then((r) => r.ok, () => false);
    if (ok) break;
    if (Date.now() > until || proc.exitCode !== null) throw new Error(`faultline did not become ready in 60 s:\n${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    pid: proc.pid!,
    dataDir,
    memprobe,
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

/**
 * A ClickHouse store in its own process, for phases that measure faultline against a store by URL, as
 * production runs it against a ClickHouse server: the test suite's HTTP front for the engine
 * (test/support/clickhouse-http.ts: the real engine behind the HTTP interface @clickhouse/client speaks),
 * pinned to the other core (the load generator's), so faultline keeps its core to itself, as it would
 * beside a server on its own machine.
 */
export async function startStoreProcess(dataDir: string): Promise<{ pid: number; url: string; user: string; password: string; stop(): Promise<void> }> {
  const [user, password] = ['bench', 'bench'];
  const main = join(DIST, 'test', 'support', 'clickhouse-http-main.js');
  const argv = [main, dataDir, '0'];
  const env = { PATH: process.env.PATH ?? '', CLICKHOUSE_HTTP_USER: user, CLICKHOUSE_HTTP_PASSWORD: password };
  const [cmd, args] = taskset.ok ? ['taskset', ['-c', String(STORE_CORE), process.execPath, ...argv]] : [process.execPath, argv];
  // stdin stays open: the front exits when it closes (the harness died).
  const proc = spawn(cmd, args, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  proc.stderr!.on('data', (d) => (out += d));
  const exited = new Promise<void>((resolve) => proc.on('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    proc.stdout!.on('data', (d) => {
      out += d;
      const m = /clickhouse-http listening port=(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    void exited.then(() => reject(new Error(`the store process exited before listening:\n${out}`)));
  });
  return { pid: proc.pid!, url: `http://127.0.0.1:${port}`, user, password, stop: async () => void (proc.kill('SIGTERM'), await exited) };
}

/** process.memoryUsage() of the process under test, from bench/memprobe.ts (absent for other processes). */
interface MemProbe {
  heapTotal: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

/**
 * Samples a process's resident memory (VmRSS; RssAnon: without mapped files such as libchdb.so; RssFile:
 * mapped files) and CPU time from /proc, and faultline's own JavaScript memory from its memory probe.
 */
export class ProcSampler {
  private readonly rss: number[] = [];
  private readonly anon: number[] = [];
  private readonly file: number[] = [];
  private readonly heap: number[] = [];
  private readonly external: number[] = [];
  private timer?: NodeJS.Timeout;
  private cpu0 = 0;
  private t0 = 0;
  private threads0 = new Map<string, number>();
  constructor(
    readonly pid: number,
    private readonly memprobe?: string,
  ) {}

  private probe(): MemProbe | undefined {
    if (!this.memprobe) return undefined;
    try {
      return JSON.parse(readFileSync(this.memprobe, 'utf8')) as MemProbe;
    } catch {
      return undefined; // not written yet, or read mid-write
    }
  }

  /** CPU seconds per thread, keyed by thread name and id (main thread is "main"). */
  private threadCpu(): Map<string, number> {
    const out = new Map<string, number>();
    try {
      for (const tid of readdirSync(`/proc/${this.pid}/task`)) {
        try {
          const stat = readFileSync(`/proc/${this.pid}/task/${tid}/stat`, 'utf8');
          const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
          const comm = tid === String(this.pid) ? 'main' : stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
          out.set(`${comm}\u0000${tid}`, (Number(fields[11]) + Number(fields[12])) / 100);
        } catch {
          // the thread ended meanwhile
        }
      }
    } catch {
      // the process ended
    }
    return out;
  }

  read(): { rssBytes: number; anonBytes: number; fileBytes: number; cpuS: number } | undefined {
    try {
      const status = readFileSync(`/proc/${this.pid}/status`, 'utf8');
      const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const kb = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
      // utime and stime are fields 14 and 15 of /proc/<pid>/stat, in clock ticks (100 per second on Linux).
      return { rssBytes: kb('VmRSS'), anonBytes: kb('RssAnon'), fileBytes: kb('RssFile'), cpuS: (Number(fields[11]) + Number(fields[12])) / 100 };
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
    this.threads0 = this.threadCpu();
    this.t0 = performance.now();
    this.timer = setInterval(() => {
      const s = this.read();
      if (s) [this.rss.push(s.rssBytes), this.anon.push(s.anonBytes), this.file.push(s.fileBytes)];
      const m = this.probe();
      if (m) [this.heap.push(m.heapTotal), this.external.push(m.external)];
    }, 1000);
  }
  stop(): {
    maxBytes: number;
    meanBytes: number;
    anonMaxBytes: number;
    anonMeanBytes: number;
    fileMaxBytes: number;
    heapMaxBytes?: number;
    heapMeanBytes?: number;
    externalMaxBytes?: number;
    samples: number;
    cpuUtil: number;
    threads: Record<string, number>;
  } {
    clearInterval(this.timer);
    const cpu1 = this.read()?.cpuS ?? this.cpu0;
    const wall = (performance.now() - this.t0) / 1000;
    // Share of one core per thread name (threads of one name summed: ClickHouse pools, libuv, V8 workers).
    const threads: Record<string, number> = {};
    for (const [key, s1] of this.threadCpu()) {
      const name = key.split('\u0000')[0];
      threads[name] = (threads[name] ?? 0) + (s1 - (this.threads0.get(key) ?? 0)) / wall;
    }
    const max = (l: number[]) => (l.length ? Math.max(...l) : 0);
    const mean = (l: number[]) => (l.length ? l.reduce((a, b) => a + b, 0) / l.length : 0);
    return {
      maxBytes: max(this.rss),
      meanBytes: mean(this.rss),
      anonMaxBytes: max(this.anon),
      anonMeanBytes: mean(this.anon),
      fileMaxBytes: max(this.file),
      heapMaxBytes: this.heap.length ? max(this.heap) : undefined,
      heapMeanBytes: this.heap.length ? mean(this.heap) : undefined,
      externalMaxBytes: this.external.length ? max(this.external) : undefined,
      samples: this.rss.length,
      cpuUtil: (cpu1 - this.cpu0) / wall,
      threads,
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
