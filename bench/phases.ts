/** One benchmark phase: a server (faultline or the bare ceiling) on core 0, the load generator on core 1. */
import { spawn } from 'node:child_process';
import { copyFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../src/paths.js';
import type { DiskReport } from './disk.js';
import type { LoadResult, LoadSpec } from './loadgen.js';
import { ProcSampler, cpusAllowed, runLoadgen, startCeiling, startFaultline, startStoreProcess, tempDir } from './procs.js';
import { summarizeProfile, type ProfileSummary } from './profile.js';
import { MiB, fmt } from './stats.js';

export type Spec = Omit<LoadSpec, 'port' | 'markers'> & { markers?: Omit<NonNullable<LoadSpec['markers']>, 'apiPort'> };

export interface ServerStats {
  cpus: string;
  rssMaxMiB: number;
  rssMeanMiB: number;
  rssSamples: number;
  /** RssAnon: resident memory minus mapped files (libchdb.so alone maps ~175 MiB of code). */
  anonMaxMiB: number;
  anonMeanMiB: number;
  /** RssFile: mapped files (node's and libchdb.so's code). */
  fileMaxMiB: number;
  /** faultline's V8 heap (process.memoryUsage().heapTotal) and memory of its Buffers (external), from bench/memprobe.ts. */
  heapMaxMiB?: number;
  heapMeanMiB?: number;
  externalMaxMiB?: number;
  /** VmRSS right after start, before any load. */
  rssIdleMiB?: number;
  /** CPU time of the whole process (all threads) per wall second during the window. */
  cpuUtil: number;
  /** Share of one core by thread name during the window ("main" = the JavaScript thread), largest first. */
  threads: [string, number][];
}
export interface StoreStats {
  /** Rows of the phase's table (spans or pings) the store accepted per second during the window (faultline_written_rows_total). */
  writtenPerS: number;
  walBytesAtEnd: number;
  shedRequests: number;
  shutdownMs: number;
  exitCode: number | null;
}
export interface PhaseResult {
  load: LoadResult;
  server: ServerStats;
  /** The ClickHouse store's own process, in phases run with `storeProcess`. */
  storeProcess?: ServerStats;
  store?: StoreStats;
  disk?: DiskReport;
  profile?: ProfileSummary;
}

/** Prints "[phase] 15 s ..." lines every 5 seconds from the load generator's progress. */
function progressPrinter(name: string, spec: Spec, rss: () => number) {
  let lastT = 0, lastItems = 0;
  const total = spec.warmupS + spec.seconds;
  return (t: number, items: number, measuring: boolean) => {
    if (t - lastT < 4.95) return;
    const rate = (items - lastItems) / (t - lastT);
    [lastT, lastItems] = [t, items];
    const mem = rss();
    console.log(`  [${name}] ${Math.round(t)}/${total} s ${measuring ? 'measuring' : 'warm-up  '}  ${fmt(rate)} ${spec.kind === 'ping' ? 'pings' : 'spans'}/s${mem ? `  rss ${fmt(mem / MiB)} MiB` : ''}`);
  };
}

export async function ceilingPhase(name: string, spec: Spec): Promise<PhaseResult> {
  const srv = await startCeiling();
  const sampler = new ProcSampler(srv.pid);
  try {
    sampler.start();
    const load = await runLoadgen({ ...spec, port: srv.port } as LoadSpec, progressPrinter(name, spec, () => sampler.current()));
    return { load, server: serverStats(sampler, srv.pid) };
  } finally {
    await srv.stop();
  }
}

interface Snapshot {
  at: number;
  written: number;
  wal: number;
  shed: number;
}

async function snapshot(httpPort: number, table: string): Promise<Snapshot> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const sum = (re: RegExp) => [...text.matchAll(re)].reduce((n, m) => n + Number(m[1]), 0);
  return {
    at: performance.now(),
    written: sum(new RegExp(`^faultline_written_rows_total\\{table="${table}"\\} (\\S+)$`, 'gm')),
    wal: sum(/^faultline_wal_bytes (\S+)$/gm),
    shed: sum(/^faultline_shed_requests_total(?:\{[^}]*\})? (\S+)$/gm),
  };
}

export interface FaultlineOptions {
  env?: Record<string, string>;
  /** Measure the store on disk after shutdown. */
  disk?: boolean;
  /** Run faultline under `node --cpu-prof` and keep the profile here (copied to `keepAs`). */
  profile?: { keepAs: string };
  /** Store in a ClickHouse process of its own (the engine behind an HTTP front) instead of the embedded engine. */
  storeProcess?: boolean;
}

export async function faultlinePhase(name: string, spec: Spec, opts: FaultlineOptions = {}): Promise<PhaseResult> {
  const dir = tempDir('faultline-bench-');
  const profDir = join(dir, 'cpuprofile');
  const store = opts.storeProcess ? await startStoreProcess(join(dir, 'store')) : undefined;
  try {
    const env = { ...opts.env };
    if (store)
      Object.assign(env, { FAULTLINE_CLICKHOUSE_URL: store.url, FAULTLINE_CLICKHOUSE_USER: store.user, FAULTLINE_CLICKHOUSE_PASSWORD: store.password });
    const fl = await startFaultline(join(dir, 'data'), env, opts.profile ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : []);
    const sampler = new ProcSampler(fl.pid, fl.memprobe);
    const storeSampler = store ? new ProcSampler(store.pid) : undefined;
    const cpus = cpusAllowed(fl.pid);
    const rssIdle = sampler.current();
    const table = spec.kind === 'ping' ? 'pings' : 'spans';
    let first: Promise<Snapshot> | undefined;
    const print = progressPrinter(name, spec, () => sampler.current());
    const port = spec.kind === 'ping' ? fl.ports.http : fl.ports.otlpHttp;
    const markers = spec.markers ? { ...spec.markers, apiPort: fl.ports.http } : undefined;
    let load: LoadResult;
    try {
      load = await runLoadgen({ ...spec, port, markers } as LoadSpec, (t, items, measuring) => {
        if (measuring && !first) {
          sampler.start();
          storeSampler?.start();
          first = snapshot(fl.ports.http, table);
        }
        print(t, items, measuring);
      });
    } catch (err) {
      await fl.stop();
      throw new Error(`${(err as Error).message}\nfaultline log:\n${fl.logs().slice(-3000)}`);
    }
    const server = serverStats(sampler, fl.pid, cpus);
    server.rssIdleMiB = rssIdle / MiB;
    const [s0, s1] = await Promise.all([first ?? snapshot(fl.ports.http, table), snapshot(fl.ports.http, table)]);
    const stop = await fl.stop();
    if (stop.code !== 0) console.log(`  [${name}] faultline exited with ${stop.code}; log tail:\n${fl.logs().slice(-2000)}`);
    const storeStats: StoreStats = {
      writtenPerS: (s1.written - s0.written) / ((s1.at - s0.at) / 1000),
      walBytesAtEnd: s1.wal,
      shedRequests: s1.shed,
      shutdownMs: stop.ms,
      exitCode: stop.code,
    };
    const result: PhaseResult = { load, server, store: storeStats };
    if (storeSampler) result.storeProcess = serverStats(storeSampler, store!.pid);
    if (opts.disk) result.disk = await diskReport(join(dir, 'data'));
    if (opts.profile) {
      const file = readdirSync(profDir).find((f) => f.endsWith('.cpuprofile'));
      if (file) {
        copyFileSync(join(profDir, file), opts.profile.keepAs);
        result.profile = summarizeProfile(opts.profile.keepAs);
      } else console.log(`  [${name}] no .cpuprofile was written`);
    }
    return result;
  } finally {
    await store?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function serverStats(sampler: ProcSampler, pid: number, cpus = cpusAllowed(pid)): ServerStats {
  const s = sampler.stop();
  return {
    cpus,
    rssMaxMiB: s.maxBytes / MiB,
    rssMeanMiB: s.meanBytes / MiB,
    rssSamples: s.samples,
    anonMaxMiB: s.anonMaxBytes / MiB,
    anonMeanMiB: s.anonMeanBytes / MiB,
    fileMaxMiB: s.fileMaxBytes / MiB,
    heapMaxMiB: s.heapMaxBytes === undefined ? undefined : s.heapMaxBytes / MiB,
    heapMeanMiB: s.heapMeanBytes === undefined ? undefined : s.heapMeanBytes / MiB,
    externalMaxMiB: s.externalMaxBytes === undefined ? undefined : s.externalMaxBytes / MiB,
    cpuUtil: s.cpuUtil,
    threads: Object.entries(s.threads).filter(([, v]) => v >= 0.005).sort((a, b) => b[1] - a[1]),
  };
}

function diskReport(dataDir: string): Promise<DiskReport> {
  const proc = spawn(process.execPath, [join(packageRoot, 'dist', 'bench', 'disk.js'), dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  proc.stdout.on('data', (d) => (out += d));
  proc.stderr.on('data', (d) => (err += d));
  return new Promise((resolve, reject) =>
    proc.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as DiskReport) : reject(new Error(`disk report failed (${code}): ${err}`)))),
  );
}
