/**
 * Collector benchmark, against a real faultline (embedded store):
 *   1. Node collector overhead: the same HTTP app, plain and under `node --import …/register` (1 s
 *      heartbeats), side by side under the same steady load; CPU (share of one core) and RSS of each from
 *      /proc. Targets: ≤ 2 % of a core more CPU, ≤ 10 MiB more RSS.
 *   2. `faultline run` RSS while it watches a command (target ≤ 15 MiB): VmRSS of the resident wrapper
 *      process alone (the command excluded) — the native wrapper the CLI execs into, as shipped; beside it
 *      the Node implementation (FAULTLINE_RUN_NATIVE=0) and a bare `node` that does nothing (the floor of
 *      any Node process).
 *   3. child exit → exit event acknowledged by faultline (target p99 ≤ 200 ms): the child prints the time
 *      on stderr as its last act; a proxy in front of faultline's OTLP port notes when faultline's 200 for
 *      the exit event passes back; runs under `--restart` (a warm wrapper) and one-shot wrappers (cold).
 *
 *   node dist/bench/collector.js      (BENCH_COLLECTOR_SECONDS: phase 1's measuring window, default 20;
 *                                      BENCH_COLLECTOR_RATE: requests/s to each app, default 200)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { createServer, request, Agent, type IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { packageRoot } from '../src/paths.js';
import { ProcSampler, startFaultline, tempDir, type Faultline } from './procs.js';
import { printTable, target, writeJson, type TargetRow } from './report.js';
import { fmt, MiB, round, summarize, type Summary } from './stats.js';

const SECONDS = Number(process.env.BENCH_COLLECTOR_SECONDS ?? 20);
const RATE = Number(process.env.BENCH_COLLECTOR_RATE ?? 200);
const WARMUP_S = 5;
const DIST = join(packageRoot, 'dist');
const CLI = join(DIST, 'src', 'cli.js');
const REGISTER = join(DIST, 'collectors', 'node', 'register.js');
const APP = join(DIST, 'bench', 'collector-app.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const nowMs = () => performance.timeOrigin + performance.now();

const NATIVE_WRAPPER = join(DIST, 'native', 'faultline-run');

function spawnLogged(args: string[], env: NodeJS.ProcessEnv): { proc: ChildProcess; out: () => string; err: () => string } {
  const proc = spawn(process.execPath, args, { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (err = (err + d).slice(-20_000)));
  return { proc, out: () => out, err: () => err };
}

async function waitFor<T>(fn: () => T | undefined, what: string, ms = 30_000): Promise<T> {
  for (const until = Date.now() + ms; ; await sleep(20)) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
  }
}

interface Overhead {
  plain: { cpuPct: number; rssMeanMiB: number; rssMaxMiB: number; anonMeanMiB: number };
  collector: { cpuPct: number; rssMeanMiB: number; rssMaxMiB: number; anonMeanMiB: number };
  requests: { sent: number; ok: number; perS: number };
  cpuDiffPct: number;
  cpuRelativePct: number;
  rssDiffMiB: number;
}

/** Phase 1: the app plain and with the collector, under the same load at the same time. */
async function collectorOverhead(fl: Faultline): Promise<Overhead> {
  const otlp = `http://127.0.0.1:${fl.ports.otlpHttp}`;
  const plain = spawnLogged([APP], {});
  const watched = spawnLogged(['--import', REGISTER, APP], {
    OTEL_SERVICE_NAME: 'bench-app',
    OTEL_RESOURCE_ATTRIBUTES: 'service.instance.id=bench-app-1',
    OTEL_EXPORTER_OTLP_ENDPOINT: otlp,
    FAULTLINE_HEARTBEAT_INTERVAL_MS: '1000',
  });
  try {
    const port = (p: typeof plain) => waitFor(() => /listening (\d+)/.exec(p.out())?.[1], 'the app to listen').then(Number);
    const ports = [await port(plain), await port(watched)];
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    let sent = 0;
    let ok = 0;
    const get = (p: number) =>
      new Promise<void>((resolve) => {
        sent++;
        const req = request({ host: '127.0.0.1', port: p, path: `/orders/${sent}`, agent }, (res: IncomingMessage) => {
          res.resume();
          res.on('end', () => {
            if (res.statusCode === 200) ok++;
            resolve();
          });
        });
        req.on('error', () => resolve());
        req.end();
      });
    // Steady load: every 10 ms, as many requests to each app (alternating which goes first) as the rate
    // asks for by now, so a late timer under load does not lower the rate.
    const began = performance.now();
    let due = 0;
    const load = setInterval(() => {
      const target = Math.floor(((performance.now() - began) / 1000) * RATE);
      for (; due < target; due++) for (const p of due % 2 ? ports : [...ports].reverse()) void get(p);
    }, 10);
    await sleep(WARMUP_S * 1000);
    const samplers = [new ProcSampler(plain.proc.pid!), new ProcSampler(watched.proc.pid!)];
    for (const s of samplers) s.start();
    const okBefore = ok;
    await sleep(SECONDS * 1000);
    const okInWindow = ok - okBefore;
    const [p, w] = samplers.map((s) => s.stop());
    clearInterval(load);
    agent.destroy();
    const view = (r: typeof p) => ({ cpuPct: round(r.cpuUtil * 100, 2), rssMeanMiB: round(r.meanBytes / MiB, 1), rssMaxMiB: round(r.maxBytes / MiB, 1), anonMeanMiB: round(r.anonMeanBytes / MiB, 1) });
    return {
      plain: view(p),
      collector: view(w),
      // Answered within the window, per app (requests still queued when the load stops are not counted).
      requests: { sent, ok, perS: round(okInWindow / SECONDS / 2, 0) },
      cpuDiffPct: round((w.cpuUtil - p.cpuUtil) * 100, 2),
      cpuRelativePct: round(((w.cpuUtil - p.cpuUtil) / Math.max(1e-9, p.cpuUtil)) * 100, 1),
      rssDiffMiB: round((w.meanBytes - p.meanBytes) / MiB, 1),
    };
  } finally {
    plain.proc.kill('SIGKILL');
    watched.proc.kill('SIGKILL');
  }
}

interface WrapperRss {
  variant: string;
  /** The program of the measured process (/proc/<pid>/exe): the native wrapper or node. */
  exe: string;
  rssMeanMiB: number;
  rssMaxMiB: number;
  /** Private memory (RssAnon): RSS without mapped files, i.e. without the node binary shared by every Node process. */
  anonMaxMiB: number;
}

/**
 * Phase 2: `faultline run` watching a sleeping command (the process the CLI was started as, which is the
 * native wrapper once it exec'd), the Node implementation beside it, and a bare node.
 */
async function wrapperRss(fl: Faultline): Promise<WrapperRss[]> {
  const otlp = `http://127.0.0.1:${fl.ports.otlpHttp}`;
  const wrapped = [CLI, 'run', '--service', 'bench-wrapped', '--otlp-endpoint', otlp, '--', 'sleep', '60'];
  const variants: { variant: string; args: string[]; env?: NodeJS.ProcessEnv }[] = [
    { variant: 'faultline run (as shipped: the native wrapper)', args: wrapped },
    { variant: 'faultline run, Node implementation (FAULTLINE_RUN_NATIVE=0)', args: wrapped, env: { FAULTLINE_RUN_NATIVE: '0' } },
    { variant: 'bare node (setInterval, nothing else)', args: ['-e', 'setInterval(() => {}, 1000)'] },
  ];
  const procs = variants.map((v) => spawnLogged(v.args, v.env ?? {}));
  try {
    await sleep(3000); // started, first heartbeats out
    const samplers = procs.map((p) => new ProcSampler(p.proc.pid!));
    for (const s of samplers) s.start();
    await sleep(8000);
    return samplers.map((s, i) => {
      const r = s.stop();
      let exe = '?';
      try {
        exe = readlinkSync(`/proc/${procs[i].proc.pid}/exe`);
      } catch {
        // it ended: the figures say so
      }
      return { variant: variants[i].variant, exe, rssMeanMiB: round(r.meanBytes / MiB, 1), rssMaxMiB: round(r.maxBytes / MiB, 1), anonMaxMiB: round(r.anonMaxBytes / MiB, 1) };
    });
  } finally {
    for (const p of procs) p.proc.kill('SIGKILL');
  }
}

/**
 * A pass-through in front of faultline's OTLP/HTTP port: for every exit event in a request, the delay from
 * the time its child printed last (the stderr tail) to faultline's answer passing back.
 */
async function ackProxy(fl: Faultline): Promise<{ port: number; delays: number[]; wrapperSide: number[]; close(): void }> {
  const delays: number[] = [];
  const wrapperSide: number[] = [];
  const server = createServer((req, res) => {
    const arrived = nowMs();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      const upstream = await fetch(`http://127.0.0.1:${fl.ports.otlpHttp}${req.url}`, { method: 'POST', headers: { 'content-type': req.headers['content-type'] ?? 'application/json' }, body }).catch(() => null);
      const answered = nowMs();
      const text = upstream ? Buffer.from(await upstream.arrayBuffer()) : Buffer.from('upstream down');
      if (upstream?.ok) {
        for (const m of body.toString().matchAll(/"key":"process\.stderr\.tail","value":\{"stringValue":"(?:[^"]*\\n)?exit-at (\d+)/g))
        {
          const exitedAt = Number(BigInt(m[1]) / 1000n) / 1000;
          delays.push(answered - exitedAt);
          wrapperSide.push(arrived - exitedAt);
        }
      }
      res.writeHead(upstream?.status ?? 502, { 'content-type': upstream?.headers.get('content-type') ?? 'text/plain' });
      res.end(text);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, delays, wrapperSide, close: () => server.close() };
}

/** The child: a short life, then the time (ns) on stderr as its very last act before exit 3. */
const CHILD = ['sh', '-c', 'sleep 0.3; echo "exit-at $(date +%s%N)" >&2; exit 3'];

async function exitToAck(fl: Faultline): Promise<{ warm: Summary; cold: Summary; all: Summary; sentAfter: Summary }> {
  const proxy = await ackProxy(fl);
  const otlp = `http://127.0.0.1:${proxy.port}`;
  const run = (args: string[]) =>
    new Promise<void>((resolve) => spawnLogged([CLI, 'run', '--service', 'bench-exits', '--otlp-endpoint', otlp, ...args, '--', ...CHILD], {}).proc.on('exit', () => resolve()));
  try {
    await run(['--restart', 'on-failure', '--restart-delay', '100ms', '--restart-max-delay', '100ms', '--max-restarts', '29']);
    const warm = proxy.delays.splice(0);
    for (let i = 0; i < 10; i++) await run([]);
    const cold = proxy.delays.splice(0);
    // The part before faultline: from the child's exit until the wrapper's request reached the proxy.
    return { warm: summarize(warm), cold: summarize(cold), all: summarize([...warm, ...cold]), sentAfter: summarize(proxy.wrapperSide) };
  } finally {
    proxy.close();
  }
}

async function main(): Promise<void> {
  console.log('collector benchmark (real faultline, embedded store)');
  const dir = tempDir('faultline-bench-collector-');
  const fl = await startFaultline(join(dir, 'data'));
  try {
    console.log(`  1. Node collector overhead: the same HTTP app plain and under --import, ${RATE} req/s each, 1 s heartbeats, ${SECONDS} s after ${WARMUP_S} s warm-up`);
    const o = await collectorOverhead(fl);
    console.log(`     plain:          cpu ${fmt(o.plain.cpuPct, 2)} % of a core, rss mean ${fmt(o.plain.rssMeanMiB, 1)} MiB (max ${fmt(o.plain.rssMaxMiB, 1)})`);
    console.log(`     with collector: cpu ${fmt(o.collector.cpuPct, 2)} % of a core, rss mean ${fmt(o.collector.rssMeanMiB, 1)} MiB (max ${fmt(o.collector.rssMaxMiB, 1)})`);
    console.log(`     difference:     cpu ${fmt(o.cpuDiffPct, 2)} points (${fmt(o.cpuRelativePct, 1)} % of the app's own), rss ${fmt(o.rssDiffMiB, 1)} MiB; ${fmt(o.requests.perS)} req/s answered by each app`);

    console.log('  2. faultline run RSS while watching `sleep 60` (8 s window after 3 s):');
    const w = await wrapperRss(fl);
    for (const v of w)
      console.log(`     ${v.variant.padEnd(64)} rss mean ${fmt(v.rssMeanMiB, 1).padStart(5)} MiB, max ${fmt(v.rssMaxMiB, 1).padStart(5)} MiB; private (RssAnon) max ${fmt(v.anonMaxMiB, 1).padStart(5)} MiB  [${v.exe}]`);
    if (w[0].exe !== NATIVE_WRAPPER) console.log(`     (!) the shipped wrapper is not the native one: ${NATIVE_WRAPPER} not built? (npm run build builds it)`);

    console.log('  3. child exit → exit event acknowledged by faultline (30 runs under --restart, 10 one-shot wrappers):');
    const e = await exitToAck(fl);
    const line = (name: string, s: Summary) => console.log(`     ${name}: n=${s.count} p50 ${fmt(s.p50, 1)} p99 ${fmt(s.p99, 1)} max ${fmt(s.max, 1)} ms`);
    line('warm (restarts)', e.warm);
    line('cold (one-shot)', e.cold);
    line('of which: exit → the wrapper\'s request sent', e.sentAfter);

    const [shipped, nodeImpl, bare] = w;
    const rows: TargetRow[] = [
      target('Node collector CPU overhead (1 s heartbeats)', o.cpuDiffPct, '<=', 2, '% of a core', `${fmt(o.cpuRelativePct, 1)} % of the app's own CPU`),
      target('Node collector RSS overhead', o.rssDiffMiB, '<=', 10, 'MiB'),
      target('faultline run RSS', shipped.rssMaxMiB, '<=', 15, 'MiB', `the wrapper process alone (${shipped.exe === NATIVE_WRAPPER ? 'native' : 'NOT native'}); Node implementation ${fmt(nodeImpl.rssMaxMiB, 1)} MiB, a bare node ${fmt(bare.rssMaxMiB, 1)} MiB`),
      target('faultline run private memory (RssAnon)', shipped.anonMaxMiB, '<=', 15, 'MiB', `Node implementation ${fmt(nodeImpl.anonMaxMiB, 1)} MiB, bare node ${fmt(bare.anonMaxMiB, 1)} MiB`),
      target('child exit → exit event acknowledged, p99', e.all.p99, '<=', 200, 'ms', `${e.all.count} runs; warm p99 ${fmt(e.warm.p99, 1)}, cold p99 ${fmt(e.cold.p99, 1)}`),
    ];
    console.log();
    printTable(rows);
    const file = join(packageRoot, 'bench', 'results', 'collector.json');
    writeJson(file, { at: new Date().toISOString(), seconds: SECONDS, ratePerApp: RATE, overhead: o, wrapperRss: w, exitToAck: e, targets: rows });
    console.log(`\nresults: ${file}`);
  } finally {
    await fl.stop();
  }
}

await main();
