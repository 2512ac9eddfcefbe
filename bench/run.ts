/**
 * faultline benchmark (`npm run bench`). Every figure comes from a real `faultline serve` process pinned
 * to core 0 and a load generator process pinned to core 1, over loopback HTTP, next to a bare node:http
 * server on the same core (the ceiling). BENCH_SECONDS (default 60) sets the measured duration of the
 * main phases; BENCH_CONNECTIONS (default 16) the OTLP connections; BENCH_CPU_PROF=1 adds profiled runs;
 * BENCH_ONLY="faultline protobuf,10k" (parts of phase names, comma-separated) runs only those phases;
 * BENCH_NODE_ARGS adds node options to faultline (e.g. "--max-semi-space-size=64"), BENCH_ENV its environment
 * ("NAME=value ..."; both printed with the results).
 * Memory: faultline's own V8 heap and Buffers (bench/memprobe.ts, loaded with --import) next to the
 * process's RSS.
 * Two store modes, each figure of one next to the other's: the embedded engine in faultline's process
 * (the default deployment; engine and ingest share faultline's core), and the store by URL, as production
 * runs it against a ClickHouse server: the engine in a process of its own on the other core, faultline's
 * stored spans/s and RSS reported apart from the store process's (phases "... store by URL").
 * Prints a summary against the issue's targets and writes it to bench/results/latest.json.
 */
import { cpus } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../src/paths.js';
import { ceilingPhase, faultlinePhase, type PhaseResult, type Spec } from './phases.js';
import { FAULTLINE_ENV, FAULTLINE_NODE_ARGS, LOADGEN_CORE, SERVER_CORE, taskset } from './procs.js';
import { phaseLine, printDisk, printProfile } from './print.js';
import { printTable, target, writeJson, type TargetRow } from './report.js';
import { fmt } from './stats.js';

const envInt = (name: string, def: number) => {
  const v = process.env[name];
  if (v === undefined || v === '') return def;
  if (!/^\d+$/.test(v) || Number(v) < 1) throw new Error(`${name} must be a positive integer, not "${v}"`);
  return Number(v);
};

const SECONDS = envInt('BENCH_SECONDS', 60);
const CONNECTIONS = envInt('BENCH_CONNECTIONS', 16);
const PROFILE = process.env.BENCH_CPU_PROF === '1';
/** BENCH_ONLY=protobuf,10k,...: run only the phases whose name contains one of these words (for iterating). */
const ONLY = (process.env.BENCH_ONLY ?? '').split(',').map((w) => w.trim()).filter(Boolean);
const wanted = (name: string) => ONLY.length === 0 || ONLY.some((w) => name.includes(w));
const WARMUP = Math.min(5, Math.max(1, Math.round(SECONDS / 12)));
const SHORT = Math.max(5, Math.round(SECONDS / 6)); // ceilings
const HALF = Math.max(10, Math.round(SECONDS / 2)); // queryable, ping
const RESULTS = join(packageRoot, 'bench', 'results');

const otlp = (encoding: 'protobuf' | 'json', seconds: number, extra: Partial<Spec> = {}): Spec => ({
  kind: 'otlp', encoding, connections: CONNECTIONS, warmupS: WARMUP, seconds, spansPerRequest: 100, bodies: 64, seed: 7, ...extra,
});
const ping = (seconds: number): Spec => ({ kind: 'ping', connections: 64, warmupS: WARMUP, seconds, slugs: 100 });

async function phase(name: string, run: () => Promise<PhaseResult>, results: Record<string, PhaseResult>): Promise<PhaseResult | undefined> {
  if (!wanted(name)) return undefined;
  const t = performance.now();
  console.log(`\n== ${name}`);
  const r = await run();
  if (r.load.requestsOk === 0) throw new Error(`${name}: no request succeeded (${r.load.firstProblem ?? 'no answer'})`);
  results[name] = r;
  phaseLine(name, r);
  console.log(`  (${fmt((performance.now() - t) / 1000)} s)`);
  return r;
}

async function main(): Promise<void> {
  const started = performance.now();
  console.log(`faultline benchmark: node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'})`);
  console.log(`duration: ${SECONDS} s measured per main phase (BENCH_SECONDS), ${WARMUP} s warm-up, ceilings ${SHORT} s, ping/queryable ${HALF} s`);
  console.log(`load: ${CONNECTIONS} keep-alive connections, 100 spans per request; ping 64 connections`);
  console.log(taskset.ok ? `pinning: server on core ${SERVER_CORE}, load generator on core ${LOADGEN_CORE} (taskset)` : `pinning: NONE — ${taskset.note}`);
  if (FAULTLINE_NODE_ARGS.length) console.log(`faultline node options (BENCH_NODE_ARGS): ${FAULTLINE_NODE_ARGS.join(' ')}`);
  if (Object.keys(FAULTLINE_ENV).length) console.log(`faultline environment (BENCH_ENV): ${Object.entries(FAULTLINE_ENV).map(([k, v]) => `${k}=${v}`).join(' ')}`);
  const R: Record<string, PhaseResult> = {};

  const protoCeiling = await phase('ceiling protobuf', () => ceilingPhase('ceiling protobuf', otlp('protobuf', SHORT)), R);
  const proto = await phase('faultline protobuf', () => faultlinePhase('faultline protobuf', otlp('protobuf', SECONDS), { disk: true }), R);
  const disk = proto ? printDisk(proto) : undefined;
  const jsonCeiling = await phase('ceiling json', () => ceilingPhase('ceiling json', otlp('json', SHORT)), R);
  const json = await phase('faultline json', () => faultlinePhase('faultline json', otlp('json', SECONDS)), R);
  const steady = await phase('faultline 10k spans/s (embedded)', () => faultlinePhase('faultline 10k spans/s (embedded)', otlp('protobuf', SECONDS, { rate: 100 })), R);
  // The same loads against a store by URL (the engine behind ClickHouse's HTTP interface in a process of
  // its own, on the other core, as a ClickHouse server would be): faultline's own CPU and memory.
  const byUrl = (name: string, spec: Spec) => phase(name, () => faultlinePhase(name, spec, { storeProcess: true }), R);
  const protoUrl = await byUrl('faultline protobuf (store by URL)', otlp('protobuf', SECONDS));
  const jsonUrl = await byUrl('faultline json (store by URL)', otlp('json', SECONDS));
  const split = await byUrl('faultline 10k spans/s (store by URL)', otlp('protobuf', HALF, { rate: 100 }));
  const queryable = await phase('faultline queryable', () =>
    faultlinePhase('faultline queryable', otlp('protobuf', HALF, { rate: 50, markers: { everyMs: 300, pollMs: 50, timeoutMs: 30_000 } })), R);
  const q = queryable?.load.markers;
  if (q) console.log(`  queryable after ack: ${q.samples} samples (${q.failed} not found within 30 s), p50 ${fmt(q.latencyMs.p50)} p99 ${fmt(q.latencyMs.p99)} max ${fmt(q.latencyMs.max)} ms (polled every 50 ms)`);
  const pingCeiling = await phase('ceiling ping', () => ceilingPhase('ceiling ping', ping(SHORT)), R);
  const pings = await phase('faultline ping', () => faultlinePhase('faultline ping', ping(HALF), { env: { FAULTLINE_PING_AUTO_CREATE: '1' } }), R);

  if (PROFILE) {
    for (const [name, spec, env] of [
      ['profile protobuf', otlp('protobuf', HALF), {}],
      ['profile ping', ping(HALF), { FAULTLINE_PING_AUTO_CREATE: '1' }],
    ] as const) {
      const keepAs = join(RESULTS, `${name.replace(' ', '-')}.cpuprofile`);
      const r = await phase(name, () => faultlinePhase(name, spec, { env, profile: { keepAs } }), R);
      if (r?.profile) printProfile(keepAs, r.profile);
    }
  }

  const sustained = (r: PhaseResult) => Math.min(r.load.itemsPerS, r.store?.writtenPerS ?? Infinity);
  const ofCeiling = (r: PhaseResult, c?: PhaseResult) => (c ? `${((r.load.itemsPerS / c.load.itemsPerS) * 100).toFixed(1)}% of ceiling ${fmt(c.load.itemsPerS)}/s` : 'no ceiling run');
  const storeNote = (r: PhaseResult) =>
    `acked ${fmt(r.load.itemsPerS)}/s, stored ${fmt(r.store!.writtenPerS)}/s, ${ofCeiling(r, r === proto || r === protoUrl ? protoCeiling : jsonCeiling)}`;
  const urlNote = (r: PhaseResult) =>
    `${storeNote(r)}; faultline cpu ${fmt(r.server.cpuUtil * 100)}%, rss max ${fmt(r.server.rssMaxMiB)} MiB; the store process: cpu ${fmt((r.storeProcess?.cpuUtil ?? NaN) * 100)}%, rss max ${fmt(r.storeProcess?.rssMaxMiB ?? NaN)} MiB`;
  const rows: TargetRow[] = [];
  if (proto) {
    rows.push(target('OTLP protobuf spans/s (1 core)', sustained(proto), '>=', 25_000, 'spans/s', storeNote(proto)));
    rows.push(target('OTLP protobuf spans/s, stretch', sustained(proto), '>=', 40_000, 'spans/s'));
  }
  if (json) {
    const goal = proto ? 0.85 * sustained(proto) : NaN;
    rows.push(target('OTLP JSON spans/s', sustained(json), '>=', goal, 'spans/s', `${storeNote(json)}; goal = protobuf - 15%`));
  }
  // faultline's own cost apart from the store's: acknowledged spans per second of faultline's CPU time (the
  // rate its one core would take if the store kept up; the store process here shares the load generator's core).
  const perCore = (r: PhaseResult) => r.load.itemsPerS / r.server.cpuUtil;
  if (protoUrl) {
    rows.push(target('OTLP protobuf spans/s, store by URL', sustained(protoUrl), '>=', 25_000, 'spans/s', urlNote(protoUrl)));
    rows.push(target('  per faultline CPU-second', perCore(protoUrl), '>=', 25_000, 'spans/s',
      `${fmt(protoUrl.load.itemsPerS)} acked/s at ${fmt(protoUrl.server.cpuUtil * 100)}% of faultline's core`));
  }
  if (jsonUrl) {
    const goal = protoUrl ? 0.85 * sustained(protoUrl) : NaN;
    rows.push(target('OTLP JSON spans/s, store by URL', sustained(jsonUrl), '>=', goal, 'spans/s', `${urlNote(jsonUrl)}; goal = protobuf - 15%`));
    rows.push(target('  per faultline CPU-second', perCore(jsonUrl), '>=', protoUrl ? 0.85 * perCore(protoUrl) : NaN, 'spans/s',
      `${fmt(jsonUrl.load.itemsPerS)} acked/s at ${fmt(jsonUrl.server.cpuUtil * 100)}% of faultline's core; goal = protobuf - 15%`));
  }
  if (pings) {
    rows.push(target('ping API pings/s', pings.load.itemsPerS, '>=', 10_000, 'pings/s', ofCeiling(pings, pingCeiling)));
    rows.push(target('ping API latency p99', pings.load.latencyMs.p99, '<=', 25, 'ms', `p50 ${fmt(pings.load.latencyMs.p50, 1)} ms at 64 connections`));
  }
  if (queryable && q)
    rows.push(target('queryable after ack, p99', q.latencyMs.p99, '<=', 2000, 'ms', `${q.samples} samples, ${q.failed} missing, at ${fmt(queryable.load.itemsPerS)} spans/s`));
  if (steady) {
    const m = steady.server;
    rows.push(target('RSS max at 10k spans/s', m.rssMaxMiB, '<=', 150, 'MiB',
      `mean ${fmt(m.rssMeanMiB)}, idle ${fmt(m.rssIdleMiB ?? 0)}; mapped files ${fmt(m.fileMaxMiB)}, anon ${fmt(m.anonMaxMiB)} of which V8 heap ${fmt(m.heapMaxMiB ?? NaN)}, Buffers ${fmt(m.externalMaxMiB ?? NaN)} MiB (max)`));
  }
  if (split) {
    const m = split.server;
    rows.push(target('RSS max at 10k spans/s, store by URL', m.rssMaxMiB, '<=', 150, 'MiB',
      `faultline alone: mean ${fmt(m.rssMeanMiB)}, idle ${fmt(m.rssIdleMiB ?? 0)}, V8 heap ${fmt(m.heapMaxMiB ?? NaN)} MiB; the store process ${fmt(split.storeProcess?.rssMaxMiB ?? NaN)} MiB; stored ${fmt(split.store?.writtenPerS ?? NaN)}/s`));
  }
  if (disk) {
    const { spansBefore, spansAfter, excAfter } = disk;
    rows.push(target('on disk per span (merged)', spansAfter.bytesOnDisk / spansAfter.rows, '<=', 100, 'B',
      `${fmt(spansBefore.bytesOnDisk / spansBefore.rows, 1)} B as written; exceptions ${excAfter ? fmt(excAfter.bytesOnDisk / 1e6, 2) : 0} MB`));
  }
  const totalS = (performance.now() - started) / 1000;
  console.log(`\n== summary (${SECONDS} s per main phase, total run ${fmt(totalS)} s; spans/s targets use min(acked, stored))`);
  printTable(rows);
  const file = join(RESULTS, 'latest.json');
  writeJson(file, {
    date: new Date().toISOString(),
    config: { only: ONLY.length ? ONLY : undefined, nodeArgs: FAULTLINE_NODE_ARGS, env: FAULTLINE_ENV, seconds: SECONDS, warmupS: WARMUP, ceilingS: SHORT, halfS: HALF, connections: CONNECTIONS, pinned: taskset.ok, node: process.version, cpu: cpus()[0]?.model, cores: cpus().length },
    targets: rows,
    phases: R,
    totalSeconds: totalS,
  });
  console.log(`\nwritten to ${file}`);
}

main().catch((err: Error) => {
  console.error(`bench: harness failure: ${err.stack ?? err.message}`);
  process.exit(1);
});
